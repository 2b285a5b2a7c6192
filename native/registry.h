// The fault registry and the files that serve it (DESIGN.md section 6). C only (atomics).
//
// Who uses what, top to bottom (regions.h draws the whole addon); each file calls only the
// ones below it:
//
//   track_napi.c  entry points: check arguments, then call track.c (and the shootdown's install)
//   track.c       a registration's life on a JavaScript thread: add, freeze, thaw, release
//   segv.c        the SIGSEGV handler: finds the entry holding a fault, serves or chains it
//   shootdown.c   the shootdown signal handler; a store into a frozen shared entry; retire
//   fault.c       one fault in one entry: mark a page, spot a stale fault, die with a message
//   registry.c    the table itself: claim, find, release, the ranges released lately
//   liveness.c    whether a control area's regiond is gone (shootdown.c's waits)
//
// Below them all: control_area_t, the layout of a shared working copy's control area.
// src/map/control_area.ts is its source of truth; layout() (layout.c) reports these offsets
// and test/07-native-layout.test.ts holds the two to each other. Little-endian u32 words:
//
//   byte 0      magic "RWCC", then the layout version               (written by regiond)
//   byte 8      request sequence      regiond raises it to ask for a freeze
//   byte 12     release sequence      regiond sets it to the request when the copy is done
//   byte 16     regiond pid           frozen writers stop waiting if it is gone
//   byte 20     region pages                                         (written by regiond)
//   byte 24     overflow              a 'segv' fault budget ran out: every page is dirty
//   byte 28     mapper slots                                         (written by regiond)
//   64 + 64i    mapper slot i         word 1: the acknowledged request sequence; word 3
//                                     (registered) says how the handler holds the group;
//                                     words 0, 2 and 6 (pid, mechanism, other threads) are
//                                     TypeScript's
//   4096        dirty bitmap          bit p (byte p/8, bit p%8) = region page p

#ifndef REGIONS_REGISTRY_H
#define REGIONS_REGISTRY_H

#include "regions.h"

#include <stdatomic.h>

typedef struct control_header {
  uint32_t magic;
  uint32_t version;
  uint32_t request_seq;
  uint32_t release_seq;
  uint32_t regiond_pid;
  uint32_t pages;
  uint32_t overflow;
  uint32_t slots;
  uint32_t zero[8];
} control_header_t;

typedef struct mapper_slot {
  uint32_t pid; // 0: free
  uint32_t ack_seq;
  uint32_t mechanism; // a control_mechanism_t
  uint32_t registered;
  uint64_t start_time; // the mapper's start time in clock ticks (with pid, its identity)
  uint32_t other_threads; // writable mappings made by threads other than the main thread
  uint32_t zero[9];
} mapper_slot_t;

#define CONTROL_HEADER_BYTES 4096
#define CONTROL_SLOTS_MAX ((CONTROL_HEADER_BYTES - sizeof(control_header_t)) / sizeof(mapper_slot_t)) // 63

typedef struct control_area {
  control_header_t header;
  mapper_slot_t slot[CONTROL_SLOTS_MAX];
  uint8_t bitmap[]; // as many bytes as the region has pages / 8, rounded up to whole pages
} control_area_t;

_Static_assert(sizeof(control_header_t) == 64, "the control header is 64 bytes");
_Static_assert(sizeof(mapper_slot_t) == 64, "a mapper slot is 64 bytes");
_Static_assert(offsetof(control_area_t, bitmap) == CONTROL_HEADER_BYTES, "the bitmap starts at byte 4096");

// The handlers read the area as an array of _Atomic u32 words: word indexes of its fields.
#define CONTROL_WORD(field) (offsetof(control_header_t, field) / sizeof(uint32_t))
#define CONTROL_SLOT_WORD(field) (offsetof(mapper_slot_t, field) / sizeof(uint32_t))
#define CONTROL_WORD_REQUEST CONTROL_WORD(request_seq)
#define CONTROL_WORD_RELEASE CONTROL_WORD(release_seq)
#define CONTROL_WORD_REGIOND_PID CONTROL_WORD(regiond_pid)
#define CONTROL_WORD_OVERFLOW CONTROL_WORD(overflow)
#define CONTROL_SLOT_OFFSET offsetof(control_area_t, slot)
#define CONTROL_SLOT_BYTES sizeof(mapper_slot_t)
#define CONTROL_SLOT_WORD_ACK CONTROL_SLOT_WORD(ack_seq)
#define CONTROL_BITMAP_OFFSET offsetof(control_area_t, bitmap)

