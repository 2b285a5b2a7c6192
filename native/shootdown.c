// The shootdown, a mapping process's side (DESIGN.md section 6, "the paper's IPI").
//
// regiond (src/service/shootdown.ts) raises the request sequence in a region's control area
// (registry.h draws it) and sends this process the shootdown signal (a real-time signal,
// shootdownInstall). The handler serves every shared entry of the fault registry
// (registry.c, sharedRegister) whose group has not acknowledged that request yet. A group is
// the entries with one control file and one mapper slot: this process's mappings of one
// region, all of which must be frozen before one acknowledgement. For each group:
//
//   (a) hold:    keep every store out until the release, the cheapest way that is sound:
//                - park: the group is quiet (its slot's `registered` word: only the
//                  JavaScript thread that made its mappings can store, and it is the main
//                  thread) and tracks by 'uffd' or 'none': that thread acknowledges and then
//                  waits in this handler for the release, as at a collector's safepoint. No
//                  page changes protection, so the cost does not grow with mapped bytes. A
//                  handler on another thread forwards the signal to the main thread.
//                - none: quiet, and regiond is this very process: the kernel runs the commit
//                  on the JavaScript thread, which therefore cannot store (exclusive mode).
//                - freeze: otherwise (other threads may store, or 'segv'): frozen = 1 with
//                  freeze_seq = request, then mprotect(whole mapping, PROT_READ) per entry
//                  (Linux shoots down the TLBs of every thread of this process);
//   (b) collect: 'uffd' PAGEMAP_SCAN (reprotect) sets the written pages' bits in the shared
//                bitmap; 'segv' has set them already and starts over (the freeze protected
//                every page again); 'none' has nothing to say;
//   (c) ack:     slot.ackSeq = request (release order), FUTEX_WAKE (shared: regiond is
//                another process); a parked thread then waits (after the pass, outside the
//                gate) until every group it parked for is released, serving new requests
//                that arrive meanwhile.
//
// A store into a frozen shared mapping faults (segv.c hands it here): the thread waits on
// the release sequence (FUTEX_WAIT, shared) until it reaches freeze_seq, in slices of
// SHOOTDOWN_WAIT_SLICE_MS, checking between slices that regiond is alive (kill(pid, 0) and
// not a zombie): a dead regiond releases everyone. Then one thread thaws (uffd/none:
// read-write again; segv: stays read-only, so this very store is marked like any first
// store) and the store runs again.
//
// Order between freeze and thaw: both run under `gate`, a spin lock held for a few system
// calls. Its holders never wait for each other's threads: the shootdown signal is blocked
// in the SIGSEGV handler (its sa_mask) and around the JavaScript thread's retire, and the
// shootdown handler stores into no registered mapping. One handler serves at a time (`busy`);
// a signal arriving meanwhile leaves `pending` for it.
//
// Inside the handlers only async-signal-safe calls: atomics, mprotect, futex, ioctl, kill,
// open/read/close, clock_gettime, sched_yield; no lock but `gate`, whose holders never wait
// for a thread the signal could have interrupted (above), and no allocation.

#include "registry.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic int installed_signal; // 0 until shootdownInstall
static pthread_mutex_t installing = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint32_t gate;    // freeze, thaw and retire of shared entries
static _Atomic uint32_t busy;    // a handler is serving
static _Atomic uint32_t pending; // signals that arrived since the last pass began
static uint32_t round_last;      // under busy

// Groups the main thread acknowledged and now waits in the handler for (under busy).
typedef struct parked {
  _Atomic uint32_t *header;
  uint32_t seq;
} parked_t;
static parked_t parked[SHOOTDOWN_PARKED_MAX];
static size_t parked_count;

int shootdown_signal(void) { return atomic_load(&installed_signal); }

// Spins until the gate is ours; false after TRACK_DRAIN_MS_MAX (a broken invariant).
static bool gate_take(void) {
  int64_t deadline = 0;
  while (atomic_exchange(&gate, 1) != 0) {
    int64_t now = monotonic_ms();
    if (deadline == 0) deadline = now + TRACK_DRAIN_MS_MAX;
    if (now > deadline) return false;
    sched_yield();
  }
  return true;
}

static void gate_give(void) { atomic_store(&gate, 0); }

// Shared (not FUTEX_PRIVATE_FLAG): regiond, in another process, waits on or wakes these words.
static long futex_shared(_Atomic uint32_t *word, int op, uint32_t value, const struct timespec *timeout) {
  return futex_call((uint32_t *)word, op, value, timeout);
}

// Wraparound-safe "release has reached seq".
static bool released(uint32_t release, uint32_t seq) { return (int32_t)(release - seq) >= 0; }

