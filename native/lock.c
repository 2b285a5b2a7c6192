// File locks on byte ranges of a pool file.
//
// OFD locks (F_OFD_SETLK) belong to the open file description, so two opens in one process
// conflict and the lock survives no process: the kernel drops it when the last descriptor
// of that description closes, i.e. when the holder dies. Their weakness is identity: for a
// conflicting OFD lock, both F_GETLK and F_OFD_GETLK report l_pid = -1 (checked on Linux
// 6.18 with a forked holder; test/02-native.test.ts keeps checking it). For a classic POSIX
// lock both report the holder's real pid. So a holder also takes a POSIX lock on another
// byte, and lockHolderPid() reads its pid from there.
//
// Caveat of classic POSIX locks: closing *any* descriptor of the file in the holding
// process releases them all, so nothing else in that process may open and close the pool.
// A length of 0 means "to the end of the file and beyond", as for fcntl.

#include "regions.h"

#include <errno.h>
#include <fcntl.h>

// Sleep between tries while waiting: short at first for quick hand-overs, then capped so a
// long wait does not spin.
#define LOCK_WAIT_SLEEP_NS_MIN 50000LL   // 50 us
#define LOCK_WAIT_SLEEP_NS_MAX 10000000LL // 10 ms

typedef struct lock_args {
  int fd;
  int64_t start;
  int64_t length;
} lock_args_t;

static bool arg_lock(args_t *args, lock_args_t *out) {
  return arg_fd(args, 0, &out->fd) && arg_integer(args, 1, "start", 0, SAFE_INTEGER_MAX, &out->start) &&
         arg_integer(args, 2, "length", 0, SAFE_INTEGER_MAX, &out->length);
}

static int lock_fcntl(const lock_args_t *lock, int command, short type, struct flock *inout) {
  struct flock fl = {0};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = lock->start;
  fl.l_len = lock->length;
  int rc = fcntl(lock->fd, command, &fl);
  if (inout != NULL) *inout = fl;
  return rc;
}

static bool lock_busy(int err) {
  return err == EAGAIN || err == EACCES;
}

// 1 = taken, 0 = held elsewhere, -1 = error (thrown).
static int lock_take(napi_env env, const char *fn, const lock_args_t *lock, int command, short type,
                     const char *syscall) {
  if (lock_fcntl(lock, command, type, NULL) == 0) return 1;
  if (lock_busy(errno)) return 0;
  throw_errno(env, errno, fn, syscall);
  return -1;
}

static napi_value lock_result(napi_env env, int taken) {
  return taken < 0 ? NULL : make_bool(env, taken == 1);
}

// lockTry(fd, start, length, exclusive)
napi_value lock_try(napi_env env, napi_callback_info info) {
  args_t args;
  lock_args_t lock;
  bool exclusive;
  if (!args_get(env, info, "lockTry", 4, &args) || !arg_lock(&args, &lock) ||
      !arg_bool(&args, 3, "exclusive", &exclusive)) {
    return NULL;
  }
  short type = exclusive ? F_WRLCK : F_RDLCK;
  return lock_result(env, lock_take(env, "lockTry", &lock, F_OFD_SETLK, type, "fcntl(F_OFD_SETLK)"));
}

// Polls F_OFD_SETLK rather than blocking in F_OFD_SETLKW, which has no timeout. Bounded: the
// loop ends at the deadline, and each turn sleeps at least LOCK_WAIT_SLEEP_NS_MIN.
static int lock_wait_until(napi_env env, const lock_args_t *lock, short type, double timeout_ms) {
  int64_t deadline = deadline_after_ms(timeout_ms);
  int64_t pause = LOCK_WAIT_SLEEP_NS_MIN;
  for (;;) {
    int taken = lock_take(env, "lockWait", lock, F_OFD_SETLK, type, "fcntl(F_OFD_SETLK)");
    if (taken != 0) return taken;
    int64_t left = deadline - monotonic_ns();
    if (left <= 0) return 0;
    sleep_ns(pause < left ? pause : left);
    pause = pause * 2 < LOCK_WAIT_SLEEP_NS_MAX ? pause * 2 : LOCK_WAIT_SLEEP_NS_MAX;
  }
}

// lockWait(fd, start, length, exclusive, timeoutMs)
napi_value lock_wait(napi_env env, napi_callback_info info) {
  args_t args;
  lock_args_t lock;
  bool exclusive;
  double timeout_ms;
  if (!args_get(env, info, "lockWait", 5, &args) || !arg_lock(&args, &lock) ||
      !arg_bool(&args, 3, "exclusive", &exclusive) || !arg_timeout_ms(&args, 4, &timeout_ms)) {
    return NULL;
  }
  return lock_result(env, lock_wait_until(env, &lock, exclusive ? F_WRLCK : F_RDLCK, timeout_ms));
}

static napi_value lock_release(napi_env env, napi_callback_info info, const char *fn, int command,
                               const char *syscall) {
  args_t args;
  lock_args_t lock;
  if (!args_get(env, info, fn, 3, &args) || !arg_lock(&args, &lock)) return NULL;
  if (lock_fcntl(&lock, command, F_UNLCK, NULL) != 0) return throw_errno(env, errno, fn, syscall);
  return make_undefined(env);
}

// unlock(fd, start, length): releases this description's OFD lock on the range.
napi_value lock_unlock(napi_env env, napi_callback_info info) {
  return lock_release(env, info, "unlock", F_OFD_SETLK, "fcntl(F_OFD_SETLK)");
}

// posixLockTry(fd, start, length): classic per-process write lock.
napi_value lock_posix_try(napi_env env, napi_callback_info info) {
  args_t args;
  lock_args_t lock;
  if (!args_get(env, info, "posixLockTry", 3, &args) || !arg_lock(&args, &lock)) return NULL;
  return lock_result(env, lock_take(env, "posixLockTry", &lock, F_SETLK, F_WRLCK, "fcntl(F_SETLK)"));
}

// posixUnlock(fd, start, length)
napi_value lock_posix_unlock(napi_env env, napi_callback_info info) {
  return lock_release(env, info, "posixUnlock", F_SETLK, "fcntl(F_SETLK)");
}

// lockHolderPid(fd, start, length): pid of a conflicting lock, 0 if none, -1 if the conflict
// is an OFD lock (whose owner the kernel does not report).
napi_value lock_holder_pid(napi_env env, napi_callback_info info) {
  args_t args;
  lock_args_t lock;
  struct flock found;
  if (!args_get(env, info, "lockHolderPid", 3, &args) || !arg_lock(&args, &lock)) return NULL;
  if (lock_fcntl(&lock, F_GETLK, F_WRLCK, &found) != 0) {
    return throw_errno(env, errno, "lockHolderPid", "fcntl(F_GETLK)");
  }
  if (found.l_type == F_UNLCK) return make_number(env, 0);
  return make_number(env, found.l_pid);
}
