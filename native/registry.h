// The fault registry's entry, shared by the two files that serve it: track.c owns the table,
// registers and releases entries and runs the SIGSEGV handler; shootdown.c runs the
// shootdown signal handler and the frozen-writer wait of shared entries (DESIGN.md section 6).
// C only (atomics); nothing outside those two files includes it.
//
// The control area of a shared working copy (src/map/control_area.ts is the source of
// truth), as the handlers read it: little-endian u32 words.
//
//   byte 8      request sequence      regiond raises it to ask for a freeze
//   byte 12     release sequence      regiond sets it to the request when the copy is done
//   byte 16     regiond pid           frozen writers stop waiting if it is gone
//   byte 24     overflow              a 'segv' fault budget ran out: every page is dirty
//   64 + 64i    mapper slot i         word 1: the acknowledged request sequence
//   4096        dirty bitmap          bit p (byte p/8, bit p%8) = region page p

#ifndef REGIONS_REGISTRY_H
#define REGIONS_REGISTRY_H

#include "regions.h"

#include <stdatomic.h>

#define CONTROL_WORD_REQUEST 2
#define CONTROL_WORD_RELEASE 3
#define CONTROL_WORD_REGIOND_PID 4
#define CONTROL_WORD_OVERFLOW 6
#define CONTROL_SLOT_OFFSET 64
#define CONTROL_SLOT_BYTES 64
#define CONTROL_SLOT_WORD_ACK 1
#define CONTROL_BITMAP_OFFSET 4096
#define CONTROL_SLOTS_MAX ((CONTROL_BITMAP_OFFSET - CONTROL_SLOT_OFFSET) / CONTROL_SLOT_BYTES) // 63

typedef enum { MODE_SEGV, MODE_UFFD, MODE_NONE, MODE_READONLY } track_mode_t;
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
  const mapping_t *owner;
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
  const mapping_t *control; // the control mapping: its range is held (mapping_share_acquire)
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

// ---- track.c, for shootdown.c
size_t track_entries_used(void);
entry_t *track_entry(size_t index);
// Async-signal-safe, called by a handler counted in the entry's `active`:
fault_verdict_t track_segv_mark(entry_t *entry, uintptr_t addr);
fault_verdict_t track_retry_if_stale(uintptr_t addr, bool write);
// shootdownInstall, JavaScript thread: the SIGSEGV handler blocks the shootdown signal from now.
void track_segv_block_shootdown(void);

// ---- shootdown.c, for track.c
// The SIGSEGV handler's path for a store into a live shared entry (async-signal-safe).
fault_verdict_t shootdown_write_fault(entry_t *entry, uintptr_t addr);
// JavaScript thread, under track.c's writers lock: from here on no shootdown touches the
// entry; with `restore` the mapping gets back read-write access; frozen writers go on.
void shootdown_retire(entry_t *entry, bool restore);
// The installed shootdown signal, or 0.
int shootdown_signal(void);

#endif
