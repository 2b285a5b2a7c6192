// One fault in one registered entry: what both signal handlers (segv.c, shootdown.c) do
// once they know whose it is.
//
//   mark       'segv': set the page's bit, then make the page writable; past faultPagesMax
//              the whole mapping, raising `overflow` (DESIGN.md section 6)
//   stale      a fault taken while a page was protected may reach its handler only after a
//              thaw or release gave the access back: ask the kernel for the page's
//              protection now (PROCMAP_QUERY, or /proc/self/maps) and, if the access is
//              allowed, return so that it runs again
//   die        print one line naming the region and offset, then let the fault be fatal
//
// Everything here runs inside a signal handler (fault_maps_open aside), so it calls only
// async-signal-safe functions: atomics, mprotect, write, sigaction, open/read/ioctl/close,
// process_vm_readv, getpid. Nothing allocates or takes a lock: the handler may have
// interrupted malloc or a lock holder on its own thread.

#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

// PROCMAP_QUERY (Linux >= 6.11, linux/fs.h): the VMA holding an address, without parsing.
struct regions_procmap_query {
  uint64_t size;
  uint64_t query_flags;
  uint64_t query_addr;
  uint64_t vma_start;
  uint64_t vma_end;
  uint64_t vma_flags;
  uint64_t vma_page_size;
  uint64_t vma_offset;
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint32_t vma_name_size;
  uint32_t build_id_size;
  uint64_t vma_name_addr;
  uint64_t build_id_addr;
};
_Static_assert(sizeof(struct regions_procmap_query) == 104, "struct procmap_query is 104 bytes");
#define REGIONS_PROCMAP_QUERY _IOWR('f', 17, struct regions_procmap_query)
#define REGIONS_PROCMAP_QUERY_VMA_READABLE 0x01
#define REGIONS_PROCMAP_QUERY_VMA_WRITABLE 0x02

// /proc/self/maps, opened with the SIGSEGV handler, for PROCMAP_QUERY. Opened in the
// handler instead, it would cost an open per fault; -1 leaves the handler to parse the file.
static int maps_fd = -1;

void fault_maps_open(void) {
  if (maps_fd < 0) maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC); // optional, as above
}

static void write_all(const char *text, size_t length) {
  while (length > 0) {
    ssize_t done = write(STDERR_FILENO, text, length);
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) return;
    text += done;
    length -= (size_t)done;
  }
}

// Prints `regions: <what> "<label>" at offset <n><why>` and makes the fault fatal: with the
// default action restored, the store runs again on return and the kernel kills the process.
// The line is built on the stack (no stdio: printf may allocate or hold a lock).
void fault_die(const entry_t *entry, const char *what, uintptr_t addr, const char *why) {
  char line[64 + TRACK_LABEL_BYTES_MAX + 160];
  size_t used = 0;
  uint64_t mapping_offset = (uint64_t)(addr - atomic_load(&entry->start));
  bool in_header = mapping_offset < entry->report_offset_bias; // before region offset 0
  const char *at = in_header ? "\" in its header at mapping offset " : "\" at offset ";
  used = text_append(line, used, sizeof line, "regions: ", 9);
  used = text_append(line, used, sizeof line, what, strlen(what));
  used = text_append(line, used, sizeof line, " \"", 2);
  used = text_append(line, used, sizeof line, entry->label, entry->label_length);
  used = text_append(line, used, sizeof line, at, strlen(at));
  used = text_append_decimal(line, used, sizeof line,
                             in_header ? mapping_offset : mapping_offset - entry->report_offset_bias);
  used = text_append(line, used, sizeof line, why, strlen(why));
  used = text_append(line, used, sizeof line, "\n", 1);
  write_all(line, used);
  struct sigaction fatal;
  memset(&fatal, 0, sizeof fatal);
  fatal.sa_handler = SIG_DFL;
  sigaction(SIGSEGV, &fatal, NULL);
}

// Is the page readable right now? A PROT_NONE page makes process_vm_readv fail with EFAULT;
// any other failure (a seccomp filter refusing the call) leaves the fault to us.
static bool page_readable(uintptr_t page) {
  char byte;
  struct iovec local = {.iov_base = &byte, .iov_len = 1};
  struct iovec remote = {.iov_base = (void *)page, .iov_len = 1};
  return syscall(SYS_process_vm_readv, getpid(), &local, 1UL, &remote, 1UL, 0UL) == 1 || errno != EFAULT;
}

