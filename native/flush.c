// Cache-line write-back and store fence: the "pmem" persistence of a FileDevice.
//
// The instruction is chosen once per process from cpuid, best first: clwb (writes back and
// may keep the line cached), clflushopt (writes back and evicts, weakly ordered), clflush
// (evicts, serialised). Each runs in a function compiled for its own target, so the addon
// needs no -mclwb and still loads on CPUs without it. sfence orders and completes the
// preceding clwb/clflushopt; clflush needs none but the fence is harmless.

#include "regions.h"

#if !defined(__x86_64__)
#error "regions_native: cache-line flush is implemented for x86-64 only"
#endif

#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>

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
static pthread_once_t flush_once = PTHREAD_ONCE_INIT;

static void flush_detect(void) {
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

// Worker threads load the addon too: detect exactly once.
void flush_init(void) {
  pthread_once(&flush_once, flush_detect);
}

// flush(handle, offset, length) -> lines written back
napi_value flush_flush(napi_env env, napi_callback_info info) {
  args_t args;
  mapping_t *mapping;
  uint8_t *start;
  size_t length;
  if (!args_get(env, info, "flush", 3, &args) || !arg_mapping(&args, 0, &mapping) ||
      !arg_mapping_range(&args, mapping, 1, &start, &length)) {
    return NULL;
  }
  if (length == 0) return make_number(env, 0);
  // The mapping is page-aligned, so the first line, rounded down, is still inside it.
  uintptr_t first = (uintptr_t)start & ~(uintptr_t)(CACHE_LINE_BYTES - 1);
  uintptr_t end = (uintptr_t)start + length;
  flush_lines(first, end);
  size_t lines = (end - first + CACHE_LINE_BYTES - 1) / CACHE_LINE_BYTES;
  ASSERT(lines >= 1 && lines <= length / CACHE_LINE_BYTES + 2);
  return make_number(env, (double)lines);
}

napi_value flush_fence(napi_env env, napi_callback_info info) {
  (void)info;
  _mm_sfence();
  return make_undefined(env);
}

napi_value flush_instruction(napi_env env, napi_callback_info info) {
  (void)info;
  return make_string(env, flush_name);
}
