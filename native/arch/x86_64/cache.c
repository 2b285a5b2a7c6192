// x86-64 cache-line write-back, chosen once per process from cpuid, best first: clwb
// (writes back and may keep the line cached), clflushopt (writes back and evicts, weakly
// ordered), clflush (evicts, serialised). Each runs in a function compiled for its own
// target, so the addon needs no -mclwb and still loads on CPUs without it. sfence orders and
// completes the preceding clwb/clflushopt; clflush needs none but the fence is harmless.

#include "../arch.h"
#include "../../regions.h" // CACHE_LINE_BYTES

#include <cpuid.h>
#include <immintrin.h>

typedef void (*flush_lines_fn)(uintptr_t first, uintptr_t end);

__attribute__((target("clwb"))) static void flush_lines_clwb(uintptr_t first, uintptr_t end) {
  for (uintptr_t line = first; line < end; line += CACHE_LINE_BYTES) _mm_clwb((void *)line);
}

__attribute__((target("clflushopt"))) static void flush_lines_clflushopt(uintptr_t first, uintptr_t end) {
  for (uintptr_t line = first; line < end; line += CACHE_LINE_BYTES) _mm_clflushopt((void *)line);
}

static void flush_lines_clflush(uintptr_t first, uintptr_t end) {
  for (uintptr_t line = first; line < end; line += CACHE_LINE_BYTES) _mm_clflush((void *)line);
}

static flush_lines_fn flush_lines = flush_lines_clflush;
static const char *flush_name = "clflush";

void arch_cache_select(void) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) ebx = 0;
  if (ebx & bit_CLWB) {
    flush_lines = flush_lines_clwb;
    flush_name = "clwb";
  } else if (ebx & bit_CLFLUSHOPT) {
    flush_lines = flush_lines_clflushopt;
    flush_name = "clflushopt";
  }
  // Otherwise clflush, which SSE2 (hence every x86-64 CPU) implies.
}

const char *arch_cache_flush_name(void) { return flush_name; }

bool arch_cache_flush(uintptr_t first, uintptr_t end) {
  flush_lines(first, end);
  return true;
}

void arch_cache_fence(void) { _mm_sfence(); }
