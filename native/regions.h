// regions_native: the arch layer of the Region System (DESIGN.md sections 1-3, 6).
//
// It maps, flushes, locks, waits and checksums; it holds no policy. Entry points follow the
// xv6 split: args.c checks JavaScript arguments and nothing else, then the mechanism files
// (map.c, flush.c, lock.c, futex.c, crc32c.c) do the work on plain C values.
//
// Every failure is a thrown JavaScript error, never a crash: TypeError for a wrong type or
// handle, Error with `code` = errno name ('EBADF', 'EINVAL', 'ERANGE', 'EOPNOTSUPP', ...)
// and `syscall` for a failed or refused call, and code 'ECLOSED' for a handle used after
// unmap. A function that throws returns NULL (false for helpers) with the exception pending.

#ifndef REGIONS_NATIVE_H
#define REGIONS_NATIVE_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARGS_MAX 6
#define SAFE_INTEGER_MAX INT64_C(9007199254740991) // 2^53 - 1, Number.MAX_SAFE_INTEGER
#define PAGE_BYTES 4096
#define CACHE_LINE_BYTES 64
// ArrayBuffers made by buffers() stay at or below this size: every Node >= 20 accepts it.
#define CHUNK_BYTES_MAX (INT64_C(1) << 30)

// Invariants of our own code (never of user input) stay checked in production: a broken one
// stops the process with its text rather than letting it write on through a bad pointer.
#define REGIONS_STR2(x) #x
#define REGIONS_STR(x) REGIONS_STR2(x)
#define ASSERT(condition)                                                                   \
  ((condition) ? (void)0                                                                    \
               : napi_fatal_error("regions_native " __FILE__ ":" REGIONS_STR(__LINE__),     \
                                  NAPI_AUTO_LENGTH, "invariant violated: " #condition,      \
                                  NAPI_AUTO_LENGTH))

// ---- errors.c
napi_value throw_errno(napi_env env, int err, const char *fn, const char *syscall);
napi_value throw_code(napi_env env, const char *code, const char *syscall, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
napi_value throw_type(napi_env env, const char *format, ...) __attribute__((format(printf, 2, 3)));
bool napi_check(napi_env env, napi_status status, const char *what);

// ---- args.c
typedef struct args {
  napi_env env;
  const char *fn; // the JavaScript name of the entry point, for messages
  size_t argc;
  napi_value argv[ARGS_MAX];
} args_t;

bool args_get(napi_env env, napi_callback_info info, const char *fn, size_t count, args_t *args);
bool arg_integer(args_t *args, size_t i, const char *name, int64_t min, int64_t max, int64_t *out);
bool arg_bool(args_t *args, size_t i, const char *name, bool *out);
bool arg_fd(args_t *args, size_t i, int *out);
bool arg_timeout_ms(args_t *args, size_t i, double *out);
bool arg_bytes(args_t *args, size_t i, const char *name, uint8_t **data, size_t *length);
napi_value make_bool(napi_env env, bool value);
napi_value make_number(napi_env env, double value);
napi_value make_string(napi_env env, const char *value);
napi_value make_undefined(napi_env env);

// ---- map.c
typedef struct mapping mapping_t;
bool arg_mapping(args_t *args, size_t i, mapping_t **out);
bool arg_mapping_range(args_t *args, const mapping_t *mapping, size_t i, uint8_t **start, size_t *length);
napi_value map_map(napi_env env, napi_callback_info info);
napi_value map_buffers(napi_env env, napi_callback_info info);
napi_value map_unmap(napi_env env, napi_callback_info info);
napi_value map_msync(napi_env env, napi_callback_info info);

// ---- flush.c
void flush_init(void);
napi_value flush_flush(napi_env env, napi_callback_info info);
napi_value flush_fence(napi_env env, napi_callback_info info);
napi_value flush_instruction(napi_env env, napi_callback_info info);

// ---- lock.c
napi_value lock_try(napi_env env, napi_callback_info info);
napi_value lock_wait(napi_env env, napi_callback_info info);
napi_value lock_unlock(napi_env env, napi_callback_info info);
napi_value lock_posix_try(napi_env env, napi_callback_info info);
napi_value lock_posix_unlock(napi_env env, napi_callback_info info);
napi_value lock_holder_pid(napi_env env, napi_callback_info info);

// ---- futex.c
napi_value futex_wait(napi_env env, napi_callback_info info);
napi_value futex_wake(napi_env env, napi_callback_info info);

// ---- crc32c.c
void crc32c_init(void);
napi_value crc32c_js(napi_env env, napi_callback_info info);
napi_value crc32c_portable_js(napi_env env, napi_callback_info info);

#endif
