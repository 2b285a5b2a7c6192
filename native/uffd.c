// Dirty tracking by userfaultfd asynchronous write-protect and PAGEMAP_SCAN (Linux >= 6.7;
// the scan itself is pagemap.c's).
//
// A userfaultfd opened with WP_ASYNC makes the kernel resolve write-protect faults itself:
// no message, no signal, and a kernel write (read(2) into the mapping) just works. The
// page loses its uffd-wp bit, which PAGEMAP_SCAN reports as PAGE_IS_WRITTEN; with
// PM_SCAN_WP_MATCHING the same ioctl protects the reported pages again, so one call per
// pmsync both collects and re-arms. WP_HUGETLBFS_SHMEM allows it on shmem (memfd, tmpfs)
// and WP_UNPOPULATED protects pages never touched, so a first store is seen too. Protection
// lives in the page tables, not in VMAs: nothing splits, no vm.max_map_count limit.
//
// UFFD_USER_MODE_ONLY makes it available without privilege (vm.unprivileged_userfaultfd = 0
// refuses only kernel-mode faults, which WP_ASYNC never needs).

#include "regions.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

typedef struct feature {
  uint64_t bit;
  const char *name;
} feature_t;

static const feature_t FEATURES_NEEDED[] = {
    {UFFD_FEATURE_WP_ASYNC, "UFFD_FEATURE_WP_ASYNC (Linux >= 6.7)"},
    {UFFD_FEATURE_WP_HUGETLBFS_SHMEM, "UFFD_FEATURE_WP_HUGETLBFS_SHMEM (Linux >= 5.19)"},
    {UFFD_FEATURE_WP_UNPOPULATED, "UFFD_FEATURE_WP_UNPOPULATED (Linux >= 6.4)"},
};
#define FEATURE_COUNT (sizeof FEATURES_NEEDED / sizeof FEATURES_NEEDED[0])

// What the kernel offers, asked once per process: an fd answers UFFDIO_API only once.
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_errno;          // userfaultfd() or UFFDIO_API failed with this
static const char *probe_call;   // ... in this call
static uint64_t probe_features;  // else: the features it offers

static int uffd_create(void) {
  return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
}

static void uffd_probe(void) {
  int fd = uffd_create();
  if (fd < 0) {
    probe_errno = errno;
    probe_call = "userfaultfd";
    return;
  }
  struct uffdio_api api = {.api = UFFD_API, .features = 0};
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    probe_errno = errno;
    probe_call = "ioctl(UFFDIO_API)";
  } else {
    probe_features = api.features;
  }
  close(fd);
}

static uint64_t features_needed(void) {
  uint64_t all = 0;
  for (size_t i = 0; i < FEATURE_COUNT; i++) all |= FEATURES_NEEDED[i].bit;
  return all;
}

// uffdAvailable() -> whether uffdOpen() can succeed here.
napi_value uffd_available(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_once(&probe_once, uffd_probe);
  uint64_t needed = features_needed();
  return make_bool(env, probe_errno == 0 && (probe_features & needed) == needed);
}

// uffdOpen() -> fd: a userfaultfd with asynchronous write-protect on shmem; the caller closes it.
napi_value uffd_open(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_once(&probe_once, uffd_probe);
  if (probe_errno != 0) return throw_errno(env, probe_errno, "uffdOpen", probe_call);
  for (size_t i = 0; i < FEATURE_COUNT; i++) {
    if (!(probe_features & FEATURES_NEEDED[i].bit)) {
      return throw_code(env, "EOPNOTSUPP", "ioctl(UFFDIO_API)",
                        "uffdOpen: this kernel lacks %s; use the 'segv' tracker", FEATURES_NEEDED[i].name);
    }
  }
  int fd = uffd_create();
  if (fd < 0) return throw_errno(env, errno, "uffdOpen", "userfaultfd");
  struct uffdio_api api = {.api = UFFD_API, .features = features_needed()};
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "uffdOpen", "ioctl(UFFDIO_API)");
  }
  ASSERT((api.features & features_needed()) == features_needed());
  return make_number(env, fd);
}

static bool uffd_writeprotect(int uffd, uint8_t *start, size_t length) {
  struct uffdio_writeprotect wp = {
      .range = {.start = (uintptr_t)start, .len = length},
      .mode = UFFDIO_WRITEPROTECT_MODE_WP,
  };
  return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) == 0;
}