// ---- freeze and thaw (under gate)

// Back from frozen, if still frozen for seq: 'uffd'/'none' become writable again; 'segv'
// stays read-only (its freeze protected every page: tracking starts over).
static bool thaw_locked(entry_t *entry, uint32_t seq) {
  if (!atomic_load(&entry->frozen) || atomic_load(&entry->freeze_seq) != seq || atomic_load(&entry->retiring)) {
    return false;
  }
  if (entry->mode != MODE_SEGV && !entry_mprotect(entry, PROT_READ | PROT_WRITE)) return false; // stays frozen
  atomic_store(&entry->frozen, 0);
  return true;
}

// (a) `frozen` first, then the drain of handlers between their `frozen` check and their
// last page mprotect, then the mprotect: no page is unprotected after it.
static bool freeze_locked(entry_t *entry, uint32_t seq) {
  atomic_store(&entry->freeze_seq, seq);
  atomic_store(&entry->frozen, 1);
  bool drained = entry_drain(&entry->active);
  return entry_mprotect(entry, PROT_READ) && drained;
}

static void mark_all(entry_t *entry) {
  uint64_t pages = (atomic_load(&entry->end) - atomic_load(&entry->start) + PAGE_BYTES - 1) / PAGE_BYTES;
  for (uint64_t i = 0; i < pages; i++) {
    uint64_t bit = entry->bit_first + i;
    atomic_fetch_or(&entry->bitmap[bit / 8], (uint8_t)(1u << (bit % 8)));
  }
}

// (b) What only this process knows goes into the shared bitmap.
static bool collect(entry_t *entry) {
  if (entry->mode == MODE_UFFD) {
    uintptr_t start = atomic_load(&entry->start);
    int err = pagemap_collect_written(start, atomic_load(&entry->end), (uint8_t *)entry->bitmap, entry->bit_first);
    if (err != 0) mark_all(entry); // unknown: every page of the mapping counts as written
    return err == 0;
  }
  if (entry->mode == MODE_SEGV) {
    atomic_store(&entry->faults, 0);
    atomic_store(&entry->overflow, 0);
  }
  return true;
}

bool shootdown_collect(entry_t *entry) {
  ASSERT(entry->shared);
  return collect(entry);
}

// ---- the shootdown handler (async-signal-safe only)

// Counts the handler in an entry's users if it is a live shared entry of the leader's group
// (any group without a leader) not yet served this round.
static bool member_claim(entry_t *entry, const entry_t *leader, uint32_t round) {
  if (atomic_load_explicit(&entry->state, memory_order_relaxed) != ENTRY_LIVE) return false;
  atomic_fetch_add(&entry->users, 1);
  bool ours = atomic_load(&entry->state) == ENTRY_LIVE && entry->shared && !atomic_load(&entry->retiring) &&
              entry->round != round &&
              (leader == NULL || (entry->group_dev == leader->group_dev && entry->group_ino == leader->group_ino &&
                                  entry->slot == leader->slot));
  if (!ours) {
    atomic_fetch_sub(&entry->users, 1);
    return false;
  }
  entry->round = round;
  entry->held = true;
  return true;
}

static _Atomic uint32_t *ack_word(const entry_t *entry) {
  return entry->header + (CONTROL_SLOT_OFFSET + CONTROL_SLOT_BYTES * entry->slot) / 4 + CONTROL_SLOT_WORD_ACK;
}

typedef enum { HOLD_FREEZE, HOLD_PARK, HOLD_NONE, HOLD_LATER } hold_t;

static bool on_main_thread(void) { return syscall(SYS_gettid) == getpid(); }

// Once per pass: the main thread gets the signal too (it serves what this thread left).
static bool forward_to_main(bool *forwarded) {
  if (*forwarded) return true;
  *forwarded = syscall(SYS_tgkill, getpid(), getpid(), shootdown_signal()) == 0;
  return *forwarded;
}

// How the group of entries [first, used) held this round keeps stores out (see the header).
static hold_t group_hold(size_t first, size_t used, bool *forwarded) {
  entry_t *leader = registry_entry(first);
  _Atomic uint32_t *slot_words = leader->header + (CONTROL_SLOT_OFFSET + CONTROL_SLOT_BYTES * leader->slot) / 4;
  uint32_t registered = atomic_load(&slot_words[CONTROL_SLOT_WORD_REGISTERED]);
  if (registered != CONTROL_REGISTERED_QUIET && registered != CONTROL_REGISTERED_REPORTS) return HOLD_FREEZE;
  for (size_t i = first; i < used; i++) {
    entry_t *entry = registry_entry(i);
    if (entry->held && (entry->mode == MODE_SEGV || entry->owner_tid != getpid())) return HOLD_FREEZE;
  }
  if ((int32_t)atomic_load(&leader->header[CONTROL_WORD_REGIOND_PID]) == getpid()) return HOLD_NONE;
  if (!on_main_thread()) return forward_to_main(forwarded) ? HOLD_LATER : HOLD_FREEZE;
  return parked_count < SHOOTDOWN_PARKED_MAX ? HOLD_PARK : HOLD_FREEZE;
}

