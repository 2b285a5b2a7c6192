// Mappings: mmap of a file range, ArrayBuffers over it, and their end.
//
// A MapHandle is a type-tagged napi external around a mapping_t, so a wrong object is a
// TypeError instead of a wild pointer. buffers() wraps chunks of the mapping in external
// ArrayBuffers (one ArrayBuffer cannot span a large pool). The memory must outlive every
// ArrayBuffer over it, so the mapping is reference counted by its holders:
//
//   holders = 1 (the handle) + ArrayBuffers whose finalizer has not yet run
//
// unmap() detaches every ArrayBuffer still alive (later access throws in JavaScript). If
// JavaScript drops the handle and its buffers without unmap, the last finalizer unmaps, so
// an abandoned mapping is not leaked.
//
// SharedArrayBuffers (sharedBuffer(), shared_buffer.cc) cannot be detached and may live in
// other threads, so they hold the *address range* rather than the handle:
//
//   range holders = (holders > 0 ? 1 : 0) + SharedArrayBuffer backing stores not yet freed
//
// Their deleters run on any thread (a worker's, or V8's background sweeper), so this count
// and the range's state sit under a mutex. unmap() with shared buffers alive replaces the
// range by private anonymous zero memory (MAP_FIXED): reads through them see zeros, writes
// go nowhere, nothing faults; the last deleter munmaps it.
//
//   range:  MAPPED --unmap(), no shared buffers--------------------------> FREE
//           MAPPED --unmap(), shared buffers alive--> ZEROED --last deleter--> FREE
//           MAPPED --handle and buffers finalized, then last deleter----------> FREE
//
// Not prevented here: truncating the file under a live mapping (access past the new end of
// file raises SIGBUS, as for any mmap) and storing through buffers of a read-only mapping
// (SIGSEGV; segv.c can turn that into a message). The TypeScript layer owns the file size
// and refuses writes when read-only.

#include "regions.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

typedef enum { RANGE_MAPPED, RANGE_ZEROED, RANGE_FREE } range_state_t;

struct mapping {
  uint8_t *addr;
  size_t length;
  bool writable;
  // JavaScript thread only:
  bool unmapped;
  size_t holders;
  napi_ref *buffers; // weak references: detaching needs the ArrayBuffer only if it is alive
  size_t buffer_count;
  size_t buffer_capacity;
  // Under lock, from any thread:
  pthread_mutex_t lock;
  size_t shared_count; // SharedArrayBuffer backing stores not yet freed
  bool handle_gone;    // holders reached 0
  range_state_t range;
};

static const napi_type_tag MAPPING_TAG = {0x7265676e5f6d6170ULL, 0x9d3c51a0e6b2f417ULL};

uint8_t *mapping_addr(const mapping_t *mapping) { return mapping->addr; }
size_t mapping_length(const mapping_t *mapping) { return mapping->length; }
bool mapping_writable(const mapping_t *mapping) { return mapping->writable; }

static void range_munmap(mapping_t *mapping) {
  ASSERT(mapping->range != RANGE_FREE);
  int rc = munmap(mapping->addr, mapping->length);
  ASSERT(rc == 0);
  mapping->range = RANGE_FREE;
}

// The struct's one owner of its free is whichever call makes it unreachable: the count and
// the flag that say so (shared_count, handle_gone) change only under the lock, and the same
// critical section that changes one of them decides "last?". Deciding after unlocking would
// let the JavaScript thread (handle finalized) and a deleter thread (last shared buffer)
// both see "unreachable" and both free.
static void mapping_free(mapping_t *mapping) {
  ASSERT(mapping->range == RANGE_FREE);
  pthread_mutex_destroy(&mapping->lock);
  free(mapping);
}

// Under the lock: unreachable now? Then the range is unmapped too, and the caller frees.
static bool mapping_unreachable_locked(mapping_t *mapping) {
  if (!mapping->handle_gone || mapping->shared_count != 0) return false;
  if (mapping->range != RANGE_FREE) range_munmap(mapping);
  return true;
}

void mapping_share_acquire(mapping_t *mapping) {
  pthread_mutex_lock(&mapping->lock);
  ASSERT(mapping->range == RANGE_MAPPED && !mapping->handle_gone);
  mapping->shared_count++;
  pthread_mutex_unlock(&mapping->lock);
}

