// Entry points on the pages of a mapping and on the files mappings map: msync, protect,
// memfdCreate and fallocate. They take a live handle and leave its life to map.c; protect
// tells track.c first, because a foreign PROT_NONE inside a tracked mapping changes what
// the fault handler must check.

#include "regions.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

// msync(handle, offset, length): MS_SYNC of the pages covering the range.
napi_value memory_msync(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  uint8_t *start;
  size_t length;
  if (!args_get(env, info, "msync", 3, &args) || !arg_mapping(&args, 0, &mapping) ||
      !arg_mapping_range(&args, mapping, 1, &start, &length)) {
    return NULL;
  }
  if (length == 0) return make_undefined(env);
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t first = (uintptr_t)start & ~(page - 1);
  uintptr_t end = (uintptr_t)start + length;
  ASSERT(first >= (uintptr_t)mapping_addr(mapping));
  if (msync((void *)first, end - first, MS_SYNC) != 0) return throw_errno(env, errno, "msync", "msync");
  return make_undefined(env);
}

// memfdCreate(name, sizeBytes) -> fd: an anonymous shared-memory file (MFD_CLOEXEC) of
// sizeBytes zero bytes, e.g. a region's working copy. The caller closes the descriptor.
napi_value memory_memfd_create(napi_env env, napi_callback_info info) {
  args_t args;
  char name[MEMFD_NAME_BYTES_MAX + 1];
  size_t name_length;
  int64_t size;
  if (!args_get(env, info, "memfdCreate", 2, &args) ||
      !arg_string(&args, 0, "name", name, sizeof name, &name_length) ||
      !arg_integer(&args, 1, "sizeBytes", 0, SAFE_INTEGER_MAX, &size)) {
    return NULL;
  }
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "memfdCreate", "memfd_create");
  if (ftruncate(fd, (off_t)size) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "memfdCreate", "ftruncate");
  }
  return make_number(env, fd);
}

static const char *const ACCESS_NAMES[] = {"none", "r", "rw"};
static const int ACCESS_PROT[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE};

// protect(handle, offset, length, access): mprotect of whole pages of the mapping.
napi_value memory_protect(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  uint8_t *start;
  size_t length, access;
  if (!args_get(env, info, "protect", 4, &args) || !arg_mapping(&args, 0, &mapping) ||
      !arg_mapping_pages(&args, mapping, 1, &start, &length) ||
      !arg_choice(&args, 3, "access", ACCESS_NAMES, sizeof ACCESS_NAMES / sizeof ACCESS_NAMES[0], &access)) {
    return NULL;
  }
  int prot = ACCESS_PROT[access];
  if ((prot & PROT_WRITE) && !mapping_writable(mapping)) {
    return throw_code(env, "EACCES", "mprotect", "protect: the mapping is read-only; 'rw' is refused");
  }
  if (length == 0) return make_undefined(env);
  track_note_protect(mapping, prot);
  if (mprotect(start, length, prot) != 0) return throw_errno(env, errno, "protect", "mprotect");
  return make_undefined(env);
}

// fallocate(fd, offset, length): allocates the file's blocks in [offset, offset + length)
// and extends the file past its end if the range does (fallocate(2), mode 0). A pool file is
// mapped MAP_SHARED: a store into a block the file system cannot allocate is SIGBUS, so its
// space is reserved here, where a full file system is an ENOSPC the caller can report.
napi_value memory_fallocate(napi_env env, napi_callback_info info) {
  args_t args;
  int fd;
  int64_t offset;
  int64_t length;
  if (!args_get(env, info, "fallocate", 3, &args) || !arg_fd(&args, 0, &fd) ||
      !arg_integer(&args, 1, "offset", 0, SAFE_INTEGER_MAX, &offset) ||
      !arg_integer(&args, 2, "length", 1, SAFE_INTEGER_MAX, &length)) {
    return NULL;
  }
  while (fallocate(fd, 0, (off_t)offset, (off_t)length) != 0) {
    if (errno != EINTR) return throw_errno(env, errno, "fallocate", "fallocate");
  }
  return make_undefined(env);
}