// Holds (see group_hold), collects and acknowledges the group of entries [first, used).
static void group_serve(size_t first, size_t used, bool *forwarded) {
  entry_t *leader = registry_entry(first);
  uint32_t seq = atomic_load(&leader->header[CONTROL_WORD_REQUEST]);
  bool needed = false, frozen_all = true;
  for (size_t i = first; i < used; i++) {
    entry_t *entry = registry_entry(i);
    if (entry->held && (!atomic_load(&entry->acked) || atomic_load(&entry->acked_seq) != seq)) needed = true;
  }
  if (!needed) return; // a second signal for a request already served
  hold_t hold = group_hold(first, used, forwarded);
  if (hold == HOLD_LATER) return; // the main thread acknowledges it
  for (size_t i = first; i < used; i++) {
    if (hold == HOLD_FREEZE && registry_entry(i)->held && !freeze_locked(registry_entry(i), seq)) frozen_all = false;
  }
  if (!frozen_all) return; // no acknowledgement: regiond times out and says so
  // Parked before the acknowledgement: from it on, this thread stores nothing until released.
  if (hold == HOLD_PARK) parked[parked_count++] = (parked_t){.header = leader->header, .seq = seq};
  for (size_t i = first; i < used; i++) {
    if (registry_entry(i)->held) collect(registry_entry(i));
  }
  for (size_t i = first; i < used; i++) {
    entry_t *entry = registry_entry(i);
    if (!entry->held) continue;
    atomic_store(&entry->acked_seq, seq);
    atomic_store(&entry->acked, 1);
  }
  atomic_store_explicit(ack_word(leader), seq, memory_order_release); // the acknowledgement
  futex_shared(ack_word(leader), FUTEX_WAKE, INT_MAX, NULL);
  // regiond gave up on this request already (a timeout): nothing waits for a copy.
  if (hold != HOLD_FREEZE || !released(atomic_load(&leader->header[CONTROL_WORD_RELEASE]), seq)) return;
  for (size_t i = first; i < used; i++) {
    if (registry_entry(i)->held) thaw_locked(registry_entry(i), seq);
  }
}

// One pass over the registry: every group whose request is new gets served.
static void serve_all(void) {
  uint32_t round = ++round_last;
  if (round == 0) round = ++round_last; // 0 marks an entry no round has claimed
  if (!gate_take()) return;
  bool forwarded = false;
  size_t used = registry_used();
  for (size_t first = 0; first < used; first++) {
    entry_t *leader = registry_entry(first);
    if (!member_claim(leader, NULL, round)) continue;
    for (size_t i = first + 1; i < used; i++) member_claim(registry_entry(i), leader, round);
    group_serve(first, used, &forwarded);
    for (size_t i = first; i < used; i++) {
      entry_t *entry = registry_entry(i);
      if (!entry->held) continue;
      entry->held = false;
      atomic_fetch_sub(&entry->users, 1);
    }
  }
  gate_give();
}

// The main thread, parked: waits until every parked group is released (or its regiond is
// gone), in short slices so that a request for another region that arrives meanwhile (left
// in `pending` by a handler on another thread) is served too: two regionds each waiting for
// the other's mapper must not wait for each other.
static void park(void) {
  const struct timespec slice = {.tv_sec = 0, .tv_nsec = SHOOTDOWN_PARK_SLICE_US * 1000};
  for (uint64_t slices = 0; parked_count > 0; slices++) {
    parked_t *last = &parked[parked_count - 1];
    _Atomic uint32_t *release = &last->header[CONTROL_WORD_RELEASE];
    uint32_t now = atomic_load(release);
    bool gone = slices % (SHOOTDOWN_WAIT_SLICE_MS * 1000 / SHOOTDOWN_PARK_SLICE_US) == 0 && slices > 0 &&
                control_regiond_gone(last->header);
    if (released(now, last->seq) || gone) {
      parked_count--;
      continue;
    }
    if (atomic_exchange(&pending, 0) != 0) serve_all(); // may park more groups
    else futex_shared(release, FUTEX_WAIT, now, &slice); // woken, timed out or interrupted: look again
  }
}