// Any thread; no JavaScript.
void mapping_share_release(mapping_t *mapping) {
  pthread_mutex_lock(&mapping->lock);
  ASSERT(mapping->shared_count > 0);
  mapping->shared_count--;
  if (mapping->shared_count == 0 && mapping->range == RANGE_ZEROED) range_munmap(mapping);
  bool last = mapping_unreachable_locked(mapping);
  pthread_mutex_unlock(&mapping->lock);
  if (last) mapping_free(mapping);
}

// unmap(): the range leaves JavaScript's reach, at once or (shared buffers alive) as zeros.
static void mapping_close_range(mapping_t *mapping) {
  pthread_mutex_lock(&mapping->lock);
  ASSERT(mapping->range == RANGE_MAPPED);
  if (mapping->shared_count == 0) {
    range_munmap(mapping);
  } else {
    void *zeros = mmap(mapping->addr, mapping->length, PROT_READ | PROT_WRITE,
                       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    // If even that fails (no memory for a VMA) the file stays mapped until the last
    // deleter: the shared buffers keep seeing it, which is still no crash.
    if (zeros != MAP_FAILED) {
      ASSERT(zeros == mapping->addr);
      mapping->range = RANGE_ZEROED;
    }
  }
  pthread_mutex_unlock(&mapping->lock);
}

static void mapping_release(napi_env env, mapping_t *mapping) {
  ASSERT(mapping->holders > 0);
  mapping->holders--;
  if (mapping->holders > 0) return;
  if (!mapping->unmapped) track_forget(mapping);
  for (size_t i = 0; i < mapping->buffer_count; i++) napi_delete_reference(env, mapping->buffers[i]);
  free(mapping->buffers);
  mapping->buffers = NULL;
  pthread_mutex_lock(&mapping->lock);
  ASSERT(!mapping->handle_gone);
  mapping->handle_gone = true;
  bool last = mapping_unreachable_locked(mapping);
  pthread_mutex_unlock(&mapping->lock);
  if (last) mapping_free(mapping);
}

static void mapping_finalize_handle(napi_env env, void *data, void *hint) {
  (void)hint;
  mapping_release(env, data);
}

static void mapping_finalize_buffer(napi_env env, void *data, void *hint) {
  (void)data;
  mapping_release(env, hint);
}

// Type check only; the caller decides whether an unmapped handle is an error.
static bool value_mapping_any(args_t *args, napi_value value, const char *name, mapping_t **out) {
  napi_env env = args->env;
  napi_valuetype type;
  bool tagged = false;
  if (!napi_check(env, napi_typeof(env, value, &type), "napi_typeof")) return false;
  if (type == napi_external &&
      !napi_check(env, napi_check_object_type_tag(env, value, &MAPPING_TAG, &tagged), "type tag check")) {
    return false;
  }
  if (!tagged) {
    throw_type(env, "%s: %s must be a MapHandle returned by map()", args->fn, name);
    return false;
  }
  void *data = NULL;
  if (!napi_check(env, napi_get_value_external(env, value, &data), "napi_get_value_external")) return false;
  ASSERT(data != NULL);
  *out = data;
  return true;
}

static bool arg_mapping_any(args_t *args, size_t i, mapping_t **out) {
  ASSERT(i < args->argc);
  return value_mapping_any(args, args->argv[i], "handle", out);
}

bool value_mapping(args_t *args, napi_value value, const char *name, mapping_t **out) {
  if (!value_mapping_any(args, value, name, out)) return false;
  if ((*out)->unmapped) {
    throw_code(args->env, "ECLOSED", NULL, "%s: %s was unmapped; map the file again", args->fn,
               strcmp(name, "handle") == 0 ? "the mapping" : name);
    return false;
  }
  return true;
}

bool arg_mapping(args_t *args, size_t i, mapping_t **out) {
  ASSERT(i < args->argc);
  return value_mapping(args, args->argv[i], "handle", out);
}

// [offset, offset+length) from arguments i and i+1, inside the mapping or ERANGE.
bool arg_mapping_range(args_t *args, const mapping_t *mapping, size_t i, uint8_t **start, size_t *length) {
  int64_t offset, count;
  ASSERT(!mapping->unmapped);
  if (!arg_integer(args, i, "offset", 0, SAFE_INTEGER_MAX, &offset) ||
      !arg_integer(args, i + 1, "length", 0, SAFE_INTEGER_MAX, &count)) {
    return false;
  }
  if ((uint64_t)offset + (uint64_t)count > mapping->length) {
    throw_code(args->env, "ERANGE", NULL, "%s: range [%lld, %lld) is outside the mapping of %zu bytes", args->fn,
               (long long)offset, (long long)(offset + count), mapping->length);
    return false;
  }
  *start = mapping->addr + offset;
  *length = (size_t)count;
  return true;
}

// arg_mapping_range, and both ends on page boundaries (EINVAL).
bool arg_mapping_pages(args_t *args, const mapping_t *mapping, size_t i, uint8_t **start, size_t *length) {
  if (!arg_mapping_range(args, mapping, i, start, length)) return false;
  size_t offset = (size_t)(*start - mapping->addr);
  if (offset % PAGE_BYTES != 0 || *length % PAGE_BYTES != 0) {
    throw_code(args->env, "EINVAL", NULL, "%s: offset %zu and length %zu must be multiples of %d", args->fn, offset,
               *length, PAGE_BYTES);
    return false;
  }
  return true;
}

// A mapping past the end of a regular file would SIGBUS on first touch: refuse it here.
static bool check_file_covers(args_t *args, int fd, int64_t offset, int64_t length) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    throw_errno(args->env, errno, args->fn, "fstat");
    return false;
  }
  if (S_ISREG(st.st_mode) && offset + length > (int64_t)st.st_size) {
    throw_code(args->env, "ERANGE", "mmap", "%s: range [%lld, %lld) extends past the end of the file (%lld bytes)",
               args->fn, (long long)offset, (long long)(offset + length), (long long)st.st_size);
    return false;
  }
  return true;
}

