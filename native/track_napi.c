// The entry points of dirty tracking and the freeze (typed in src/arch/addon.ts): they check
// arguments, then call track.c under the registry lock. trackRegister, sharedRegister,
// trackUnregister, trackStatus, trackReset, trackFreeze, trackThaw and shootdownInstall.
// Only here are mapping handles turned into ranges (map.c), so the layers below never call
// the mapping layer.

#include "registry.h"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>

static const char *const MODE_NAMES[TRACK_MODE_COUNT] = TRACK_MODE_NAMES;
static const char *const THAW_NAMES[] = {"r", "rw"};
static const int THAW_PROT[] = {PROT_READ, PROT_READ | PROT_WRITE};
_Static_assert(MODE_SEGV == 0 && MODE_UFFD == 1 && MODE_NONE == 2, "mechanism index = track mode");

// The label goes into a one-line message: control characters become '?'.
static void label_sanitize(char *label, size_t length) {
  for (size_t i = 0; i < length; i++) {
    unsigned char c = (unsigned char)label[i];
    if (c < 0x20 || c == 0x7f) label[i] = '?';
  }
}

static void options_range(track_options_t *options, const mapping_t *mapping) {
  options->owner = mapping;
  options->start = (uintptr_t)mapping_addr(mapping);
  options->length = mapping_length(mapping);
  options->writable = mapping_writable(mapping);
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
  if (!value_choice(args, mode, "options.mode", MODE_NAMES, TRACK_MODE_COUNT, &mode_index) ||
      !value_string(args, label, "options.label", out->label, sizeof out->label, &out->label_length)) {
    return false;
  }
  label_sanitize(out->label, out->label_length);
  options_range(out, mapping);
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
  registry_lock();
  entry_t *entry = track_add(&args, &options, NULL, NULL);
  registry_unlock();
  return entry == NULL ? NULL : make_undefined(env);
}

typedef struct shared_options {
  mapping_t *control;
  napi_value control_value;
  int64_t slot;
  int64_t first_page;
} shared_options_t;

// { control, slot, firstPage, mechanism, label, faultPagesMax? } -> the two option sets.
static bool shared_options_parse(args_t *args, const mapping_t *mapping, napi_value object, track_options_t *out,
                                 shared_options_t *shared) {
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
      !value_choice(args, mechanism, "options.mechanism", MODE_NAMES, SHARED_MECHANISM_COUNT, &mechanism_index) ||
      !value_string(args, label, "options.label", out->label, sizeof out->label, &out->label_length) ||
      (fault_pages_max != NULL && !value_integer(args, fault_pages_max, "options.faultPagesMax", 1,
                                                 TRACK_FAULT_PAGES_MAX, &out->fault_pages_max))) {
    return false;
  }
  label_sanitize(out->label, out->label_length);
  options_range(out, mapping);
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
               "%s: pages %lld..%llu need %llu bitmap bytes after byte %zu of the control mapping, which has %zu bytes",
               args->fn, (long long)shared->first_page, (unsigned long long)(shared->first_page + pages - 1),
               (unsigned long long)bitmap_bytes, CONTROL_BITMAP_OFFSET, control_length);
    return false;
  }
  if (options->mode == MODE_UFFD) {
    int err = pagemap_open();
    if (err != 0) {
      throw_errno(args->env, err, args->fn, "open(/proc/self/pagemap)");
      return false;
    }
  }
  return true;
}

// track_add's extra step for sharedRegister, before the entry goes LIVE. The entry holds
// the control's range (unmap() of the control then leaves zeros, never a hole) until the
// registry gives it back with mapping_share_release.
static bool shared_fill(args_t *args, entry_t *entry, const void *more) {
  const shared_options_t *shared = more;
  if (!napi_check(args->env, napi_create_reference(args->env, shared->control_value, 1, &entry->control_ref),
                  "napi_create_reference")) {
    return false;
  }
  mapping_share_acquire(shared->control);
  uint8_t *control = mapping_addr(shared->control);
  entry->control = shared->control;
  entry->control_release = mapping_share_release;
  entry->header = (_Atomic uint32_t *)control;
  entry->slot = (uint32_t)shared->slot;
  entry->bitmap = (_Atomic uint8_t *)(control + CONTROL_BITMAP_OFFSET);
  entry->bit_first = (uint64_t)shared->first_page;
  // The group is the control file (dev, inode); without PROCMAP_QUERY, the control's address.
  if (!fault_vma_file((uintptr_t)control, &entry->group_dev, &entry->group_ino)) {
    entry->group_dev = 0;
    entry->group_ino = (uintptr_t)control;
  }
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
      !arg_object(&args, 1, "options") || !shared_options_parse(&args, mapping, args.argv[1], &options, &shared) ||
      !shared_options_check(&args, mapping, &options, &shared)) {
    return NULL;
  }
  registry_lock();
  entry_t *entry = track_add(&args, &options, shared_fill, &shared);
  registry_unlock();
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

