// regions_native: the arch layer of the Region System (DESIGN.md sections 1-3, 6).
//
// It maps, protects, tracks stores, flushes, locks, waits and checksums; it holds no policy.
// Entry points follow the xv6 split: args.c checks JavaScript arguments and nothing else,
// then the mechanism files do the work on plain C values.
//
// Every failure is a thrown JavaScript error, never a crash: TypeError for a wrong type or
// handle, Error with `code` = errno name ('EBADF', 'EINVAL', 'ERANGE', 'EOPNOTSUPP', ...)
// and `syscall` for a failed or refused call, and code 'ECLOSED' for a handle used after
// unmap. A function that throws returns NULL (false for helpers) with the exception pending.
//
// Layers, top to bottom. A file calls only files on lower lines, or right of it on its own
// line (->), so no two files call each other, directly or round a loop. Where a lower layer
// must call back up, the upper one hands it a function: map.c its close_range to track.c,
// track_napi.c the control mapping's release to the registry.
//
//   entry points   addon.c (the export table) -> track_napi.c, memory.c, uffd.c, flush.c,
//                  layout.c, lock.c, futex.c, socket.c, peer.c, commit.c, shared_buffer.cc:
//                  check arguments, then call the mechanism below
//   mappings       map.c: handles over mmap'ed ranges and their end (with its own entry
//                  points map, buffers, unmap); tells track.c when a tracked mapping dies
//                  or unmaps
//   tracking       track.c: a registration's life on a JavaScript thread: register, freeze,
//                  thaw, forget
//   handlers       segv.c -> shootdown.c -> fault.c: the SIGSEGV handler finds the entry; a
//                  shared one goes to the shootdown (its signal handler, frozen writers);
//                  fault.c is what either does with one fault in one entry
//   registry       registry.c: the table of registered mappings (registry.h)
//   helpers        pagemap.c (PAGEMAP_SCAN), sigsafe.c (clock, futex, text), args.c and
//                  errors.c (N-API values and errors), arch/<arch>/ (arch/arch.h: cache
//                  flush, a fault's write bit)
//
// Headers: this one (C and C++) declares every helper used by more than one file and every
// entry point; registry.h (C only) the registry's entry, the control area's layout and the
// tracking files' internals; socket.h the socket entry points; arch/arch.h the arch layer.