static napi_value mapping_wrap(napi_env env, uint8_t *addr, size_t length, bool writable) {
  mapping_t *mapping = calloc(1, sizeof *mapping);
  napi_value handle;
  if (mapping == NULL) {
    munmap(addr, length);
    return throw_errno(env, ENOMEM, "map", "calloc");
  }
  mapping->addr = addr;
  mapping->length = length;
  mapping->writable = writable;
  mapping->holders = 1;
  mapping->range = RANGE_MAPPED;
  int rc = pthread_mutex_init(&mapping->lock, NULL);
  ASSERT(rc == 0);
  if (!napi_check(env, napi_create_external(env, mapping, mapping_finalize_handle, NULL, &handle),
                  "napi_create_external")) {
    munmap(addr, length);
    pthread_mutex_destroy(&mapping->lock);
    free(mapping);
    return NULL;
  }
  // From here the finalizer owns the mapping.
  if (!napi_check(env, napi_type_tag_object(env, handle, &MAPPING_TAG), "napi_type_tag_object")) return NULL;
  return handle;
}

// map(fd, offset, length, writable, sync)
napi_value map_map(napi_env env, napi_callback_info info) {
  args_t args;
  int fd;
  int64_t offset, length;
  bool writable, sync;
  if (!args_get(env, info, "map", 5, &args) || !arg_fd(&args, 0, &fd) ||
      !arg_integer(&args, 1, "offset", 0, SAFE_INTEGER_MAX, &offset) ||
      !arg_integer(&args, 2, "length", 1, SAFE_INTEGER_MAX, &length) || !arg_bool(&args, 3, "writable", &writable) ||
      !arg_bool(&args, 4, "sync", &sync)) {
    return NULL;
  }
  if (offset % sysconf(_SC_PAGESIZE) != 0) {
    return throw_code(env, "EINVAL", "mmap", "map: offset %lld is not a multiple of the page size", (long long)offset);
  }
  if (offset + length > SAFE_INTEGER_MAX) return throw_code(env, "ERANGE", "mmap", "map: offset + length overflows");
  if (!check_file_covers(&args, fd, offset, length)) return NULL;
  int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  int flags = sync ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED;
  void *addr = mmap(NULL, (size_t)length, prot, flags, fd, (off_t)offset);
  if (addr == MAP_FAILED) return throw_errno(env, errno, "map", sync ? "mmap(MAP_SYNC)" : "mmap");
  ASSERT((uintptr_t)addr % PAGE_BYTES == 0);
  return mapping_wrap(env, addr, (size_t)length, writable);
}

