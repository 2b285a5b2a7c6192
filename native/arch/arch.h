// The architecture layer: what differs between CPUs, one folder per architecture, as in a
// kernel's arch/ tree. binding.gyp compiles exactly one folder, chosen by target_arch:
//
//   x86_64/    cache.c  clwb > clflushopt > clflush, chosen from cpuid; sfence; a page
//                       copy by non-temporal stores (movntdq, which SSE2 and so every
//                       x86-64 CPU has)
//              trap.c   the page-fault error code's write bit
//   generic/   every other architecture: the honest "not here" answers. No cache-line
//              write-back (flushInstruction() is 'none', flush() throws EOPNOTSUPP, so only
//              msync persistence is durable) and no write bit (segv.c asks the kernel for the page's protection instead).
//
// Each folder defines every function below; nothing else in native/ names an instruction,
// a cpuid bit or a register. Callers are portable code only (flush.c, segv.c).

#ifndef REGIONS_ARCH_H
#define REGIONS_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// ---- cache.c: cache-line write-back towards the persistence domain

// Chooses the instruction (cpuid). Not thread-safe: flush.c calls it once (pthread_once).
void arch_cache_select(void);
// The chosen instruction's name: 'clwb', 'clflushopt', 'clflush', or 'none'.
const char *arch_cache_flush_name(void);
// Writes back every cache line from `first` (line-aligned) up to `end`. False, and nothing
// written back, if this architecture has no such instruction here.
bool arch_cache_flush(uintptr_t first, uintptr_t end);
// Orders the stores and write-backs before it with everything after: sfence on x86-64 (it
// completes clwb/clflushopt and non-temporal stores); elsewhere a full memory barrier, which
// persists nothing.
void arch_cache_fence(void);
// Copies one page (PAGE_BYTES; `to` 64-byte aligned) so that its lines are on their way to
// the persistence domain without a write-back per line: non-temporal stores on x86-64, which
// bypass the cache (no read of the old destination line, no clwb), completed by the next
// arch_cache_fence like a write-back. False, and nothing copied, where there is no such
// store (the caller copies and writes back instead).
bool arch_copy_page_written_back(uint8_t *to, const uint8_t *from);

// ---- trap.c: what the CPU says about a fault (async-signal-safe)

typedef enum { ARCH_ACCESS_UNKNOWN, ARCH_ACCESS_READ, ARCH_ACCESS_WRITE } arch_access_t;
// Whether the access behind a SIGSEGV was a load or a store, from the handler's ucontext
// (a ucontext_t *), or UNKNOWN where the architecture's signal frame does not say.
arch_access_t arch_fault_access(const void *ucontext);

#endif