static void on_shootdown(int signo, siginfo_t *info, void *context) {
  (void)signo;
  (void)info;
  (void)context;
  int saved_errno = errno;
  atomic_fetch_add(&pending, 1);
  for (int pass = 0; pass < SHOOTDOWN_PASSES_MAX && atomic_load(&pending) != 0; pass++) {
    if (atomic_exchange(&busy, 1) != 0) break; // the serving handler sees `pending` and goes again
    atomic_store(&pending, 0);
    serve_all();
    park();
    atomic_store(&busy, 0);
  }
  errno = saved_errno;
}

// ---- a store into a frozen shared mapping (from the SIGSEGV handler)

// Until the release reaches seq, the entry is no longer frozen for seq, or regiond is gone
// (then true).
static bool await_release(entry_t *entry, uint32_t seq) {
  _Atomic uint32_t *release = &entry->header[CONTROL_WORD_RELEASE];
  const struct timespec slice = {.tv_sec = 0, .tv_nsec = SHOOTDOWN_WAIT_SLICE_MS * NS_PER_MS};
  for (;;) {
    if (!atomic_load(&entry->frozen) || atomic_load(&entry->freeze_seq) != seq || atomic_load(&entry->retiring)) {
      return false;
    }
    uint32_t now = atomic_load(&release[0]);
    if (released(now, seq)) return false;
    if (control_regiond_gone(entry->header)) return true;
    futex_shared(release, FUTEX_WAIT, now, &slice); // woken, timed out or interrupted: look again
  }
}

// The caller (segv.c) holds the entry in its users. A store while not frozen is an
// ordinary tracked store ('segv') or a stale fault; while frozen it waits, thaws, retries.
fault_verdict_t shootdown_write_fault(entry_t *entry, uintptr_t addr) {
  for (int attempt = 0; attempt < SHOOTDOWN_FAULT_ATTEMPTS_MAX; attempt++) {
    atomic_fetch_add(&entry->active, 1);
    if (!atomic_load(&entry->frozen)) {
      fault_verdict_t verdict =
          entry->mode == MODE_SEGV ? fault_segv_mark(entry, addr) : fault_retry_if_stale(addr, true);
      atomic_fetch_sub(&entry->active, 1);
      return verdict;
    }
    atomic_fetch_sub(&entry->active, 1);
    uint32_t seq = atomic_load(&entry->freeze_seq);
    bool gone = await_release(entry, seq);
    if (!gate_take()) return FAULT_HANDLED; // the store faults again and retries
    bool thawed = thaw_locked(entry, seq); // false: another thread thawed it, or a new freeze came
    gate_give();
    // Without regiond nobody wakes the other waiters of this process: they would sleep out
    // their slice. (The word is shared: waiters elsewhere wake too, look, and sleep again.)
    if (thawed && gone) futex_shared(&entry->header[CONTROL_WORD_RELEASE], FUTEX_WAKE, INT_MAX, NULL);
  }
  return FAULT_HANDLED;
}

// ---- the JavaScript side

void shootdown_retire(entry_t *entry, bool restore) {
  ASSERT(entry->shared);
  if (atomic_load(&entry->retiring)) return;
  sigset_t block, saved;
  sigemptyset(&block);
  sigaddset(&block, shootdown_signal());
  pthread_sigmask(SIG_BLOCK, &block, &saved); // the handler must not wait for this thread's gate
  bool gated = gate_take();
  ASSERT(gated);
  atomic_store(&entry->retiring, 1);
  bool was_frozen = atomic_load(&entry->frozen) != 0;
  if (restore && (entry->mode == MODE_SEGV || was_frozen)) {
    bool ok = entry_mprotect(entry, PROT_READ | PROT_WRITE);
    ASSERT(ok); // the range is ours and whole: only a broken invariant fails here
  }
  atomic_store(&entry->frozen, 0);
  gate_give();
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  if (was_frozen) futex_shared(&entry->header[CONTROL_WORD_RELEASE], FUTEX_WAKE, INT_MAX, NULL);
}

// Once per process: *previous is the signal installed before (0: none, and this call
// installed signo; another one: this call did nothing). The handler runs on any thread,
// on its alternate stack if it has one, and restarts interrupted system calls where the
// kernel can. 0, or the errno of sigaction.
int shootdown_signal_install(int signo, int *previous) {
  pthread_mutex_lock(&installing);
  int current = atomic_load(&installed_signal);
  int err = 0;
  if (current == 0) {
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_shootdown;
    ours.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&ours.sa_mask);
    if (sigaction(signo, &ours, NULL) != 0) err = errno;
    if (err == 0) atomic_store(&installed_signal, signo);
  }
  pthread_mutex_unlock(&installing);
  *previous = current;
  return err;
}