static bool mapping_reserve(napi_env env, mapping_t *mapping, size_t more) {
  size_t live = 0;
  // Drop references to ArrayBuffers already collected, so repeated buffers() calls stay bounded.
  for (size_t i = 0; i < mapping->buffer_count; i++) {
    napi_value value = NULL;
    napi_get_reference_value(env, mapping->buffers[i], &value);
    if (value == NULL) {
      napi_delete_reference(env, mapping->buffers[i]);
    } else {
      mapping->buffers[live++] = mapping->buffers[i];
    }
  }
  mapping->buffer_count = live;
  if (live + more <= mapping->buffer_capacity) return true;
  size_t capacity = live + more;
  napi_ref *grown = realloc(mapping->buffers, capacity * sizeof *grown);
  if (grown == NULL) {
    throw_errno(env, ENOMEM, "buffers", "realloc");
    return false;
  }
  mapping->buffers = grown;
  mapping->buffer_capacity = capacity;
  return true;
}

static napi_value mapping_buffer(napi_env env, mapping_t *mapping, size_t start, size_t length) {
  napi_value buffer;
  napi_ref ref;
  ASSERT(start + length <= mapping->length);
  ASSERT(mapping->buffer_count < mapping->buffer_capacity);
  // Counted before creation: if creation fails Node may or may not run the finalizer, and a
  // leaked count only keeps the memory mapped, never frees it early.
  mapping->holders++;
  uint8_t *data = mapping->addr + start;
  if (!napi_check(env, napi_create_external_arraybuffer(env, data, length, mapping_finalize_buffer, mapping, &buffer),
                  "napi_create_external_arraybuffer")) {
    return NULL;
  }
  if (napi_create_reference(env, buffer, 0, &ref) != napi_ok) {
    napi_detach_arraybuffer(env, buffer); // untracked buffers must not outlive unmap
    return throw_errno(env, ENOMEM, "buffers", "napi_create_reference");
  }
  mapping->buffers[mapping->buffer_count++] = ref;
  return buffer;
}

// buffers(handle, chunkBytes)
napi_value map_buffers(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  int64_t chunk;
  napi_value array;
  if (!args_get(env, info, "buffers", 2, &args) || !arg_mapping(&args, 0, &mapping) ||
      !arg_integer(&args, 1, "chunkBytes", PAGE_BYTES, CHUNK_BYTES_MAX, &chunk)) {
    return NULL;
  }
  if (chunk % PAGE_BYTES != 0) {
    return throw_code(env, "EINVAL", NULL, "buffers: chunkBytes %lld is not a multiple of %d", (long long)chunk,
                      PAGE_BYTES);
  }
  size_t count = (mapping->length + (size_t)chunk - 1) / (size_t)chunk;
  if (!mapping_reserve(env, mapping, count)) return NULL;
  if (!napi_check(env, napi_create_array_with_length(env, count, &array), "napi_create_array_with_length")) return NULL;
  for (size_t i = 0; i < count; i++) {
    size_t start = i * (size_t)chunk;
    size_t length = mapping->length - start < (size_t)chunk ? mapping->length - start : (size_t)chunk;
    napi_value buffer = mapping_buffer(env, mapping, start, length);
    if (buffer == NULL || !napi_check(env, napi_set_element(env, array, (uint32_t)i, buffer), "napi_set_element")) {
      return NULL;
    }
  }
  return array;
}

static void mapping_detach_all(napi_env env, mapping_t *mapping) {
  for (size_t i = 0; i < mapping->buffer_count; i++) {
    napi_value value = NULL;
    bool detached = true;
    napi_get_reference_value(env, mapping->buffers[i], &value);
    if (value != NULL) napi_is_detached_arraybuffer(env, value, &detached);
    if (!detached) {
      napi_status status = napi_detach_arraybuffer(env, value);
      ASSERT(status == napi_ok); // ours, made by napi_create_external_arraybuffer: detachable
    }
    napi_delete_reference(env, mapping->buffers[i]);
  }
  mapping->buffer_count = 0;
}

// unmap(handle): idempotent. Also drops a tracking registration (track.c).
napi_value map_unmap(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  if (!args_get(env, info, "unmap", 1, &args) || !arg_mapping_any(&args, 0, &mapping)) return NULL;
  if (!mapping->unmapped) {
    mapping_detach_all(env, mapping);
    track_forget_unmapping(mapping, mapping_close_range);
    mapping->unmapped = true;
  }
  return make_undefined(env);
}
