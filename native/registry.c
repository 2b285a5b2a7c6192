// The fault registry: a fixed table of registered mappings (registry.h draws the entry),
// written by JavaScript threads under one lock and read by signal handlers without any.
//
//   state:  FREE --register--> LIVE --unregister--> DYING --no users left--> FREE
//
// A handler announces itself in `users` before it trusts an entry (and re-checks LIVE
// after), so a release can wait for it to leave before the slot is reused. A handler that
// may unprotect a page also counts itself in `active` before it checks `frozen`; a freeze
// sets `frozen` before it waits for `active` to drain (both sequentially consistent), so no
// page is unprotected after the freeze's mprotect.
//
// The table never shrinks and an entry never moves: a handler may read any slot below
// `entries_used` at any time, and finds either a whole entry or a FREE one. The ranges of
// the last TRACK_RELEASED_MAX released entries are remembered, so that a fault taken just
// before a release is still recognised as one of ours (segv.c).
//
// What a handler may call here is async-signal-safe: atomics, mprotect, clock_gettime and
// sched_yield (the drain's spin). No lock is ever taken by a handler.

#include "registry.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

typedef struct released {
  _Atomic uintptr_t start; // end is cleared first and set last, so a reader sees a range or none
  _Atomic uintptr_t end;
} released_t;

static entry_t entries[TRACK_ENTRIES_MAX];
static _Atomic size_t entries_used; // high-water mark: the handler scans [0, entries_used)
static released_t released[TRACK_RELEASED_MAX]; // ranges whose entry was released lately
static size_t released_next;                     // under writers
static pthread_mutex_t writers = PTHREAD_MUTEX_INITIALIZER;

void registry_lock(void) { pthread_mutex_lock(&writers); }

void registry_unlock(void) { pthread_mutex_unlock(&writers); }

size_t registry_used(void) { return atomic_load(&entries_used); }

entry_t *registry_entry(size_t index) {
  ASSERT(index < TRACK_ENTRIES_MAX);
  return &entries[index];
}

entry_t *registry_find(const mapping_t *owner) {
  size_t used = atomic_load(&entries_used);
  for (size_t i = 0; i < used; i++) {
    if (atomic_load(&entries[i].state) == ENTRY_LIVE && entries[i].owner == owner) return &entries[i];
  }
  return NULL;
}

entry_t *registry_claim(args_t *args) {
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

// DYING and drained: a handler that comes in now reads the entry's state and range only
// (never its bitmap or control area), so its references can go, and with the control's
// share the control area may be unmapped under nobody.
void registry_free(entry_t *entry) {
  ASSERT(atomic_load(&entry->state) == ENTRY_DYING);
  if (entry->bitmap_ref != NULL) napi_delete_reference(entry->env, entry->bitmap_ref);
  entry->bitmap_ref = NULL;
  entry->bitmap = NULL;
  entry->owner = NULL;
  if (entry->shared) {
    napi_delete_reference(entry->env, entry->control_ref);
    entry->control_release(entry->control);
    entry->control_ref = NULL;
    entry->control = NULL;
    entry->control_release = NULL;
    entry->header = NULL;
    entry->shared = false;
  }
  atomic_store(&entry->state, ENTRY_FREE);
}

void registry_remember_released(const entry_t *entry) {
  released_t *slot = &released[released_next];
  released_next = (released_next + 1) % TRACK_RELEASED_MAX;
  atomic_store(&slot->end, 0);
  atomic_store(&slot->start, atomic_load(&entry->start));
  atomic_store(&slot->end, atomic_load(&entry->end));
}

bool registry_released_holds(uintptr_t addr) {
  for (size_t i = 0; i < TRACK_RELEASED_MAX; i++) {
    uintptr_t start = atomic_load(&released[i].start);
    if (addr >= start && addr < atomic_load(&released[i].end)) return true;
  }
  return false;
}

bool entry_holds(entry_t *entry, uintptr_t addr) {
  return addr >= atomic_load(&entry->start) && addr < atomic_load(&entry->end);
}

bool entry_mprotect(entry_t *entry, int prot) {
  uintptr_t start = atomic_load(&entry->start);
  return mprotect((void *)start, atomic_load(&entry->end) - start, prot) == 0;
}

// Handlers counted in *count run a few system calls at most. The deadline is read only once
// the count is seen non-zero, so the common case costs one load.
bool entry_drain(_Atomic uint32_t *count) {
  int64_t deadline = 0;
  while (atomic_load(count) != 0) {
    int64_t now = monotonic_ms();
    if (deadline == 0) deadline = now + TRACK_DRAIN_MS_MAX;
    if (now > deadline) return false;
    sched_yield();
  }
  return true;
}
