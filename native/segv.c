// The SIGSEGV handler: finds the registered entry holding a protection fault and serves it,
// or passes the fault on (DESIGN.md section 6).
//
// A registered range has a mode:
//   'segv'     the whole mapping is read-only; the first store to a page faults, and
//              fault.c marks the page in the caller's bitmap and makes it writable (after
//              faultPagesMax pages the whole mapping, raising `overflow`).
//   'uffd'     userfaultfd write-protect does the tracking (uffd.c); only the freeze is here.
//   'none'     no tracking (scan and manual modes); only the freeze.
//   'readonly' a store prints one line naming the label and the offset on stderr, then the
//              process dies by SIGSEGV as it would have.
// Any mode can be frozen (track.c): a thread storing meanwhile waits here on the entry's
// freeze word until the thaw, then returns and its store runs again. A shared entry
// (sharedRegister) goes to shootdown.c, whose signal freezes it instead.
//
// Every other fault goes to the handler that was installed before ours (Node's, which
// serves V8's WebAssembly traps), or, if that was SIG_DFL or SIG_IGN, to the default
// action: the process dies by SIGSEGV exactly as it would without us. A fault in a range
// that is dying or was released lately may be stale (fault.c): it runs again if the
// access is allowed now, and is someone else's otherwise.
//
// Inside the handler only async-signal-safe calls: atomics, mprotect, futex, write,
// sigaction, sigprocmask, process_vm_readv, gettid, open/read/ioctl/close, raise; and no
// lock (a handler may have interrupted the lock's holder on its own thread). While it runs,
// the shootdown signal is blocked (sa_mask), so a shootdown never waits for its own thread.

#include "registry.h"
#include "arch/arch.h"

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct sigaction previous_action; // written under the registry lock, before ours is installed
static bool handler_installed;           // under the registry lock

// The access kind, from the CPU if the architecture's signal frame says (arch/<arch>/trap.c),
// else from the page: a load faults only on an unreadable page, so a fault on a readable
// one was a store. (A load on a page made readable meanwhile, a stale fault, is taken for a
// store: it then runs again like any store the handler lets through.)
static bool fault_is_write(const void *context, uintptr_t addr) {
  arch_access_t access = arch_fault_access(context);
  if (access != ARCH_ACCESS_UNKNOWN) return access == ARCH_ACCESS_WRITE;
  int prot;
  return fault_access_now(addr, &prot) && (prot & PROT_READ) != 0;
}

static void wait_thawed(entry_t *entry) {
  futex_call((uint32_t *)&entry->frozen, FUTEX_WAIT_PRIVATE, 1, NULL); // returns at once if already thawed
}

// A write fault into a live entry's range.
static fault_verdict_t entry_write_fault(entry_t *entry, uintptr_t addr) {
  if (entry->mode == MODE_READONLY) {
    if (fault_retry_if_stale(addr, true) == FAULT_HANDLED) return FAULT_HANDLED;
    fault_die(entry, "store into read-only region", addr, "");
    return FAULT_HANDLED;
  }
  if (entry->shared) return shootdown_write_fault(entry, addr);
  atomic_fetch_add(&entry->active, 1);
  if (atomic_load(&entry->frozen)) {
    atomic_fetch_sub(&entry->active, 1);
    if (atomic_load(&entry->freezer_tid) == (int32_t)syscall(SYS_gettid)) {
      fault_die(entry, "store into frozen region", addr,
                " by the thread that froze it (it would wait for itself forever)");
      return FAULT_HANDLED;
    }
    wait_thawed(entry);
    return FAULT_HANDLED;
  }
  // 'uffd' and 'none' protect only while frozen: this fault was taken before a thaw, or
  // comes from someone else's protect().
  fault_verdict_t verdict = entry->mode == MODE_SEGV ? fault_segv_mark(entry, addr) : fault_retry_if_stale(addr, true);
  atomic_fetch_sub(&entry->active, 1);
  return verdict;
}

// A protection fault (SEGV_ACCERR) at addr: ours, or someone else's.
static fault_verdict_t segv_fault(uintptr_t addr, bool write) {
  size_t used = registry_used();
  for (size_t i = 0; i < used; i++) {
    entry_t *entry = registry_entry(i);
    if (atomic_load_explicit(&entry->state, memory_order_relaxed) == ENTRY_FREE) continue;
    if (addr < atomic_load_explicit(&entry->start, memory_order_relaxed) ||
        addr >= atomic_load_explicit(&entry->end, memory_order_relaxed)) {
      continue;
    }
    atomic_fetch_add(&entry->users, 1);
    uint32_t state = atomic_load(&entry->state);
    bool holds = state != ENTRY_FREE && entry_holds(entry, addr);
    fault_verdict_t verdict = FAULT_NOT_OURS;
    if (holds) {
      verdict = state == ENTRY_LIVE && write ? entry_write_fault(entry, addr) : fault_retry_if_stale(addr, write);
    }
    atomic_fetch_sub(&entry->users, 1);
    if (holds) return verdict; // ranges never overlap: no other entry can hold addr
  }
  // Released lately: a fault taken before the release may reach its handler only now.
  return registry_released_holds(addr) ? fault_retry_if_stale(addr, write) : FAULT_NOT_OURS;
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

static void segv_on_signal(int signo, siginfo_t *info, void *context) {
  int saved_errno = errno;
  fault_verdict_t verdict = FAULT_NOT_OURS;
  // Only protection faults made by the kernel can be ours: not a missing mapping (SEGV_MAPERR),
  // not a signal someone sent (si_code <= 0).
  if (info->si_code == SEGV_ACCERR) {
    uintptr_t addr = (uintptr_t)info->si_addr;
    verdict = segv_fault(addr, fault_is_write(context, addr));
  }
  if (verdict == FAULT_NOT_OURS) chain(signo, info, context);
  errno = saved_errno;
}

// ---- the JavaScript side

// Our SIGSEGV action. No SA_NODEFER: SIGSEGV stays blocked in the handler, so raise() in
// chain() is delivered after it returns, with the default action in place. The shootdown
// signal is blocked too: a shootdown must never wait for a handler it interrupted.
static void segv_action(struct sigaction *ours) {
  memset(ours, 0, sizeof *ours);
  ours->sa_sigaction = segv_on_signal;
  ours->sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&ours->sa_mask);
  if (shootdown_signal() != 0) sigaddset(&ours->sa_mask, shootdown_signal());
}

// If someone replaced our action since it was installed, theirs is left alone.
void segv_block_shootdown(void) {
  registry_lock();
  struct sigaction current, ours;
  if (handler_installed && sigaction(SIGSEGV, NULL, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
      current.sa_sigaction == segv_on_signal) {
    segv_action(&ours);
    int rc = sigaction(SIGSEGV, &ours, NULL);
    ASSERT(rc == 0); // the same signal and handler as before: only a broken invariant fails
  }
  registry_unlock();
}

// Reads the current action first, so the handler never sees an unset one.
bool segv_install(args_t *args) {
  if (handler_installed) return true;
  struct sigaction ours;
  fault_maps_open();
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
