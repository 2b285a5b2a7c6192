// Helpers shared by many files, each async-signal-safe so that the signal handlers (segv.c,
// shootdown.c, fault.c) may use them as freely as the JavaScript threads do: they make
// plain system calls (clock_gettime, nanosleep, futex) that take no lock and allocate
// nothing in libc, touch no global state, and format text into the caller's buffer
// (stdio's printf may allocate or hold a lock the interrupted code holds).

#include "regions.h"

#include <math.h>
#include <sys/syscall.h>
#include <unistd.h>

int64_t monotonic_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * NS_PER_S + now.tv_nsec;
}

int64_t monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / NS_PER_MS;
}

// A timeout of 10^12 ms (31 years) or more, Infinity included, never ends.
int64_t deadline_after_ms(double timeout_ms) {
  if (isinf(timeout_ms) || timeout_ms >= 1e12) return INT64_MAX;
  return monotonic_ns() + (int64_t)(timeout_ms * (double)NS_PER_MS);
}

void sleep_ns(int64_t ns) {
  struct timespec pause = {.tv_sec = ns / NS_PER_S, .tv_nsec = ns % NS_PER_S};
  nanosleep(&pause, NULL); // an early wake-up (a signal) only means an earlier retry
}

long futex_call(uint32_t *word, int op, uint32_t value, const struct timespec *timeout) {
  return syscall(SYS_futex, word, op, value, timeout, NULL, 0);
}

size_t text_append(char *out, size_t used, size_t capacity, const char *text, size_t length) {
  for (size_t i = 0; i < length && used + 1 < capacity; i++) out[used++] = text[i];
  return used;
}

size_t text_append_decimal(char *out, size_t used, size_t capacity, uint64_t value) {
  char digits[24];
  size_t count = 0;
  do {
    digits[count++] = (char)('0' + value % 10);
    value /= 10;
  } while (value > 0);
  while (count > 0 && used + 1 < capacity) out[used++] = digits[--count];
  return used;
}