#ifndef REGIONS_NATIVE_H
#define REGIONS_NATIVE_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ARGS_MAX 7
#define SAFE_INTEGER_MAX INT64_C(9007199254740991) // 2^53 - 1, Number.MAX_SAFE_INTEGER
#define PAGE_BYTES 4096
#define CACHE_LINE_BYTES 64
#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
// ArrayBuffers made by buffers() and sharedBuffer() stay at or below this size: every
// Node >= 20 accepts it.
#define CHUNK_BYTES_MAX (INT64_C(1) << 30)
// memfd_create(2) names: 249 bytes, the kernel's limit (NAME_MAX minus "memfd:").
#define MEMFD_NAME_BYTES_MAX 249
// Dirty tracking (registry.c, track.c). The registry is a fixed table the SIGSEGV handler
// reads without locks.
#define TRACK_ENTRIES_MAX 4096
#define TRACK_LABEL_BYTES_MAX 127
// Each page a 'segv' tracker unprotects may split a VMA in three; vm.max_map_count is 65,530
// by default, so a tracker gives up page-by-page protection well before half of that.
#define TRACK_FAULT_PAGES_DEFAULT 16384
#define TRACK_FAULT_PAGES_MAX 30000
// Freeze and unregister wait for handlers already inside the range to leave; they run a few
// system calls at most, so this is only a guard against a broken invariant.
#define TRACK_DRAIN_MS_MAX 5000
// Released ranges the handler remembers, to recognise a fault taken just before a release.
#define TRACK_RELEASED_MAX 64
// PAGEMAP_SCAN result regions per ioctl (24 bytes each); the scan loops until the range is done.
#define PAGEMAP_REGIONS_PER_SCAN 512
// Page indexes come back as a Uint32Array.
#define PAGE_INDEX_MAX UINT32_MAX
// The shootdown (shootdown.c). A frozen writer waits for regiond's release in slices of this
// length, checking between them that regiond is alive (a dead regiond releases everyone).
#define SHOOTDOWN_WAIT_SLICE_MS 100
// A parked main thread (shootdown.c) waits for the release in slices of this length, serving
// requests for other regions between them, and checks regiond's liveness every
// SHOOTDOWN_WAIT_SLICE_MS. At most this many groups are parked at once (the rest freeze).
#define SHOOTDOWN_PARK_SLICE_US 1000
#define SHOOTDOWN_PARKED_MAX 64
// PAGEMAP_SCAN result regions per ioctl inside the signal handler (24 bytes each on the
// signal stack, which may be an alternate stack of a few KiB).
#define SHOOTDOWN_SCAN_REGIONS 64
// A handler serves again while signals arrived during its pass; each pass is finite.
#define SHOOTDOWN_PASSES_MAX 64
// A store into a frozen shared mapping: wait, thaw, retry in the handler at most this often
// (then the store itself runs again and faults anew).
#define SHOOTDOWN_FAULT_ATTEMPTS_MAX 2

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
bool arg_string(args_t *args, size_t i, const char *name, char *out, size_t capacity, size_t *length);
bool arg_choice(args_t *args, size_t i, const char *name, const char *const *choices, size_t count, size_t *out);
// The same checks on a value that is not a positional argument (a property of an options object).
bool value_integer(args_t *args, napi_value value, const char *name, int64_t min, int64_t max, int64_t *out);
bool value_string(args_t *args, napi_value value, const char *name, char *out, size_t capacity, size_t *length);
bool value_choice(args_t *args, napi_value value, const char *name, const char *const *choices, size_t count,
                  size_t *out);
bool value_bytes(args_t *args, napi_value value, const char *name, uint8_t **data, size_t *length);
bool arg_object(args_t *args, size_t i, const char *name);
// The named property of an object, or NULL in *out if it is undefined (absent).
bool object_property(args_t *args, napi_value object, const char *key, napi_value *out);
napi_value make_bool(napi_env env, bool value);
napi_value make_number(napi_env env, double value);
napi_value make_string(napi_env env, const char *value);
napi_value make_undefined(napi_env env);
// object[key] = value; false with an exception pending.
bool object_set(napi_env env, napi_value object, const char *key, napi_value value);
bool object_set_number(napi_env env, napi_value object, const char *key, double value);

// ---- sigsafe.c: async-signal-safe, so handlers and JavaScript threads share them
int64_t monotonic_ns(void);
int64_t monotonic_ms(void);
// monotonic_ns() + timeout, or INT64_MAX (never) for Infinity or 10^12 ms and more.
int64_t deadline_after_ms(double timeout_ms);
void sleep_ns(int64_t ns);
long futex_call(uint32_t *word, int op, uint32_t value, const struct timespec *timeout);
// Append to out[used..capacity), keeping one byte for a terminator: the new `used`.
size_t text_append(char *out, size_t used, size_t capacity, const char *text, size_t length);
size_t text_append_decimal(char *out, size_t used, size_t capacity, uint64_t value);

// ---- map.c
typedef struct mapping mapping_t;
bool arg_mapping(args_t *args, size_t i, mapping_t **out);
// The same check on a value that is not a positional argument (options.control).
bool value_mapping(args_t *args, napi_value value, const char *name, mapping_t **out);
bool arg_mapping_range(args_t *args, const mapping_t *mapping, size_t i, uint8_t **start, size_t *length);
bool arg_mapping_pages(args_t *args, const mapping_t *mapping, size_t i, uint8_t **start, size_t *length);
uint8_t *mapping_addr(const mapping_t *mapping);
size_t mapping_length(const mapping_t *mapping);
bool mapping_writable(const mapping_t *mapping);
// A SharedArrayBuffer's backing store holds the address range (not the handle) until its
// deleter runs, on any thread: acquire on the JavaScript thread, release from anywhere.
void mapping_share_acquire(mapping_t *mapping);
void mapping_share_release(mapping_t *mapping);
napi_value map_map(napi_env env, napi_callback_info info);
napi_value map_buffers(napi_env env, napi_callback_info info);
napi_value map_unmap(napi_env env, napi_callback_info info);

