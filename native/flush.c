// Cache-line write-back and store fence: the "pmem" persistence of a FileDevice.
//
// The instruction is the architecture's (arch/<arch>/cache.c), chosen once per process:
// on x86-64 clwb > clflushopt > clflush, fenced by sfence. An architecture without one
// says 'none', and flush() of any byte refuses with EOPNOTSUPP rather than return as if the
// lines were written back: only msync persistence is durable there.

#include "regions.h"
#include "arch/arch.h"

#include <pthread.h>

static pthread_once_t flush_once = PTHREAD_ONCE_INIT;

// Worker threads load the addon too: detect exactly once.
void flush_init(void) {
  pthread_once(&flush_once, arch_cache_select);
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
  if (!arch_cache_flush(first, end)) {
    return throw_code(env, "EOPNOTSUPP", NULL,
                      "flush: this CPU architecture has no cache-line write-back instruction here "
                      "(flushInstruction() is 'none'); use persistence 'msync'");
  }
  size_t lines = (end - first + CACHE_LINE_BYTES - 1) / CACHE_LINE_BYTES;
  ASSERT(lines >= 1 && lines <= length / CACHE_LINE_BYTES + 2);
  return make_number(env, (double)lines);
}

napi_value flush_fence(napi_env env, napi_callback_info info) {
  (void)info;
  arch_cache_fence();
  return make_undefined(env);
}

napi_value flush_instruction(napi_env env, napi_callback_info info) {
  (void)info;
  return make_string(env, arch_cache_flush_name());
}
