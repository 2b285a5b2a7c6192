// Cache-line write-back on an architecture without an implementation here: there is none.
//
// A memory barrier or __builtin___clear_cache (which makes instruction fetch coherent) is
// not a write-back: neither moves a dirty line towards the persistence domain. Pretending
// would make 'pmem' persistence lose data silently at a crash, so flush() refuses instead
// (EOPNOTSUPP, flush.c) and flushInstruction() says 'none': the TypeScript layer must
// persist with msync, which the kernel makes durable on every architecture.

#include "../arch.h"

void arch_cache_select(void) {}

const char *arch_cache_flush_name(void) { return "none"; }

bool arch_cache_flush(uintptr_t first, uintptr_t end) {
  (void)first;
  (void)end;
  return false;
}

// Orders this thread's stores with later ones; persists nothing (see above).
void arch_cache_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// No non-temporal store here (and no write-back either: commit.c is never reached).
bool arch_copy_page_written_back(uint8_t *to, const uint8_t *from) {
  (void)to;
  (void)from;
  return false;
}