// Parses /proc/self/maps one character at a time (no allocation) for the VMA holding addr.
static bool maps_parse_access(uintptr_t addr, int *prot) {
  enum { START, END, PERMS, SKIP } state = START;
  uintptr_t start = 0, end = 0;
  int perms_seen = 0, found_prot = 0;
  char chunk[512];
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  for (;;) {
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    for (ssize_t i = 0; i < got; i++) {
      char c = chunk[i];
      int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (c == '\n') {
        state = START;
        start = end = 0;
        perms_seen = found_prot = 0;
      } else if (state == START) {
        if (digit >= 0) start = start * 16 + (uintptr_t)digit;
        else state = END;
      } else if (state == END) {
        if (digit >= 0) end = end * 16 + (uintptr_t)digit;
        else state = PERMS;
      } else if (state == PERMS) {
        if (perms_seen == 0 && c == 'r') found_prot |= PROT_READ;
        if (perms_seen == 1 && c == 'w') found_prot |= PROT_WRITE;
        if (++perms_seen == 4) {
          if (addr >= start && addr < end) {
            close(fd);
            *prot = found_prot;
            return true;
          }
          state = SKIP;
        }
      }
    }
  }
  close(fd);
  *prot = PROT_NONE; // no VMA holds it
  return true;
}

bool fault_access_now(uintptr_t addr, int *prot) {
  struct regions_procmap_query query = {.size = sizeof query, .query_addr = addr};
  if (maps_fd >= 0 && ioctl(maps_fd, REGIONS_PROCMAP_QUERY, &query) == 0) {
    *prot = ((query.vma_flags & REGIONS_PROCMAP_QUERY_VMA_READABLE) ? PROT_READ : 0) |
            ((query.vma_flags & REGIONS_PROCMAP_QUERY_VMA_WRITABLE) ? PROT_WRITE : 0);
    return true;
  }
  if (maps_fd >= 0 && errno == ENOENT) {
    *prot = PROT_NONE;
    return true;
  }
  return maps_parse_access(addr, prot); // a kernel before 6.11
}

bool fault_vma_file(uintptr_t addr, uint64_t *dev, uint64_t *ino) {
  struct regions_procmap_query query = {.size = sizeof query, .query_addr = addr};
  if (maps_fd < 0 || ioctl(maps_fd, REGIONS_PROCMAP_QUERY, &query) != 0 || query.inode == 0) return false;
  *dev = ((uint64_t)query.dev_major << 32) | query.dev_minor;
  *ino = query.inode;
  return true;
}

// A fault is stale when the protection that caused it is gone by the time the handler runs
// (thawed, unregistered, replaced by zeros): the access must simply run again. Only faults
// in ranges we protect are asked, and only when no cheaper rule decides.
fault_verdict_t fault_retry_if_stale(uintptr_t addr, bool write) {
  int prot;
  if (!fault_access_now(addr, &prot)) return FAULT_NOT_OURS;
  return (prot & (write ? PROT_WRITE : PROT_READ)) ? FAULT_HANDLED : FAULT_NOT_OURS;
}

// 'segv': mark the page, then make it writable; past faultPagesMax, the whole mapping
// (a shared entry also raises the control area's overflow word: regiond counts every page).
fault_verdict_t fault_segv_mark(entry_t *entry, uintptr_t addr) {
  uintptr_t start = atomic_load(&entry->start);
  uintptr_t page = addr & ~(uintptr_t)(PAGE_BYTES - 1);
  uint64_t index = (uint64_t)(page - start) / PAGE_BYTES;
  uint64_t bit_index = entry->bit_first + index;
  if (atomic_load(&entry->foreign_none) && !page_readable(page)) return FAULT_NOT_OURS;
  // Bit first: a page is never writable while its bit is clear.
  uint8_t bit = (uint8_t)(1u << (bit_index % 8));
  uint8_t old = atomic_fetch_or(&entry->bitmap[bit_index / 8], bit);
  bool whole = atomic_load(&entry->overflow) != 0;
  if (!(old & bit) && !whole) {
    uint64_t faults = atomic_fetch_add(&entry->faults, 1) + 1;
    whole = faults >= entry->fault_pages_max;
  }
  // A page already marked (another thread's fault on it raced ours) is simply made
  // writable again: mprotect of a writable page is harmless.
  if (!whole && mprotect((void *)page, PAGE_BYTES, PROT_READ | PROT_WRITE) != 0) whole = true; // out of VMAs
  if (!whole) return FAULT_HANDLED;
  if (entry->shared) atomic_store(&entry->header[CONTROL_WORD_OVERFLOW], 1); // before any store lands unmarked
  atomic_store(&entry->overflow, 1);
  uintptr_t end = atomic_load(&entry->end);
  return mprotect((void *)start, end - start, PROT_READ | PROT_WRITE) == 0 ? FAULT_HANDLED : FAULT_NOT_OURS;
}