// Written by regiond only; named here so layout() can hold them to control_area.ts.
#define CONTROL_MAGIC 0x43435752u // "RWCC" as a little-endian u32
#define CONTROL_VERSION 1
// A mapper slot's tracking mechanism, as regiond sees it (TypeScript writes it).
typedef enum {
  CONTROL_MECHANISM_NONE = 0,
  CONTROL_MECHANISM_USERFAULTFD = 1,
  CONTROL_MECHANISM_MPROTECT = 2,
  CONTROL_MECHANISM_COMPARE = 3,
  CONTROL_MECHANISM_MANUAL = 4,
} control_mechanism_t;
// A mapper slot's `registered` word (TypeScript writes it; REGISTERED in control_area.ts):
// whether the process's writable mappings of the region may be stored to by a thread other
// than the JavaScript thread that made them ('signal'), or only by it ('quiet': nothing to
// report; 'reports': userfaultfd pages to collect). Only 'signal' needs a freeze by mprotect.
typedef enum {
  CONTROL_REGISTERED_NONE = 0,
  CONTROL_REGISTERED_SIGNAL = 1,
  CONTROL_REGISTERED_QUIET = 2,
  CONTROL_REGISTERED_REPORTS = 3,
} control_registered_t;
#define CONTROL_SLOT_WORD_REGISTERED CONTROL_SLOT_WORD(registered)

// trackRegister's modes; sharedRegister's mechanisms are the first three, in this order.
typedef enum { MODE_SEGV, MODE_UFFD, MODE_NONE, MODE_READONLY } track_mode_t;
#define TRACK_MODE_NAMES {"segv", "uffd", "none", "readonly"}
#define TRACK_MODE_COUNT 4
#define SHARED_MECHANISM_COUNT 3
typedef enum { ENTRY_FREE, ENTRY_LIVE, ENTRY_DYING } entry_state_t;
typedef enum { FAULT_NOT_OURS, FAULT_HANDLED } fault_verdict_t;

typedef struct entry {
  _Atomic uint32_t state;
  _Atomic uint32_t users;  // handlers that may be reading this entry
  _Atomic uint32_t active; // handlers between their `frozen` check and their last mprotect
  _Atomic uint32_t frozen; // 1 while frozen (exclusive mode: also the futex word)
  _Atomic int32_t freezer_tid;
  _Atomic uintptr_t start; // [start, end) of the mapping
  _Atomic uintptr_t end;
  _Atomic uint64_t faults;   // 'segv': pages newly marked since the last reset
  _Atomic uint32_t overflow; // 'segv': the whole mapping was made writable
  _Atomic uint32_t foreign_none; // protect(..., 'none') touched the mapping: probe readability
  // Written only while FREE, by the registering thread:
  track_mode_t mode;
  const mapping_t *owner; // the registration's key: compared, never followed
  bool writable;          // the owner's protection when mapped, given back at release
  int32_t owner_tid;      // the thread that registered it (the one JavaScript thread storing, if quiet)
  _Atomic uint8_t *bitmap; // 'segv': the page of index i is bit (bit_first + i)
  uint64_t bit_first;
  uint64_t fault_pages_max;
  uint64_t report_offset_bias;
  napi_env env;
  napi_ref bitmap_ref;
  char label[TRACK_LABEL_BYTES_MAX + 1];
  size_t label_length;
  // Shared mode (sharedRegister), written only while FREE:
  bool shared;
  mapping_t *control;       // the control mapping: its range is held (mapping_share_acquire)
  void (*control_release)(mapping_t *control); // ... until this gives it back (at release)
  napi_ref control_ref;     // ... and its handle kept alive
  _Atomic uint32_t *header; // the control area's words
  uint32_t slot;
  uint64_t group_dev; // the control file (dev, inode): entries with the same file and slot
  uint64_t group_ino; // are one group, frozen together before one acknowledgement
  // Shared mode, changing:
  _Atomic uint32_t freeze_seq; // the request the entry is frozen for
  _Atomic uint32_t acked_seq;  // the last request acknowledged for the entry's group
  _Atomic uint32_t acked;      // acked_seq holds a value
  _Atomic uint32_t retiring;   // being unregistered: the shootdown leaves it alone
  // The shootdown handler's own bookkeeping (one handler at a time):
  uint32_t round; // the handler round that claimed it
  bool held;      // claimed (counted in users) by the running handler
} entry_t;

