// futex wait/wake on a 32-bit word of shared memory.
//
// Deliberately not FUTEX_PRIVATE_FLAG: the word lives in a MAP_SHARED file or memfd mapping,
// and the kernel keys a shared futex by (inode, offset), so a waiter in one process is woken
// by a waker in another. V8's Atomics.wait/notify keep their own waiter lists in user
// space, so they neither wake nor are woken by these calls.

#include "regions.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>

// (buffer, byteOffset) -> the word, 4-aligned (EINVAL) and inside the bytes (ERANGE).
static bool arg_word(args_t *args, uint32_t **word) {
  uint8_t *data;
  size_t length;
  int64_t offset;
  if (!arg_bytes(args, 0, "buffer", &data, &length) ||
      !arg_integer(args, 1, "byteOffset", 0, SAFE_INTEGER_MAX, &offset)) {
    return false;
  }
  if ((uint64_t)offset + sizeof(uint32_t) > length) {
    throw_code(args->env, "ERANGE", NULL, "%s: byteOffset %lld is outside the %zu bytes of the buffer%s", args->fn,
               (long long)offset, length, data == NULL ? " (detached?)" : "");
    return false;
  }
  if (((uintptr_t)data + (uintptr_t)offset) % sizeof(uint32_t) != 0) {
    throw_code(args->env, "EINVAL", "futex", "%s: the word at byteOffset %lld is not 4-byte aligned", args->fn,
               (long long)offset);
    return false;
  }
  *word = (uint32_t *)(data + offset);
  return true;
}

// FUTEX_WAIT takes a relative timeout, so after EINTR we wait again for what is left.
static const char *futex_wait_until(uint32_t *word, uint32_t expected, double timeout_ms, int *err) {
  int64_t deadline = deadline_after_ms(timeout_ms);
  bool forever = deadline == INT64_MAX;
  *err = 0;
  // As Atomics.wait: a word that differs is 'not-equal' whatever the timeout, a zero one too.
  if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != expected) return "not-equal";
  for (;;) {
    struct timespec left_ts, *timeout = NULL;
    if (!forever) {
      int64_t left = deadline - monotonic_ns();
      if (left <= 0) return "timed-out";
      left_ts.tv_sec = left / NS_PER_S;
      left_ts.tv_nsec = left % NS_PER_S;
      timeout = &left_ts;
    }
    if (futex_call(word, FUTEX_WAIT, expected, timeout) == 0) return "ok";
    if (errno == EAGAIN) return "not-equal";
    if (errno == ETIMEDOUT) return "timed-out";
    if (errno != EINTR) {
      *err = errno;
      return NULL;
    }
  }
}

// futexWait(buffer, byteOffset, expected, timeoutMs) -> 'ok' | 'not-equal' | 'timed-out'.
// 'ok' means woken, possibly spuriously: callers re-check the word.
napi_value futex_wait(napi_env env, napi_callback_info info) {
  args_t args;
  uint32_t *word;
  int64_t expected;
  double timeout_ms;
  int err;
  if (!args_get(env, info, "futexWait", 4, &args) || !arg_word(&args, &word) ||
      !arg_integer(&args, 2, "expected", INT32_MIN, UINT32_MAX, &expected) || !arg_timeout_ms(&args, 3, &timeout_ms)) {
    return NULL;
  }
  // Signed and unsigned spellings of one word (-1 and 0xffffffff) compare equal.
  const char *result = futex_wait_until(word, (uint32_t)expected, timeout_ms, &err);
  if (result == NULL) return throw_errno(env, err, "futexWait", "futex(FUTEX_WAIT)");
  return make_string(env, result);
}

// futexWake(buffer, byteOffset, count) -> waiters woken
napi_value futex_wake(napi_env env, napi_callback_info info) {
  args_t args;
  uint32_t *word;
  int64_t count;
  if (!args_get(env, info, "futexWake", 3, &args) || !arg_word(&args, &word) ||
      !arg_integer(&args, 2, "count", 0, INT_MAX, &count)) {
    return NULL;
  }
  long woken = futex_call(word, FUTEX_WAKE, (uint32_t)count, NULL);
  if (woken < 0) return throw_errno(env, errno, "futexWake", "futex(FUTEX_WAKE)");
  ASSERT(woken <= count);
  return make_number(env, (double)woken);
}
