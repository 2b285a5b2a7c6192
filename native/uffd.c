// Dirty tracking by userfaultfd asynchronous write-protect and PAGEMAP_SCAN (Linux >= 6.7).
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
#include <stdatomic.h>
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

// PAGEMAP_SCAN, from linux/fs.h of 6.7; spelled out here for older system headers.
struct regions_page_region {
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};

struct regions_pm_scan_arg {
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};

_Static_assert(sizeof(struct regions_pm_scan_arg) == 96, "struct pm_scan_arg is 96 bytes");
_Static_assert(sizeof(struct regions_page_region) == 24, "struct page_region is 24 bytes");

#define REGIONS_PAGEMAP_SCAN _IOWR('f', 16, struct regions_pm_scan_arg)
#define REGIONS_PM_SCAN_WP_MATCHING (1ULL << 0)
#define REGIONS_PM_SCAN_CHECK_WPASYNC (1ULL << 1)
#define REGIONS_PAGE_IS_WRITTEN (1ULL << 1)

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

static pthread_once_t pagemap_once = PTHREAD_ONCE_INIT;
static int pagemap_fd = -1;
static int pagemap_errno;

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

static void pagemap_open(void) {
  pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap_fd < 0) pagemap_errno = errno;
}

typedef struct page_list {
  uint32_t *pages;
  size_t count;
  size_t capacity;
} page_list_t;

static bool page_list_push(page_list_t *list, uint32_t page) {
  if (list->count == list->capacity) {
    size_t capacity = list->capacity == 0 ? 256 : list->capacity * 2;
    uint32_t *grown = realloc(list->pages, capacity * sizeof *grown);
    if (grown == NULL) return false;
    list->pages = grown;
    list->capacity = capacity;
  }
  list->pages[list->count++] = page;
  return true;
}

// One PAGEMAP_SCAN per batch of PAGEMAP_REGIONS_PER_SCAN regions, resuming at walk_end.
// Returns 0, or an errno with *call naming what failed.
static int scan_written(uintptr_t base, uintptr_t start, uintptr_t end, bool reprotect, page_list_t *list,
                        const char **call) {
  struct regions_page_region regions[PAGEMAP_REGIONS_PER_SCAN]; // 12 KiB of stack
  uint64_t cursor = start;
  uint64_t rounds_max = (end - start) / PAGE_BYTES + 1; // each round covers at least one page
  *call = "ioctl(PAGEMAP_SCAN)";
  for (uint64_t round = 0; cursor < end; round++) {
    ASSERT(round < rounds_max);
    struct regions_pm_scan_arg arg = {
        .size = sizeof arg,
        .flags = reprotect ? REGIONS_PM_SCAN_WP_MATCHING | REGIONS_PM_SCAN_CHECK_WPASYNC : 0,
        .start = cursor,
        .end = end,
        .vec = (uintptr_t)regions,
        .vec_len = PAGEMAP_REGIONS_PER_SCAN,
        .category_mask = REGIONS_PAGE_IS_WRITTEN,
        .return_mask = REGIONS_PAGE_IS_WRITTEN,
    };
    long found = ioctl(pagemap_fd, REGIONS_PAGEMAP_SCAN, &arg);
    if (found < 0) return errno;
    ASSERT(found <= PAGEMAP_REGIONS_PER_SCAN);
    for (long r = 0; r < found; r++) {
      ASSERT(regions[r].start >= cursor && regions[r].end <= arg.walk_end && regions[r].start < regions[r].end);
      for (uint64_t page = regions[r].start; page < regions[r].end; page += PAGE_BYTES) {
        if (!page_list_push(list, (uint32_t)((page - base) / PAGE_BYTES))) {
          *call = "realloc";
          return ENOMEM;
        }
      }
    }
    ASSERT(arg.walk_end > cursor && arg.walk_end <= end);
    cursor = arg.walk_end;
  }
  return 0;
}

int uffd_pagemap_open(void) {
  pthread_once(&pagemap_once, pagemap_open);
  return pagemap_fd < 0 ? pagemap_errno : 0;
}

// Like scan_written with reprotect, for the shootdown handler: no allocation, a small vector
// on the (maybe alternate) signal stack, bits set where the caller says, EINTR retried.
int uffd_collect_written(uintptr_t start, uintptr_t end, uint8_t *bitmap, uint64_t bit_first) {
  struct regions_page_region regions[SHOOTDOWN_SCAN_REGIONS];
  _Atomic uint8_t *bits = (_Atomic uint8_t *)bitmap;
  uint64_t cursor = start;
  uint64_t rounds_max = 2 * ((end - start) / PAGE_BYTES + 1); // each round covers a page, or is an EINTR
  if (pagemap_fd < 0) return EBADF;
  for (uint64_t round = 0; cursor < end; round++) {
    if (round >= rounds_max) return EIO;
    struct regions_pm_scan_arg arg = {
        .size = sizeof arg,
        .flags = REGIONS_PM_SCAN_WP_MATCHING | REGIONS_PM_SCAN_CHECK_WPASYNC,
        .start = cursor,
        .end = end,
        .vec = (uintptr_t)regions,
        .vec_len = SHOOTDOWN_SCAN_REGIONS,
        .category_mask = REGIONS_PAGE_IS_WRITTEN,
        .return_mask = REGIONS_PAGE_IS_WRITTEN,
    };
    long found = ioctl(pagemap_fd, REGIONS_PAGEMAP_SCAN, &arg);
    if (found < 0 && errno == EINTR) continue;
    if (found < 0) return errno;
    if (found > SHOOTDOWN_SCAN_REGIONS || arg.walk_end <= cursor || arg.walk_end > end) return EIO;
    for (long r = 0; r < found; r++) {
      if (regions[r].start < cursor || regions[r].end > arg.walk_end) return EIO;
      for (uint64_t page = regions[r].start; page < regions[r].end; page += PAGE_BYTES) {
        uint64_t bit = bit_first + (page - start) / PAGE_BYTES;
        atomic_fetch_or(&bits[bit / 8], (uint8_t)(1u << (bit % 8)));
      }
    }
    cursor = arg.walk_end;
  }
  return 0;
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
  pthread_once(&pagemap_once, pagemap_open);
  if (pagemap_fd < 0) return throw_errno(env, pagemap_errno, "pagemapWritten", "open(/proc/self/pagemap)");
  page_list_t list = {0};
  const char *call = NULL;
  int err = length == 0 ? 0
                        : scan_written((uintptr_t)mapping_addr(mapping), (uintptr_t)start, (uintptr_t)start + length,
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
