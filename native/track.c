// Dirty tracking and the freeze: a registry of mapped ranges and the SIGSEGV handler that
// serves them (DESIGN.md section 6).
//
// A registered range has a mode:
//   'segv'     the whole mapping is made read-only; the first store to a page faults, the
//              handler sets the page's bit in the caller's bitmap (1 bit per page, bit
//              i%8 of byte i/8) and makes that page writable. Each such page may split a
//              VMA, so after faultPagesMax pages the handler makes the whole mapping
//              writable and raises `overflow`: from then on every page counts as dirty.
//   'uffd'     userfaultfd write-protect does the tracking (uffd.c); only the freeze is here.
//   'none'     no tracking (scan and manual modes); only the freeze.
//   'readonly' the mapping is made read-only; a store prints one line naming the label and
//              the offset on stderr, then the process dies by SIGSEGV as it would have.
// Any mode can be frozen: trackFreeze makes the whole mapping read-only (one mprotect, so
// Linux shoots down the TLBs of every thread); a thread storing meanwhile waits in the
// handler on the entry's freeze word until trackThaw, then returns and its store retries.
//
// A shared entry (sharedRegister: a mapping of a shared working copy, linked to the copy's
// control mapping, its mapper slot and its first region page; mode 'segv', 'uffd' or
// 'none') is frozen by regiond's shootdown signal instead, and its bits go to the shared
// bitmap in the control area; shootdown.c serves it (the entry's layout is in registry.h).
//
// Every other fault goes to the handler that was installed before ours (Node's, which
// serves V8's WebAssembly traps), or, if that was SIG_DFL or SIG_IGN, to the default
// action: the process dies by SIGSEGV exactly as it would without us.
//
// The registry is a fixed table. JavaScript threads write it under `writers`; the handler
// reads it without locks:
//
//   state:  FREE --register--> LIVE --unregister--> DYING --no users left--> FREE
//
// A handler announces itself in `users` before it trusts an entry (and re-checks LIVE
// after), so unregister can wait for it to leave before the slot is reused. A handler that
// may unprotect a page also counts itself in `active` before it checks `frozen`; the freeze
// sets `frozen` before it waits for `active` to drain (both sequentially consistent), so no
// page is unprotected after the freeze's mprotect.
//
// A fault can be stale: taken while a page was protected, its handler runs only after a
// thaw or unregister gave the access back. Before calling a fault in one of our ranges
// (live, dying, or among the last TRACK_RELEASED_MAX released) someone else's, the handler
// asks the kernel for the page's protection now (PROCMAP_QUERY, or /proc/self/maps): if the
// access is allowed, it returns and the access runs again.
//
// Inside the handler only async-signal-safe calls: atomics, mprotect, futex, write,
// sigaction, process_vm_readv, gettid, open/read/ioctl/close, kill. While it runs, the
// shootdown signal is blocked (sa_mask), so a shootdown never waits for its own thread.

#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define X86_PF_WRITE 0x2 // page-fault error code: the access was a write

static const char *const MODE_NAMES[] = {"segv", "uffd", "none", "readonly"};
#define MODE_COUNT (sizeof MODE_NAMES / sizeof MODE_NAMES[0])
// sharedRegister's mechanisms: the first three modes, in the same order.
#define SHARED_MECHANISM_COUNT 3

static const char *const THAW_NAMES[] = {"r", "rw"};
static const int THAW_PROT[] = {PROT_READ, PROT_READ | PROT_WRITE};

typedef struct released {
  _Atomic uintptr_t start; // end is cleared first and set last, so a reader sees a range or none
  _Atomic uintptr_t end;
} released_t;

static entry_t entries[TRACK_ENTRIES_MAX];
static _Atomic size_t entries_used; // high-water mark: the handler scans [0, entries_used)
static released_t released[TRACK_RELEASED_MAX]; // ranges whose entry was released lately
static size_t released_next;
static pthread_mutex_t writers = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous_action;
static bool handler_installed;
static int maps_fd = -1; // /proc/self/maps, opened with the handler: for PROCMAP_QUERY

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

// ---- the handler side (async-signal-safe only)