// Under the lock.
static entry_t *entry_find_or_throw(args_t *args, const mapping_t *mapping) {
  entry_t *entry = registry_find(mapping);
  if (entry == NULL) {
    throw_code(args->env, "EINVAL", NULL, "%s: the mapping is not registered for tracking; call trackRegister first",
               args->fn);
  }
  return entry;
}

// sharedCollect(handle): a shared 'uffd' mapping's pages written since the last collection
// go into the shared bitmap now (a pmsync's caller reports its own before asking, so regiond
// need not signal it); other mechanisms have nothing to collect.
napi_value track_shared_collect(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  if (!args_get(env, info, "sharedCollect", 1, &args) || !arg_mapping(&args, 0, &mapping)) return NULL;
  registry_lock();
  entry_t *entry = entry_find_or_throw(&args, mapping);
  bool shared = entry != NULL && entry->shared;
  if (shared && entry->mode == MODE_UFFD) shootdown_collect(entry); // a failed scan marks every page
  registry_unlock();
  if (entry == NULL) return NULL;
  if (!shared) return throw_code(env, "EINVAL", NULL, "sharedCollect: the mapping is not sharedRegister'ed");
  return make_undefined(env);
}

// trackStatus(handle) -> { faults, overflow }
napi_value track_status(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  napi_value result;
  if (!args_get(env, info, "trackStatus", 1, &args) || !arg_mapping(&args, 0, &mapping)) return NULL;
  registry_lock();
  entry_t *entry = entry_find_or_throw(&args, mapping);
  uint64_t fault_count = entry == NULL ? 0 : atomic_load(&entry->faults);
  bool overflowed = entry != NULL && atomic_load(&entry->overflow) != 0;
  registry_unlock();
  if (entry == NULL) return NULL;
  if (!napi_check(env, napi_create_object(env, &result), "napi_create_object") ||
      !object_set_number(env, result, "faults", (double)fault_count) ||
      !object_set(env, result, "overflow", make_bool(env, overflowed))) {
    return NULL;
  }
  return result;
}

// trackReset(handle): zero the fault count and the overflow flag (the caller clears the bitmap).
napi_value track_reset(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  if (!args_get(env, info, "trackReset", 1, &args) || !arg_mapping(&args, 0, &mapping)) return NULL;
  registry_lock();
  entry_t *entry = entry_find_or_throw(&args, mapping);
  if (entry != NULL) {
    atomic_store(&entry->faults, 0);
    atomic_store(&entry->overflow, 0);
  }
  registry_unlock();
  return entry == NULL ? NULL : make_undefined(env);
}

// trackFreeze(handle): no thread of this process can store into the mapping until trackThaw.
napi_value track_freeze(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  if (!args_get(env, info, "trackFreeze", 1, &args) || !arg_mapping(&args, 0, &mapping)) return NULL;
  registry_lock();
  entry_t *entry = entry_find_or_throw(&args, mapping);
  napi_value result = entry == NULL ? NULL : track_freeze_locked(&args, entry);
  registry_unlock();
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
  registry_lock();
  entry_t *entry = entry_find_or_throw(&args, mapping);
  bool shared = entry != NULL && entry->shared;
  int err = entry != NULL && !shared ? track_thaw_locked(entry, THAW_PROT[access]) : 0;
  registry_unlock();
  if (entry == NULL) return NULL;
  if (shared) {
    return throw_code(env, "EINVAL", NULL,
                      "trackThaw: the mapping is registered shared; regiond's shootdown freezes it");
  }
  if (err != 0) return throw_errno(env, err, "trackThaw", "mprotect");
  return make_undefined(env);
}

// shootdownInstall(signal): once per process; the same signal again does nothing. From the
// first install on, the SIGSEGV handler blocks the signal too (segv.c says why).
napi_value shootdown_install(napi_env env, napi_callback_info info) {
  args_t args;
  int64_t signo;
  int previous;
  if (!args_get(env, info, "shootdownInstall", 1, &args) ||
      !arg_integer(&args, 0, "signal", SIGRTMIN, SIGRTMAX, &signo)) {
    return NULL;
  }
  int err = shootdown_signal_install((int)signo, &previous);
  if (err != 0) return throw_errno(env, err, "shootdownInstall", "sigaction");
  if (previous != 0 && previous != signo) {
    return throw_code(env, "EINVAL", NULL, "shootdownInstall: signal %d is installed already; %lld is refused",
                      previous, (long long)signo);
  }
  if (previous == 0) segv_block_shootdown();
  return make_undefined(env);
}
