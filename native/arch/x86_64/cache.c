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

// Four 16-byte non-temporal stores per line: the line goes to memory whole, without being
// read first (a cached copy of it is invalidated). movntdq needs a 16-byte aligned
// destination (a block is page aligned); the source may be anywhere.
bool arch_copy_page_written_back(uint8_t *to, const uint8_t *from) {
  for (size_t at = 0; at < PAGE_BYTES; at += CACHE_LINE_BYTES) {
    __m128i a = _mm_loadu_si128((const __m128i *)(from + at));
    __m128i b = _mm_loadu_si128((const __m128i *)(from + at + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(from + at + 32));
    __m128i d = _mm_loadu_si128((const __m128i *)(from + at + 48));
    _mm_stream_si128((__m128i *)(to + at), a);
    _mm_stream_si128((__m128i *)(to + at + 16), b);
    _mm_stream_si128((__m128i *)(to + at + 32), c);
    _mm_stream_si128((__m128i *)(to + at + 48), d);
  }
  return true;
}
