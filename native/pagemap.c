// PAGEMAP_SCAN (Linux >= 6.7): the pages of a range written since they were last
// write-protected by an asynchronous userfaultfd (uffd.c), and, with PM_SCAN_WP_MATCHING,
// protected again in the same walk, so one call per pmsync both collects and re-arms.
//
// Two walks of the same ioctl: pagemap_written for a JavaScript thread (a growing list of
// page indexes), pagemap_collect_written for the shootdown's signal handler (bits in the
// shared bitmap, no allocation, a small vector on the maybe alternate signal stack).

#include "regions.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

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

static pthread_once_t pagemap_once = PTHREAD_ONCE_INIT;
static int pagemap_fd = -1;
static int pagemap_errno;

static void pagemap_open_once(void) {
  pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap_fd < 0) pagemap_errno = errno;
}

// The descriptor stays open for the process's life: the handler cannot open it (it may run
// before any JavaScript asked), and one descriptor serves every scan.
int pagemap_open(void) {
  pthread_once(&pagemap_once, pagemap_open_once);
  return pagemap_fd < 0 ? pagemap_errno : 0;
}

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
int pagemap_written(uintptr_t base, uintptr_t start, uintptr_t end, bool reprotect, page_list_t *list,
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

// Like pagemap_written with reprotect, for the shootdown handler: no allocation, a small
// vector on the (maybe alternate) signal stack, bits set where the caller says, EINTR
// retried, and a kernel answer out of bounds an error (EIO) rather than an assertion.
int pagemap_collect_written(uintptr_t start, uintptr_t end, uint8_t *bitmap, uint64_t bit_first) {
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
