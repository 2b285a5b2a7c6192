// The peer of a connection, for regiond: its credentials (SO_PEERCRED) and its process handle
// (a pidfd): which process is at the other end, whether it still runs, and signals that reach
// that process and no other.
//
// A pid names a process only while it lives: once it exits (and is reaped) the number may be
// given to any later process, possibly of another user. regiond signals mappers at every
// pmsync with a signal whose default action terminates, so it must never signal by number.
// A pidfd refers to one process for its whole life: pidfd_send_signal on it fails with ESRCH
// once that process has exited, whoever has its pid now.
//
// The pidfd of a connection's peer comes from the socket itself (SO_PEERPIDFD, Linux 6.5):
// the kernel took it at connect(), so there is no window in which the pid could be reused.
// On older kernels the fallback is pidfd_open of SO_PEERCRED's pid, which keeps that window
// open (between the peer's exit and the pidfd_open); `exact` tells the caller which it got.

#include "regions.h"
#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

// peerPidfd(socketFd) -> { pidfd, exact }: a close-on-exec pidfd of the connection's peer;
// exact = false when it came from pidfd_open of the peer's pid (kernel without SO_PEERPIDFD).
napi_value pidfd_of_peer(napi_env env, napi_callback_info info) {
  args_t args;
  int fd;
  if (!args_get(env, info, "peerPidfd", 1, &args) || !arg_fd(&args, 0, &fd)) return NULL;
  int pidfd = -1;
  socklen_t size = sizeof pidfd;
  bool exact = true;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &size) != 0) {
    if (errno != ENOPROTOOPT && errno != EINVAL) {
      return throw_errno(env, errno, "peerPidfd", "getsockopt(SO_PEERPIDFD)");
    }
    struct ucred credentials;
    size = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) {
      return throw_errno(env, errno, "peerPidfd", "getsockopt(SO_PEERCRED)");
    }
    pidfd = (int)syscall(SYS_pidfd_open, credentials.pid, 0);
    if (pidfd < 0) return throw_errno(env, errno, "peerPidfd", "pidfd_open");
    exact = false;
  }
  ASSERT(pidfd >= 0);
  if (fcntl(pidfd, F_SETFD, FD_CLOEXEC) != 0) {
    int err = errno;
    close(pidfd);
    return throw_errno(env, err, "peerPidfd", "fcntl");
  }
  napi_value result;
  if (!napi_check(env, napi_create_object(env, &result), "napi_create_object") ||
      !object_set_number(env, result, "pidfd", pidfd) || !object_set(env, result, "exact", make_bool(env, exact))) {
    close(pidfd);
    return NULL;
  }
  return result;
}

// pidfdSignal(pidfd, signal) -> true if sent, false if the process has exited (ESRCH).
// EPERM (a process of another user) and the rest throw.
napi_value pidfd_signal(napi_env env, napi_callback_info info) {
  args_t args;
  int pidfd;
  int64_t signal;
  if (!args_get(env, info, "pidfdSignal", 2, &args) || !arg_fd(&args, 0, &pidfd) ||
      !arg_integer(&args, 1, "signal", 0, SIGRTMAX, &signal)) {
    return NULL;
  }
  if (syscall(SYS_pidfd_send_signal, pidfd, (int)signal, NULL, 0) == 0) return make_bool(env, true);
  if (errno == ESRCH) return make_bool(env, false);
  return throw_errno(env, errno, "pidfdSignal", "pidfd_send_signal");
}

// pidfdExited(pidfd) -> true once the process has exited (a zombie has: it stores nothing
// more). A pidfd polls readable from then on.
napi_value pidfd_exited(napi_env env, napi_callback_info info) {
  args_t args;
  int pidfd;
  if (!args_get(env, info, "pidfdExited", 1, &args) || !arg_fd(&args, 0, &pidfd)) return NULL;
  struct pollfd entry = {.fd = pidfd, .events = POLLIN};
  for (;;) {
    int ready = poll(&entry, 1, 0);
    if (ready >= 0) {
      if (entry.revents & POLLNVAL) return throw_errno(env, EBADF, "pidfdExited", "poll");
      return make_bool(env, ready > 0);
    }
    if (errno != EINTR) return throw_errno(env, errno, "pidfdExited", "poll");
  }
}

// peerCredentials(fd) -> { pid, uid, gid } of the process that connected (SO_PEERCRED: the
// credentials at connect() time, as the kernel saw them; pid in this pid namespace).
napi_value socket_peer_credentials(napi_env env, napi_callback_info info) {
  args_t args;
  int fd;
  struct ucred credentials;
  socklen_t size = sizeof credentials;
  napi_value result;
  if (!args_get(env, info, "peerCredentials", 1, &args) || !arg_fd(&args, 0, &fd)) return NULL;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) {
    return throw_errno(env, errno, "peerCredentials", "getsockopt(SO_PEERCRED)");
  }
  ASSERT(size == sizeof credentials);
  if (!napi_check(env, napi_create_object(env, &result), "napi_create_object") ||
      !object_set_number(env, result, "pid", credentials.pid) ||
      !object_set_number(env, result, "uid", credentials.uid) ||
      !object_set_number(env, result, "gid", credentials.gid)) {
    return NULL;
  }
  return result;
}
