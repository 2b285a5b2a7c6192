// Whether the regiond that owns a shared working copy's control area is gone, asked by a
// mapping process that waits for its release (shootdown.c): a dead regiond releases everyone.
// Async-signal-safe: kill, open, read, close.

#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#define PROC_STAT_BYTES 512 // enough for "pid (comm) S": comm is at most 64 bytes

// A zombie has exited but answers kill(pid, 0) until its parent reaps it.
static bool process_zombie(int32_t pid) {
  char path[32] = "/proc/";
  size_t used = text_append_decimal(path, 6, sizeof path, (uint32_t)pid);
  used = text_append(path, used, sizeof path, "/stat", 5);
  path[used] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;
  char text[PROC_STAT_BYTES];
  ssize_t got;
  do got = read(fd, text, sizeof text); while (got < 0 && errno == EINTR);
  close(fd);
  for (ssize_t i = got - 1; i > 0; i--) { // the state follows the last ')': "pid (comm) S ..."
    if (text[i] == ')') return i + 2 < got && (text[i + 2] == 'Z' || text[i + 2] == 'X');
  }
  return false;
}

bool control_regiond_gone(_Atomic uint32_t *header) {
  int32_t pid = (int32_t)atomic_load(&header[CONTROL_WORD_REGIOND_PID]);
  if (pid <= 0) return true; // never set, or the control area was unmapped (zeros)
  if (kill(pid, 0) != 0) return errno == ESRCH; // EPERM: alive, another user's
  return process_zombie(pid);
}
