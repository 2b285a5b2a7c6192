// A registration's life, on the JavaScript threads (DESIGN.md section 6): register a
// mapping with the fault registry, freeze and thaw it, and forget it when it is
// unregistered, unmapped or collected. Every step runs under the registry lock; the signal
// handlers (segv.c, shootdown.c) read the same entries without it, so each step orders its
// stores for them:
//
//   register   fill a FREE entry, publish it LIVE, then give it the first protection of its
//              mode ('segv' and 'readonly': every page read-only), so a handler never sees
//              a protected page without its entry
//   freeze     `frozen` first, then wait for handlers counted in `active` to leave, then
//              mprotect(PROT_READ): Linux shoots down every thread's TLB, and a thread
//              storing meanwhile waits in segv.c until the thaw
//   thaw       the protection first, then `frozen` cleared and every waiter woken
//   forget     a shared entry retires from the shootdown first; the protection comes back,
//              waiters are woken (their store runs again and must not fault), the range is
//              remembered as released, and the entry waits for handlers still reading it
//              before the registry frees it
//
// A shared entry (sharedRegister) is frozen by regiond's shootdown signal (shootdown.c),
// never by trackFreeze.

#include "registry.h"

#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void thaw_and_wake(entry_t *entry) {
  atomic_store(&entry->freezer_tid, 0);
  atomic_store(&entry->frozen, 0);
  futex_call((uint32_t *)&entry->frozen, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
}

// Fills a FREE entry; the caller publishes it LIVE.
static bool entry_fill(args_t *args, entry_t *entry, const track_options_t *options) {
  ASSERT(atomic_load(&entry->state) == ENTRY_FREE);
  ASSERT(!entry->held); // a FREE slot is no handler's
  entry->bitmap_ref = NULL;
  if (options->bitmap != NULL && options->mode == MODE_SEGV &&
      !napi_check(args->env, napi_create_reference(args->env, options->bitmap, 1, &entry->bitmap_ref),
                  "napi_create_reference")) {
    return false;
  }
  atomic_store(&entry->start, options->start);
  atomic_store(&entry->end, options->start + options->length);
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
  entry->owner = options->owner;
  entry->writable = options->writable;
  entry->owner_tid = (int32_t)syscall(SYS_gettid);
  entry->bitmap = options->mode == MODE_SEGV ? (_Atomic uint8_t *)options->bitmap_data : NULL;
  entry->bit_first = 0;
  entry->fault_pages_max = (uint64_t)options->fault_pages_max;
  entry->report_offset_bias = (uint64_t)options->report_offset_bias;
  entry->env = args->env;
  memcpy(entry->label, options->label, options->label_length + 1);
  entry->label_length = options->label_length;
  entry->shared = false;
  entry->control = NULL;
  entry->control_release = NULL;
  entry->control_ref = NULL;
  entry->header = NULL;
  entry->round = 0;
  return true;
}

// The protection comes back first, then waiters are woken (their store runs again and must
// not fault), then the slot waits for handlers still reading it. A shared entry is first
// retired (shootdown.c), which restores its protection under the shootdown's gate, so a
// shootdown running on another thread cannot protect it again after.
static void entry_release(entry_t *entry, bool restore) {
  if (entry->shared) shootdown_retire(entry, restore);
  bool changed_protection =
      !entry->shared && (entry->mode == MODE_SEGV || entry->mode == MODE_READONLY || atomic_load(&entry->frozen));
  if (restore && changed_protection) {
    bool ok = entry_mprotect(entry, entry->writable ? PROT_READ | PROT_WRITE : PROT_READ);
    ASSERT(ok); // the range is ours and whole: only a broken invariant fails here
  }
  registry_remember_released(entry);
  atomic_store(&entry->state, ENTRY_DYING);
  thaw_and_wake(entry);
  bool drained = entry_drain(&entry->users);
  ASSERT(drained);
  registry_free(entry);
}

entry_t *track_add(args_t *args, const track_options_t *options,
                   bool (*extra)(args_t *args, entry_t *entry, const void *more), const void *more) {
  if (registry_find(options->owner) != NULL) {
    throw_code(args->env, "EEXIST", NULL, "%s: the mapping is registered already; trackUnregister first", args->fn);
    return NULL;
  }
  if (!segv_install(args)) return NULL;
  entry_t *entry = registry_claim(args);
  if (entry == NULL || !entry_fill(args, entry, options)) return NULL;
  if (extra != NULL && !extra(args, entry, more)) {
    if (entry->bitmap_ref != NULL) napi_delete_reference(args->env, entry->bitmap_ref);
    entry->bitmap_ref = NULL;
    entry->owner = NULL;
    return NULL; // still FREE
  }
  atomic_store(&entry->state, ENTRY_LIVE);
  // 'segv' and 'readonly' start with every page read-only: the first store to each faults.
  if ((options->mode == MODE_SEGV || options->mode == MODE_READONLY) && !entry_mprotect(entry, PROT_READ)) {
    int err = errno;
    entry_release(entry, false);
    throw_errno(args->env, err, args->fn, "mprotect");
    return NULL;
  }
  return entry;
}

void track_forget(const mapping_t *mapping) {
  registry_lock();
  entry_t *entry = registry_find(mapping);
  if (entry != NULL) entry_release(entry, true);
  registry_unlock();
}

// Under the lock throughout, so no registration can claim the address range in between.
// A shared entry is retired before the range closes: no shootdown protects the zeros after.
void track_forget_unmapping(mapping_t *mapping, void (*close_range)(mapping_t *mapping)) {
  registry_lock();
  entry_t *entry = registry_find(mapping);
  if (entry != NULL && entry->shared) shootdown_retire(entry, true);
  close_range(mapping); // zeros (writable) or nothing: a woken waiter's store no longer faults
  if (entry != NULL) entry_release(entry, false);
  registry_unlock();
}

void track_note_protect(const mapping_t *mapping, int prot) {
  if (prot != PROT_NONE) return;
  registry_lock();
  entry_t *entry = registry_find(mapping);
  if (entry != NULL) atomic_store(&entry->foreign_none, 1);
  registry_unlock();
}

napi_value track_freeze_locked(args_t *args, entry_t *entry) {
  if (entry->shared) {
    return throw_code(args->env, "EINVAL", NULL, "%s: the mapping is registered shared; regiond's shootdown freezes it",
                      args->fn);
  }
  if (atomic_load(&entry->frozen)) {
    return throw_code(args->env, "EINVAL", NULL, "%s: the mapping is frozen already", args->fn);
  }
  atomic_store(&entry->freezer_tid, (int32_t)syscall(SYS_gettid));
  atomic_store(&entry->frozen, 1);
  if (!entry_drain(&entry->active)) {
    thaw_and_wake(entry);
    return throw_code(args->env, "ETIMEDOUT", NULL, "%s: a fault handler did not leave the mapping", args->fn);
  }
  if (!entry_mprotect(entry, PROT_READ)) { // the shootdown: every thread's TLB loses write access
    int err = errno;
    thaw_and_wake(entry);
    return throw_errno(args->env, err, args->fn, "mprotect");
  }
  return make_undefined(args->env);
}

// Even when mprotect fails, waiters are woken: one retries and faults again rather than hang.
int track_thaw_locked(entry_t *entry, int prot) {
  ASSERT(!entry->shared);
  int err = entry_mprotect(entry, prot) ? 0 : errno;
  thaw_and_wake(entry);
  return err;
}