static long futex_call(_Atomic uint32_t *word, int op, uint32_t value) {
  return syscall(SYS_futex, (uint32_t *)word, op, value, NULL, NULL, 0);
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

static size_t append(char *out, size_t used, size_t capacity, const char *text, size_t length) {
  for (size_t i = 0; i < length && used + 1 < capacity; i++) out[used++] = text[i];
  return used;
}

static size_t append_decimal(char *out, size_t used, size_t capacity, uint64_t value) {
  char digits[24];
  size_t count = 0;
  do {
    digits[count++] = (char)('0' + value % 10);
    value /= 10;
  } while (value > 0);
  while (count > 0 && used + 1 < capacity) out[used++] = digits[--count];
  return used;
}

// Prints `regions: <what> "<label>" at offset <n><why>` and makes the fault fatal: with the
// default action restored, the store runs again on return and the kernel kills the process.
static void die_with_message(const entry_t *entry, const char *what, uintptr_t addr, const char *why) {
  char line[64 + TRACK_LABEL_BYTES_MAX + 160];
  size_t used = 0;
  uint64_t mapping_offset = (uint64_t)(addr - atomic_load(&entry->start));
  bool in_header = mapping_offset < entry->report_offset_bias; // before region offset 0
  const char *at = in_header ? "\" in its header at mapping offset " : "\" at offset ";
  used = append(line, used, sizeof line, "regions: ", 9);
  used = append(line, used, sizeof line, what, strlen(what));
  used = append(line, used, sizeof line, " \"", 2);
  used = append(line, used, sizeof line, entry->label, entry->label_length);
  used = append(line, used, sizeof line, at, strlen(at));
  used = append_decimal(line, used, sizeof line, in_header ? mapping_offset : mapping_offset - entry->report_offset_bias);
  used = append(line, used, sizeof line, why, strlen(why));
  used = append(line, used, sizeof line, "\n", 1);
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

// The protection of the VMA holding addr now (PROT_NONE if unmapped); false if unknown.
static bool access_now(uintptr_t addr, int *prot) {
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

// A fault is stale when the protection that caused it is gone by the time the handler runs
// (thawed, unregistered, replaced by zeros): the access must simply run again. Only faults
// in ranges we protect are asked, and only when no cheaper rule decides.
fault_verdict_t track_retry_if_stale(uintptr_t addr, bool write) {
  int prot;
  if (!access_now(addr, &prot)) return FAULT_NOT_OURS;
  return (prot & (write ? PROT_WRITE : PROT_READ)) ? FAULT_HANDLED : FAULT_NOT_OURS;
}

static bool released_holds(uintptr_t addr) {
  for (size_t i = 0; i < TRACK_RELEASED_MAX; i++) {
    uintptr_t start = atomic_load(&released[i].start);
    if (addr >= start && addr < atomic_load(&released[i].end)) return true;
  }
  return false;
}

static void wait_thawed(entry_t *entry) {
  futex_call(&entry->frozen, FUTEX_WAIT_PRIVATE, 1); // returns at once if already thawed
}

// 'segv': mark the page, then make it writable; past faultPagesMax, the whole mapping
// (a shared entry also raises the control area's overflow word: regiond counts every page).
fault_verdict_t track_segv_mark(entry_t *entry, uintptr_t addr) {
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

// A write fault into a live entry's range.
static fault_verdict_t entry_write_fault(entry_t *entry, uintptr_t addr) {
  if (entry->mode == MODE_READONLY) {
    if (track_retry_if_stale(addr, true) == FAULT_HANDLED) return FAULT_HANDLED;
    die_with_message(entry, "store into read-only region", addr, "");
    return FAULT_HANDLED;
  }
  if (entry->shared) return shootdown_write_fault(entry, addr);
  atomic_fetch_add(&entry->active, 1);
  if (atomic_load(&entry->frozen)) {
    atomic_fetch_sub(&entry->active, 1);
    if (atomic_load(&entry->freezer_tid) == (int32_t)syscall(SYS_gettid)) {
      die_with_message(entry, "store into frozen region", addr,
                       " by the thread that froze it (it would wait for itself forever)");
      return FAULT_HANDLED;
    }
    wait_thawed(entry);
    return FAULT_HANDLED;
  }
  // 'uffd' and 'none' protect only while frozen: this fault was taken before a thaw, or
  // comes from someone else's protect().
  fault_verdict_t verdict = entry->mode == MODE_SEGV ? track_segv_mark(entry, addr) : track_retry_if_stale(addr, true);
  atomic_fetch_sub(&entry->active, 1);
  return verdict;
}

static bool entry_holds(entry_t *entry, uintptr_t addr) {
  return addr >= atomic_load(&entry->start) && addr < atomic_load(&entry->end);
}

// A protection fault (SEGV_ACCERR) at addr: ours, or someone else's.
static fault_verdict_t track_fault(uintptr_t addr, bool write) {
  size_t used = atomic_load(&entries_used);
  for (size_t i = 0; i < used; i++) {
    entry_t *entry = &entries[i];
    if (atomic_load_explicit(&entry->state, memory_order_relaxed) == ENTRY_FREE) continue;
    if (addr < atomic_load_explicit(&entry->start, memory_order_relaxed) ||
        addr >= atomic_load_explicit(&entry->end, memory_order_relaxed)) {
      continue;
    }
    atomic_fetch_add(&entry->users, 1);
    uint32_t state = atomic_load(&entry->state);
    bool holds = state != ENTRY_FREE && entry_holds(entry, addr);
    fault_verdict_t verdict = FAULT_NOT_OURS;
    if (holds) verdict = state == ENTRY_LIVE && write ? entry_write_fault(entry, addr) : track_retry_if_stale(addr, write);
    atomic_fetch_sub(&entry->users, 1);
    if (holds) return verdict; // ranges never overlap: no other entry can hold addr
  }
  // Released lately: a fault taken before the release may reach its handler only now.
  return released_holds(addr) ? track_retry_if_stale(addr, write) : FAULT_NOT_OURS;
}

// The previous handler's view of the world: its mask, its flags, its kind of function.
static void chain(int signo, siginfo_t *info, void *context) {
  const struct sigaction *old = &previous_action;
  bool fatal_default = (old->sa_flags & SA_SIGINFO) ? old->sa_sigaction == NULL
                                                    : (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN);
  if (fatal_default) {
    // SIG_IGN cannot hold back a real fault either: both mean "die by SIGSEGV".
    struct sigaction fatal;
    memset(&fatal, 0, sizeof fatal);
    fatal.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &fatal, NULL);
    if (info->si_code <= 0) raise(SIGSEGV); // sent, not a fault: nothing will re-raise it
    return;                                 // a fault: the access runs again and is fatal now
  }
  sigset_t saved;
  pthread_sigmask(SIG_BLOCK, &old->sa_mask, &saved);
  if (old->sa_flags & SA_SIGINFO) {
    old->sa_sigaction(signo, info, context);
  } else {
    old->sa_handler(signo);
  }
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static void track_on_segv(int signo, siginfo_t *info, void *context) {
  int saved_errno = errno;
  const ucontext_t *uc = context;
  bool write = (uc->uc_mcontext.gregs[REG_ERR] & X86_PF_WRITE) != 0;
  fault_verdict_t verdict = FAULT_NOT_OURS;
  // Only protection faults made by the kernel can be ours: not a missing mapping (SEGV_MAPERR),
  // not a signal someone sent (si_code <= 0).
  if (info->si_code == SEGV_ACCERR) verdict = track_fault((uintptr_t)info->si_addr, write);
  if (verdict == FAULT_NOT_OURS) chain(signo, info, context);
  errno = saved_errno;
}

// ---- the JavaScript side

size_t track_entries_used(void) { return atomic_load(&entries_used); }

entry_t *track_entry(size_t index) {
  ASSERT(index < TRACK_ENTRIES_MAX);
  return &entries[index];
}

// Our SIGSEGV action. No SA_NODEFER: SIGSEGV stays blocked in the handler, so raise() in
// chain() is delivered after it returns, with the default action in place. The shootdown
// signal is blocked too: a shootdown must never wait for a handler it interrupted.
static void segv_action(struct sigaction *ours) {
  memset(ours, 0, sizeof *ours);
  ours->sa_sigaction = track_on_segv;
  ours->sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&ours->sa_mask);
  if (shootdown_signal() != 0) sigaddset(&ours->sa_mask, shootdown_signal());
}

// shootdownInstall: the SIGSEGV handler, if installed already, now blocks the shootdown
// signal too. If someone replaced our action since, theirs is left alone.
void track_segv_block_shootdown(void) {
  pthread_mutex_lock(&writers);
  struct sigaction current, ours;
  if (handler_installed && sigaction(SIGSEGV, NULL, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
      current.sa_sigaction == track_on_segv) {
    segv_action(&ours);
    int rc = sigaction(SIGSEGV, &ours, NULL);
    ASSERT(rc == 0); // the same signal and handler as before: only a broken invariant fails
  }
  pthread_mutex_unlock(&writers);
}

// Under writers. Reads the current action first, so the handler never sees an unset one.
static bool install_handler(args_t *args) {
  if (handler_installed) return true;
  struct sigaction ours;
  maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC); // optional: the handler can parse instead
  if (sigaction(SIGSEGV, NULL, &previous_action) != 0) {
    throw_errno(args->env, errno, args->fn, "sigaction");
    return false;
  }
  segv_action(&ours);
  if (sigaction(SIGSEGV, &ours, NULL) != 0) {
    throw_errno(args->env, errno, args->fn, "sigaction");
    return false;
  }
  handler_installed = true;
  return true;
}

static entry_t *entry_of(const mapping_t *mapping) {
  size_t used = atomic_load(&entries_used);
  for (size_t i = 0; i < used; i++) {
    if (atomic_load(&entries[i].state) == ENTRY_LIVE && entries[i].owner == mapping) return &entries[i];
  }
  return NULL;
}

// Under writers.
static entry_t *entry_find_or_throw(args_t *args, const mapping_t *mapping) {
  entry_t *entry = entry_of(mapping);
  if (entry == NULL) {
    throw_code(args->env, "EINVAL", NULL, "%s: the mapping is not registered for tracking; call trackRegister first",
               args->fn);
  }
  return entry;
}

static int64_t monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

// Waits until no handler is counted in *word; false after TRACK_DRAIN_MS_MAX.
static bool drain(_Atomic uint32_t *word) {
  int64_t deadline = monotonic_ms() + TRACK_DRAIN_MS_MAX;
  while (atomic_load(word) != 0) {
    if (monotonic_ms() > deadline) return false;
    sched_yield();
  }
  return true;
}

static void thaw_and_wake(entry_t *entry) {
  atomic_store(&entry->freezer_tid, 0);
  atomic_store(&entry->frozen, 0);
  futex_call(&entry->frozen, FUTEX_WAKE_PRIVATE, INT32_MAX);
}

static bool mprotect_entry(entry_t *entry, int prot) {
  uintptr_t start = atomic_load(&entry->start);
  return mprotect((void *)start, atomic_load(&entry->end) - start, prot) == 0;
}

// Under writers. The protection comes back first, then waiters are woken (their store runs
// again and must not fault), then the slot waits for handlers still reading it. A shared
// entry is first retired (shootdown.c), which restores its protection under the shootdown's
// gate, so a shootdown running on another thread cannot protect it again after.
static void entry_release(entry_t *entry, bool restore) {
  if (entry->shared) shootdown_retire(entry, restore);
  bool changed_protection =
      !entry->shared && (entry->mode == MODE_SEGV || entry->mode == MODE_READONLY || atomic_load(&entry->frozen));
  if (restore && changed_protection) {
    int prot = mapping_writable(entry->owner) ? PROT_READ | PROT_WRITE : PROT_READ;
    bool ok = mprotect_entry(entry, prot);
    ASSERT(ok); // the range is ours and whole: only a broken invariant fails here
  }
  released_t *slot = &released[released_next];
  released_next = (released_next + 1) % TRACK_RELEASED_MAX;
  atomic_store(&slot->end, 0);
  atomic_store(&slot->start, atomic_load(&entry->start));
  atomic_store(&slot->end, atomic_load(&entry->end));
  atomic_store(&entry->state, ENTRY_DYING);
  thaw_and_wake(entry);
  bool drained = drain(&entry->users);
  ASSERT(drained);
  if (entry->bitmap_ref != NULL) napi_delete_reference(entry->env, entry->bitmap_ref);
  entry->bitmap_ref = NULL;
  entry->bitmap = NULL;
  entry->owner = NULL;
  if (entry->shared) {
    napi_delete_reference(entry->env, entry->control_ref);
    mapping_share_release((mapping_t *)entry->control); // no handler reads the control area any more
    entry->control_ref = NULL;
    entry->control = NULL;
    entry->header = NULL;
    entry->shared = false;
  }
  atomic_store(&entry->state, ENTRY_FREE);
}

void track_forget(const mapping_t *mapping) {
  pthread_mutex_lock(&writers);
  entry_t *entry = entry_of(mapping);
  if (entry != NULL) entry_release(entry, true);
  pthread_mutex_unlock(&writers);
}

// Under writers throughout, so no registration can claim the address range in between.
// A shared entry is retired before the range closes: no shootdown protects the zeros after.
void track_forget_unmapping(mapping_t *mapping, void (*close_range)(mapping_t *mapping)) {
  pthread_mutex_lock(&writers);
  entry_t *entry = entry_of(mapping);
  if (entry != NULL && entry->shared) shootdown_retire(entry, true);
  close_range(mapping); // zeros (writable) or nothing: a woken waiter's store no longer faults
  if (entry != NULL) entry_release(entry, false);
  pthread_mutex_unlock(&writers);
}

void track_note_protect(const mapping_t *mapping, int prot) {
  if (prot != PROT_NONE) return;
  pthread_mutex_lock(&writers);
  entry_t *entry = entry_of(mapping);
  if (entry != NULL) atomic_store(&entry->foreign_none, 1);
  pthread_mutex_unlock(&writers);
}

typedef struct track_options {
  track_mode_t mode;
  char label[TRACK_LABEL_BYTES_MAX + 1];
  size_t label_length;
  napi_value bitmap;
  uint8_t *bitmap_data;
  size_t bitmap_length;
  int64_t fault_pages_max;
  int64_t report_offset_bias;
} track_options_t;

// The label goes into a one-line message: control characters become '?'.
static void label_sanitize(char *label, size_t length) {
  for (size_t i = 0; i < length; i++) {
    unsigned char c = (unsigned char)label[i];
    if (c < 0x20 || c == 0x7f) label[i] = '?';
  }
}

static bool options_parse(args_t *args, const mapping_t *mapping, napi_value object, track_options_t *out) {
  napi_value mode, label, bitmap, fault_pages_max, data_offset;
  size_t mode_index;
  if (!object_property(args, object, "mode", &mode) || !object_property(args, object, "label", &label) ||
      !object_property(args, object, "bitmap", &bitmap) ||
      !object_property(args, object, "faultPagesMax", &fault_pages_max) ||
      !object_property(args, object, "dataOffset", &data_offset)) {
    return false;
  }
  if (mode == NULL || label == NULL) {
    throw_type(args->env, "%s: options.mode and options.label are required", args->fn);
    return false;
  }
  if (!value_choice(args, mode, "options.mode", MODE_NAMES, MODE_COUNT, &mode_index) ||
      !value_string(args, label, "options.label", out->label, sizeof out->label, &out->label_length)) {
    return false;
  }
  label_sanitize(out->label, out->label_length);
  out->mode = (track_mode_t)mode_index;
  out->fault_pages_max = TRACK_FAULT_PAGES_DEFAULT;
  out->report_offset_bias = 0;
  out->bitmap = bitmap;
  out->bitmap_data = NULL;
  out->bitmap_length = 0;
  if (fault_pages_max != NULL &&
      !value_integer(args, fault_pages_max, "options.faultPagesMax", 1, TRACK_FAULT_PAGES_MAX, &out->fault_pages_max)) {
    return false;
  }
  if (data_offset != NULL && !value_integer(args, data_offset, "options.dataOffset", 0,
                                            (int64_t)mapping_length(mapping), &out->report_offset_bias)) {
    return false;
  }
  if (bitmap != NULL && !value_bytes(args, bitmap, "options.bitmap", &out->bitmap_data, &out->bitmap_length)) {
    return false;
  }
  return true;
}

static bool options_check(args_t *args, const mapping_t *mapping, const track_options_t *options) {
  size_t pages = (mapping_length(mapping) + PAGE_BYTES - 1) / PAGE_BYTES;
  size_t bitmap_bytes = (pages + 7) / 8;
  if (options->mode != MODE_SEGV) return true;
  if (!mapping_writable(mapping)) {
    throw_code(args->env, "EINVAL", NULL, "%s: mode 'segv' tracks stores, but the mapping is read-only", args->fn);
    return false;
  }
  if (options->bitmap == NULL) {
    throw_type(args->env, "%s: mode 'segv' needs options.bitmap (a Uint8Array of %zu bytes)", args->fn, bitmap_bytes);
    return false;
  }
  if (options->bitmap_length < bitmap_bytes) {
    throw_code(args->env, "ERANGE", NULL, "%s: options.bitmap has %zu bytes; %zu pages need %zu", args->fn,
               options->bitmap_length, pages, bitmap_bytes);
    return false;
  }
  return true;
}

// Under writers: a FREE slot, or NULL with ENOSPC thrown.
static entry_t *entry_claim(args_t *args) {
  size_t used = atomic_load(&entries_used);
  for (size_t i = 0; i < used; i++) {
    if (atomic_load(&entries[i].state) == ENTRY_FREE) return &entries[i];
  }
  if (used == TRACK_ENTRIES_MAX) {
    throw_code(args->env, "ENOSPC", NULL, "%s: %d mappings are registered already; unregister some", args->fn,
               TRACK_ENTRIES_MAX);
    return NULL;
  }
  atomic_store(&entries_used, used + 1);
  return &entries[used];
}

// Under writers. Fills a FREE slot; the caller publishes it LIVE.
static bool entry_fill(args_t *args, entry_t *entry, const mapping_t *mapping, const track_options_t *options) {
  ASSERT(atomic_load(&entry->state) == ENTRY_FREE);
  ASSERT(!entry->held); // a FREE slot is no handler's
  entry->bitmap_ref = NULL;
  if (options->bitmap != NULL && options->mode == MODE_SEGV &&
      !napi_check(args->env, napi_create_reference(args->env, options->bitmap, 1, &entry->bitmap_ref),
                  "napi_create_reference")) {
    return false;
  }
  uintptr_t start = (uintptr_t)mapping_addr(mapping);
  atomic_store(&entry->start, start);
  atomic_store(&entry->end, start + mapping_length(mapping));
  atomic_store(&entry->frozen, 0);
  atomic_store(&entry->freezer_tid, 0);
  atomic_store(&entry->faults, 0);
  atomic_store(&entry->overflow, 0);
  atomic_store(&entry->foreign_none, 0);
  atomic_store(&entry->freeze_seq, 0);
  atomic_store(&entry->acked_seq, 0);
  atomic_store(&entry->acked, 0);
  atomic_store(&entry->retiring, 0);
  entry->mode = options->mode;
  entry->owner = mapping;
  entry->bitmap = options->mode == MODE_SEGV ? (_Atomic uint8_t *)options->bitmap_data : NULL;
  entry->bit_first = 0;
  entry->fault_pages_max = (uint64_t)options->fault_pages_max;
  entry->report_offset_bias = (uint64_t)options->report_offset_bias;
  entry->env = args->env;
  memcpy(entry->label, options->label, options->label_length + 1);
  entry->label_length = options->label_length;
  entry->shared = false;
  entry->control = NULL;
  entry->control_ref = NULL;
  entry->header = NULL;
  entry->round = 0;
  return true;
}

// Under writers: a registry entry for the mapping, published LIVE, with the first
// protection of its mode in place; or NULL with an exception pending.
static entry_t *entry_add(args_t *args, const mapping_t *mapping, const track_options_t *options,
                          bool (*extra)(args_t *args, entry_t *entry, const void *more), const void *more) {
  if (entry_of(mapping) != NULL) {
    throw_code(args->env, "EEXIST", NULL, "%s: the mapping is registered already; trackUnregister first", args->fn);
    return NULL;
  }
  if (!install_handler(args)) return NULL;
  entry_t *entry = entry_claim(args);
  if (entry == NULL || !entry_fill(args, entry, mapping, options)) return NULL;
  if (extra != NULL && !extra(args, entry, more)) {
    if (entry->bitmap_ref != NULL) napi_delete_reference(args->env, entry->bitmap_ref);
    entry->bitmap_ref = NULL;
    entry->owner = NULL;
    return NULL; // still FREE
  }
  atomic_store(&entry->state, ENTRY_LIVE);
  // 'segv' and 'readonly' start with every page read-only: the first store to each faults.
  if ((options->mode == MODE_SEGV || options->mode == MODE_READONLY) && !mprotect_entry(entry, PROT_READ)) {
    int err = errno;
    entry_release(entry, false);
    throw_errno(args->env, err, args->fn, "mprotect");
    return NULL;
  }
  return entry;
}

static napi_value register_locked(args_t *args, const mapping_t *mapping, const track_options_t *options) {
  return entry_add(args, mapping, options, NULL, NULL) == NULL ? NULL : make_undefined(args->env);
}

// trackRegister(handle, { mode, label, bitmap?, faultPagesMax?, dataOffset? })
napi_value track_register(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  track_options_t options;
  if (!args_get(env, info, "trackRegister", 2, &args) || !arg_mapping(&args, 0, &mapping) ||
      !arg_object(&args, 1, "options") || !options_parse(&args, mapping, args.argv[1], &options) ||
      !options_check(&args, mapping, &options)) {
    return NULL;
  }
  pthread_mutex_lock(&writers);
  napi_value result = register_locked(&args, mapping, &options);
  pthread_mutex_unlock(&writers);
  return result;
}

typedef struct shared_options {
  mapping_t *control;
  napi_value control_value;
  int64_t slot;
  int64_t first_page;
} shared_options_t;

static const char *const SHARED_MECHANISM_NAMES[SHARED_MECHANISM_COUNT] = {"segv", "uffd", "none"};
_Static_assert(MODE_SEGV == 0 && MODE_UFFD == 1 && MODE_NONE == 2, "mechanism index = track mode");

// { control, slot, firstPage, mechanism, label, faultPagesMax? } -> the two option sets.
static bool shared_options_parse(args_t *args, napi_value object, track_options_t *out, shared_options_t *shared) {
  napi_value control, slot, first_page, mechanism, label, fault_pages_max;
  size_t mechanism_index;
  if (!object_property(args, object, "control", &control) || !object_property(args, object, "slot", &slot) ||
      !object_property(args, object, "firstPage", &first_page) ||
      !object_property(args, object, "mechanism", &mechanism) || !object_property(args, object, "label", &label) ||
      !object_property(args, object, "faultPagesMax", &fault_pages_max)) {
    return false;
  }
  if (control == NULL || slot == NULL || first_page == NULL || mechanism == NULL || label == NULL) {
    throw_type(args->env, "%s: options.control, .slot, .firstPage, .mechanism and .label are required", args->fn);
    return false;
  }
  memset(out, 0, sizeof *out);
  out->fault_pages_max = TRACK_FAULT_PAGES_DEFAULT;
  if (!value_mapping(args, control, "options.control", &shared->control) ||
      !value_integer(args, slot, "options.slot", 0, CONTROL_SLOTS_MAX - 1, &shared->slot) ||
      !value_integer(args, first_page, "options.firstPage", 0, PAGE_INDEX_MAX, &shared->first_page) ||
      !value_choice(args, mechanism, "options.mechanism", SHARED_MECHANISM_NAMES, SHARED_MECHANISM_COUNT,
                    &mechanism_index) ||
      !value_string(args, label, "options.label", out->label, sizeof out->label, &out->label_length) ||
      (fault_pages_max != NULL && !value_integer(args, fault_pages_max, "options.faultPagesMax", 1,
                                                 TRACK_FAULT_PAGES_MAX, &out->fault_pages_max))) {
    return false;
  }
  label_sanitize(out->label, out->label_length);
  out->mode = (track_mode_t)mechanism_index;
  shared->control_value = control;
  return true;
}

static bool shared_options_check(args_t *args, const mapping_t *mapping, const track_options_t *options,
                                 const shared_options_t *shared) {
  uint64_t pages = (mapping_length(mapping) + PAGE_BYTES - 1) / PAGE_BYTES;
  uint64_t bitmap_bytes = ((uint64_t)shared->first_page + pages + 7) / 8;
  size_t control_length = mapping_length(shared->control);
  if (shootdown_signal() == 0) {
    throw_code(args->env, "EINVAL", NULL, "%s: no shootdown signal is installed; call shootdownInstall(signal) first",
               args->fn);
    return false;
  }
  if (!mapping_writable(mapping) || !mapping_writable(shared->control)) {
    throw_code(args->env, "EINVAL", NULL, "%s: the %s mapping is read-only; a shared registration needs both writable",
               args->fn, mapping_writable(mapping) ? "control" : "data");
    return false;
  }
  if (shared->control == mapping) {
    throw_code(args->env, "EINVAL", NULL, "%s: options.control is the data mapping itself", args->fn);
    return false;
  }
  if (control_length < CONTROL_BITMAP_OFFSET || bitmap_bytes > control_length - CONTROL_BITMAP_OFFSET) {
    throw_code(args->env, "ERANGE", NULL,
               "%s: pages %lld..%llu need %llu bitmap bytes after byte %d of the control mapping, which has %zu bytes",
               args->fn, (long long)shared->first_page, (unsigned long long)(shared->first_page + pages - 1),
               (unsigned long long)bitmap_bytes, CONTROL_BITMAP_OFFSET, control_length);
    return false;
  }
  if (options->mode == MODE_UFFD) {
    int err = uffd_pagemap_open();
    if (err != 0) {
      throw_errno(args->env, err, args->fn, "open(/proc/self/pagemap)");
      return false;
    }
  }
  return true;
}

// The control file's identity (device, inode) from PROCMAP_QUERY; without it, the address.
static void control_identity(const mapping_t *control, uint64_t *dev, uint64_t *ino) {
  struct regions_procmap_query query = {.size = sizeof query, .query_addr = (uintptr_t)mapping_addr(control)};
  if (maps_fd >= 0 && ioctl(maps_fd, REGIONS_PROCMAP_QUERY, &query) == 0 && query.inode != 0) {
    *dev = ((uint64_t)query.dev_major << 32) | query.dev_minor;
    *ino = query.inode;
    return;
  }
  *dev = 0;
  *ino = (uintptr_t)mapping_addr(control);
}

// entry_add's extra step for sharedRegister, before the entry goes LIVE.
static bool shared_fill(args_t *args, entry_t *entry, const void *more) {
  const shared_options_t *shared = more;
  if (!napi_check(args->env, napi_create_reference(args->env, shared->control_value, 1, &entry->control_ref),
                  "napi_create_reference")) {
    return false;
  }
  mapping_share_acquire(shared->control); // unmap() of the control leaves zeros, never a hole
  uint8_t *control = mapping_addr(shared->control);
  entry->control = shared->control;
  entry->header = (_Atomic uint32_t *)control;
  entry->slot = (uint32_t)shared->slot;
  entry->bitmap = (_Atomic uint8_t *)(control + CONTROL_BITMAP_OFFSET);
  entry->bit_first = (uint64_t)shared->first_page;
  control_identity(shared->control, &entry->group_dev, &entry->group_ino);
  entry->shared = true;
  return true;
}

// sharedRegister(handle, { control, slot, firstPage, mechanism, label, faultPagesMax? })
napi_value track_shared_register(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  track_options_t options;
  shared_options_t shared;
  if (!args_get(env, info, "sharedRegister", 2, &args) || !arg_mapping(&args, 0, &mapping) ||
      !arg_object(&args, 1, "options") || !shared_options_parse(&args, args.argv[1], &options, &shared) ||
      !shared_options_check(&args, mapping, &options, &shared)) {
    return NULL;
  }
  pthread_mutex_lock(&writers);
  entry_t *entry = entry_add(&args, mapping, &options, shared_fill, &shared);
  pthread_mutex_unlock(&writers);
  return entry == NULL ? NULL : make_undefined(env);
}

// trackUnregister(handle): the mapping gets back the protection it was mapped with and
// frozen waiters are released. Unregistering an unregistered mapping does nothing.
napi_value track_unregister(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  if (!args_get(env, info, "trackUnregister", 1, &args) || !arg_mapping(&args, 0, &mapping)) return NULL;
  track_forget(mapping);
  return make_undefined(env);
}

// trackStatus(handle) -> { faults, overflow }
napi_value track_status(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  napi_value result, faults, overflow;
  if (!args_get(env, info, "trackStatus", 1, &args) || !arg_mapping(&args, 0, &mapping)) return NULL;
  pthread_mutex_lock(&writers);
  entry_t *entry = entry_find_or_throw(&args, mapping);
  uint64_t fault_count = entry == NULL ? 0 : atomic_load(&entry->faults);
  bool overflowed = entry != NULL && atomic_load(&entry->overflow) != 0;
  pthread_mutex_unlock(&writers);
  if (entry == NULL) return NULL;
  if (!napi_check(env, napi_create_object(env, &result), "napi_create_object")) return NULL;
  faults = make_number(env, (double)fault_count);
  overflow = make_bool(env, overflowed);
  if (faults == NULL || overflow == NULL ||
      !napi_check(env, napi_set_named_property(env, result, "faults", faults), "napi_set_named_property") ||
      !napi_check(env, napi_set_named_property(env, result, "overflow", overflow), "napi_set_named_property")) {
    return NULL;
  }
  return result;
}

// trackReset(handle): zero the fault count and the overflow flag (the caller clears the bitmap).
napi_value track_reset(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  if (!args_get(env, info, "trackReset", 1, &args) || !arg_mapping(&args, 0, &mapping)) return NULL;
  pthread_mutex_lock(&writers);
  entry_t *entry = entry_find_or_throw(&args, mapping);
  if (entry != NULL) {
    atomic_store(&entry->faults, 0);
    atomic_store(&entry->overflow, 0);
  }
  pthread_mutex_unlock(&writers);
  return entry == NULL ? NULL : make_undefined(env);
}

static napi_value refuse_shared(args_t *args) {
  return throw_code(args->env, "EINVAL", NULL, "%s: the mapping is registered shared; regiond's shootdown freezes it",
                    args->fn);
}

static napi_value freeze_locked(args_t *args, entry_t *entry) {
  if (entry->shared) return refuse_shared(args);
  if (atomic_load(&entry->frozen)) return throw_code(args->env, "EINVAL", NULL, "%s: the mapping is frozen already", args->fn);
  atomic_store(&entry->freezer_tid, (int32_t)syscall(SYS_gettid));
  atomic_store(&entry->frozen, 1);
  if (!drain(&entry->active)) {
    thaw_and_wake(entry);
    return throw_code(args->env, "ETIMEDOUT", NULL, "%s: a fault handler did not leave the mapping", args->fn);
  }
  if (!mprotect_entry(entry, PROT_READ)) { // the shootdown: every thread's TLB loses write access
    int err = errno;
    thaw_and_wake(entry);
    return throw_errno(args->env, err, args->fn, "mprotect");
  }
  return make_undefined(args->env);
}

// trackFreeze(handle): no thread of this process can store into the mapping until trackThaw.
napi_value track_freeze(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  if (!args_get(env, info, "trackFreeze", 1, &args) || !arg_mapping(&args, 0, &mapping)) return NULL;
  pthread_mutex_lock(&writers);
  entry_t *entry = entry_find_or_throw(&args, mapping);
  napi_value result = entry == NULL ? NULL : freeze_locked(&args, entry);
  pthread_mutex_unlock(&writers);
  return result;
}

// trackThaw(handle, access): mprotect(whole mapping, access), then wake every waiter.
// With 'r' a 'segv' tracker starts over (every page protected, split VMAs merged).
napi_value track_thaw(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  size_t access;
  if (!args_get(env, info, "trackThaw", 2, &args) || !arg_mapping(&args, 0, &mapping) ||
      !arg_choice(&args, 1, "access", THAW_NAMES, sizeof THAW_NAMES / sizeof THAW_NAMES[0], &access)) {
    return NULL;
  }
  if ((THAW_PROT[access] & PROT_WRITE) && !mapping_writable(mapping)) {
    return throw_code(env, "EACCES", "mprotect", "trackThaw: the mapping is read-only; 'rw' is refused");
  }
  pthread_mutex_lock(&writers);
  entry_t *entry = entry_find_or_throw(&args, mapping);
  bool shared = entry != NULL && entry->shared;
  int err = 0;
  if (entry != NULL && !shared) {
    if (!mprotect_entry(entry, THAW_PROT[access])) err = errno;
    thaw_and_wake(entry); // even on failure: a waiter retries and faults again rather than hang
  }
  pthread_mutex_unlock(&writers);
  if (entry == NULL) return NULL;
  if (shared) return refuse_shared(&args);
  if (err != 0) return throw_errno(env, err, "trackThaw", "mprotect");
  return make_undefined(env);
}