// uffdRegister(uffd, handle): register the whole mapping for write-protect and protect it all.
napi_value uffd_register(napi_env env, napi_callback_info info) {
  args_t args;
  int uffd;
  mapping_t *mapping;
  if (!args_get(env, info, "uffdRegister", 2, &args) || !arg_fd(&args, 0, &uffd) || !arg_mapping(&args, 1, &mapping)) {
    return NULL;
  }
  uint8_t *start = mapping_addr(mapping);
  size_t length = mapping_length(mapping);
  if (length % PAGE_BYTES != 0) {
    return throw_code(env, "EINVAL", NULL, "uffdRegister: the mapping's length %zu is not whole pages", length);
  }
  struct uffdio_register reg = {.range = {.start = (uintptr_t)start, .len = length}, .mode = UFFDIO_REGISTER_MODE_WP};
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) return throw_errno(env, errno, "uffdRegister", "ioctl(UFFDIO_REGISTER)");
  if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
    struct uffdio_range range = reg.range;
    ioctl(uffd, UFFDIO_UNREGISTER, &range);
    return throw_code(env, "EOPNOTSUPP", "ioctl(UFFDIO_REGISTER)",
                      "uffdRegister: write-protect is not offered for this mapping");
  }
  if (!uffd_writeprotect(uffd, start, length)) {
    int err = errno;
    struct uffdio_range range = reg.range;
    ioctl(uffd, UFFDIO_UNREGISTER, &range);
    return throw_errno(env, err, "uffdRegister", "ioctl(UFFDIO_WRITEPROTECT)");
  }
  return make_undefined(env);
}

// uffdUnregister(uffd, handle): the pages stop being tracked (and protected).
napi_value uffd_unregister(napi_env env, napi_callback_info info) {
  args_t args;
  int uffd;
  mapping_t *mapping;
  if (!args_get(env, info, "uffdUnregister", 2, &args) || !arg_fd(&args, 0, &uffd) ||
      !arg_mapping(&args, 1, &mapping)) {
    return NULL;
  }
  struct uffdio_range range = {.start = (uintptr_t)mapping_addr(mapping), .len = mapping_length(mapping)};
  if (ioctl(uffd, UFFDIO_UNREGISTER, &range) != 0) {
    return throw_errno(env, errno, "uffdUnregister", "ioctl(UFFDIO_UNREGISTER)");
  }
  return make_undefined(env);
}

static napi_value page_list_to_js(napi_env env, const page_list_t *list) {
  napi_value buffer, array;
  void *data = NULL;
  if (!napi_check(env, napi_create_arraybuffer(env, list->count * sizeof(uint32_t), &data, &buffer),
                  "napi_create_arraybuffer")) {
    return NULL;
  }
  if (list->count > 0) memcpy(data, list->pages, list->count * sizeof(uint32_t));
  if (!napi_check(env, napi_create_typedarray(env, napi_uint32_array, list->count, buffer, 0, &array),
                  "napi_create_typedarray")) {
    return NULL;
  }
  return array;
}

// pagemapWritten(handle, offset, length, reprotect) -> Uint32Array of page indexes (from the
// mapping's start) written since they were last protected; with reprotect, protected again.
napi_value uffd_pagemap_written(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  uint8_t *start;
  size_t length;
  bool reprotect;
  if (!args_get(env, info, "pagemapWritten", 4, &args) || !arg_mapping(&args, 0, &mapping) ||
      !arg_mapping_pages(&args, mapping, 1, &start, &length) || !arg_bool(&args, 3, "reprotect", &reprotect)) {
    return NULL;
  }
  if (mapping_length(mapping) / PAGE_BYTES > (size_t)PAGE_INDEX_MAX) {
    return throw_code(env, "ERANGE", NULL, "pagemapWritten: the mapping has more pages than a Uint32Array can name");
  }
  int open_err = pagemap_open();
  if (open_err != 0) return throw_errno(env, open_err, "pagemapWritten", "open(/proc/self/pagemap)");
  page_list_t list = {0};
  const char *call = NULL;
  int err = length == 0 ? 0
                        : pagemap_written((uintptr_t)mapping_addr(mapping), (uintptr_t)start, (uintptr_t)start + length,
                                          reprotect, &list, &call);
  napi_value result = err == 0 ? page_list_to_js(env, &list) : NULL;
  free(list.pages);
  if (err == EPERM && reprotect) {
    return throw_code(env, "EPERM", call, "pagemapWritten: the range is not registered with an asynchronous "
                                          "write-protect userfaultfd (uffdRegister)");
  }
  if (err != 0) return throw_errno(env, err, "pagemapWritten", call);
  return result;
}