// ---- memory.c
napi_value memory_msync(napi_env env, napi_callback_info info);
napi_value memory_memfd_create(napi_env env, napi_callback_info info);
napi_value memory_fallocate(napi_env env, napi_callback_info info);
napi_value memory_protect(napi_env env, napi_callback_info info);

// ---- shared_buffer.cc
napi_value shared_buffer(napi_env env, napi_callback_info info);

// ---- track.c, for map.c and memory.c
// Called by map.c when the handle dies: drops the registration, if any, and gives the
// mapping back the protection it was mapped with (shared buffers may still use it).
void track_forget(const mapping_t *mapping);
// Called by unmap(): runs close_range(mapping), then drops the registration, atomically
// with respect to other registrations.
void track_forget_unmapping(mapping_t *mapping, void (*close_range)(mapping_t *mapping));
// Called by protect() (memory.c): a foreign PROT_NONE inside a tracked mapping makes the
// handler probe.
void track_note_protect(const mapping_t *mapping, int prot);

// ---- track_napi.c
napi_value track_register(napi_env env, napi_callback_info info);
napi_value track_unregister(napi_env env, napi_callback_info info);
napi_value track_status(napi_env env, napi_callback_info info);
napi_value track_reset(napi_env env, napi_callback_info info);
napi_value track_freeze(napi_env env, napi_callback_info info);
napi_value track_thaw(napi_env env, napi_callback_info info);
napi_value track_shared_register(napi_env env, napi_callback_info info);
napi_value track_shared_collect(napi_env env, napi_callback_info info);
napi_value shootdown_install(napi_env env, napi_callback_info info);

// ---- uffd.c
napi_value uffd_available(napi_env env, napi_callback_info info);
napi_value uffd_open(napi_env env, napi_callback_info info);
napi_value uffd_register(napi_env env, napi_callback_info info);
napi_value uffd_unregister(napi_env env, napi_callback_info info);
napi_value uffd_pagemap_written(napi_env env, napi_callback_info info);

// ---- pagemap.c
// Opens /proc/self/pagemap once per process (JavaScript threads: it uses pthread_once, so
// never from a handler): 0, or the errno of the open.
int pagemap_open(void);
// A list of page indexes, grown with realloc (JavaScript threads only); free(pages) after.
typedef struct page_list {
  uint32_t *pages;
  size_t count;
  size_t capacity;
} page_list_t;
// The pages of [start, end) (page-aligned) written since last protected, as indexes from
// base, appended to list; with reprotect, protected again. 0, or an errno with *call naming
// what failed.
int pagemap_written(uintptr_t base, uintptr_t start, uintptr_t end, bool reprotect, page_list_t *list,
                    const char **call);
// The shootdown handler's PAGEMAP_SCAN (async-signal-safe; pagemap_open first): for each
// page of [start, end) written since last protected, atomically sets bit (bit_first + page
// index) of bitmap, and protects the page again. 0, or an errno.
int pagemap_collect_written(uintptr_t start, uintptr_t end, uint8_t *bitmap, uint64_t bit_first);

// ---- flush.c
void flush_init(void);
napi_value flush_flush(napi_env env, napi_callback_info info);
napi_value flush_fence(napi_env env, napi_callback_info info);
// ---- commit.c
napi_value commit_execute(napi_env env, napi_callback_info info);
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


// ---- layout.c
napi_value layout_js(napi_env env, napi_callback_info info);

#ifdef __cplusplus
}
#endif

#endif