// What a registration asks for: trackRegister's options as track_napi.c parsed them, and the
// mapping's range (the layers below never call the mapping layer).
typedef struct track_options {
  const mapping_t *owner;
  uintptr_t start;
  size_t length;
  bool writable;
  track_mode_t mode;
  char label[TRACK_LABEL_BYTES_MAX + 1];
  size_t label_length;
  napi_value bitmap;
  uint8_t *bitmap_data;
  size_t bitmap_length;
  int64_t fault_pages_max;
  int64_t report_offset_bias;
} track_options_t;

// ---- registry.c. Writers (JavaScript threads) hold the lock; handlers read without it.
void registry_lock(void);
void registry_unlock(void);
// Handlers scan entries [0, registry_used()).
size_t registry_used(void);
entry_t *registry_entry(size_t index);
// Under the lock: the LIVE entry of owner, or NULL.
entry_t *registry_find(const mapping_t *owner);
// Under the lock: a FREE entry, or NULL with ENOSPC thrown.
entry_t *registry_claim(args_t *args);
// Under the lock, DYING and drained of users: drops its references (bitmap, control), FREE.
void registry_free(entry_t *entry);
// Under the lock: remember the entry's range among the ones released lately.
void registry_remember_released(const entry_t *entry);
// Async-signal-safe:
bool registry_released_holds(uintptr_t addr);
bool entry_holds(entry_t *entry, uintptr_t addr);
bool entry_mprotect(entry_t *entry, int prot);
// Waits until no handler is counted in *count; false after TRACK_DRAIN_MS_MAX.
bool entry_drain(_Atomic uint32_t *count);

// ---- fault.c (async-signal-safe, but for fault_maps_open)
// JavaScript thread, with the handler's install: /proc/self/maps for PROCMAP_QUERY.
void fault_maps_open(void);
// The protection of the VMA holding addr now (PROT_NONE if unmapped); false if unknown.
bool fault_access_now(uintptr_t addr, int *prot);
// The file (device, inode) of the VMA holding addr; false if the kernel cannot say.
bool fault_vma_file(uintptr_t addr, uint64_t *dev, uint64_t *ino);
// Called by a handler counted in the entry's `active`:
fault_verdict_t fault_segv_mark(entry_t *entry, uintptr_t addr);
fault_verdict_t fault_retry_if_stale(uintptr_t addr, bool write);
void fault_die(const entry_t *entry, const char *what, uintptr_t addr, const char *why);

// ---- liveness.c (async-signal-safe)
// The regiond named in the control area's header has exited (or was never set).
bool control_regiond_gone(_Atomic uint32_t *header);

// ---- shootdown.c
// The installed shootdown signal, or 0.
int shootdown_signal(void);
// JavaScript thread: installs the handler for signo unless a signal is installed already,
// which it leaves in *previous (0 if none). 0, or the errno of sigaction.
int shootdown_signal_install(int signo, int *previous);
// The SIGSEGV handler's path for a store into a live shared entry (async-signal-safe).
fault_verdict_t shootdown_write_fault(entry_t *entry, uintptr_t addr);
// JavaScript thread, under the registry lock: a shared 'uffd' entry's written pages go into
// the shared bitmap now (the caller of a pmsync reports its own; see on_shootdown); false if
// the scan failed, and then every page of the mapping is marked.
bool shootdown_collect(entry_t *entry);
// JavaScript thread, under the registry lock: from here on no shootdown touches the entry;
// with `restore` the mapping gets back read-write access; frozen writers go on.
void shootdown_retire(entry_t *entry, bool restore);

// ---- segv.c (JavaScript threads)
// Under the registry lock: installs the SIGSEGV handler on first use.
bool segv_install(args_t *args);
// Takes the registry lock. After shootdown_signal_install: the SIGSEGV handler, if installed
// already, blocks the shootdown signal from now on.
void segv_block_shootdown(void);

// ---- track.c (JavaScript threads, under the registry lock unless said)
// A LIVE entry for the request, with the first protection of its mode in place; or NULL with
// an exception pending. `extra` (if any) completes the entry while it is still FREE.
entry_t *track_add(args_t *args, const track_options_t *options,
                   bool (*extra)(args_t *args, entry_t *entry, const void *more), const void *more);
// (track_forget, track_forget_unmapping and track_note_protect, for map.c: regions.h.)
// Freezes a LIVE entry (a shared one is refused: EINVAL): undefined, or NULL with an
// exception pending.
napi_value track_freeze_locked(args_t *args, entry_t *entry);
// An unshared entry: mprotect(whole mapping, prot), then wakes every waiter; 0 or the errno
// of mprotect.
int track_thaw_locked(entry_t *entry, int prot);

#endif
