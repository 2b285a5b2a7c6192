// Unix stream sockets for shared mode (DESIGN.md section 7).
//
// Node has no synchronous sockets, and the client API is synchronous like system calls, so
// the client talks to regiond through these calls: connect, send all, receive one frame,
// close. regiond itself serves with Node's event loop (net.Server); it only needs two things
// from here: a listening socket bound at a path of any length, and SO_PEERCRED.
//
// Blocking without blocking forever: client sockets are non-blocking and every wait is a
// poll() for what is left of a monotonic deadline. A signal (the shootdown's real-time
// signal, a profiler's SIGPROF) interrupts poll() with EINTR, which only means "poll again".
//
// Path length: sun_path holds 108 bytes, and pools may live at any depth. Every address here
// is "/proc/self/fd/<dirfd>/<name>": the caller opens the socket's directory and passes its
// descriptor; the kernel resolves the rest. Only the short file name is ours to bound.
//
// Frames (src/service/protocol.ts): a u32 little-endian payload length, then the payload.

#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

// Socket file names (not paths): ".regions-<8 hex>.sock" needs 23; room for a suffix.
#define SOCKET_NAME_BYTES_MAX 64
#define FRAME_HEADER_BYTES 4
#define FRAME_BYTES_MAX UINT32_MAX
#define LISTEN_BACKLOG_MAX 4096
// Descriptors one frame may carry: a map reply passes one; more is a hostile peer.
#define SOCKET_FDS_MAX 4
// connect() of a non-blocking socket fails with EAGAIN while the listener's backlog is full;
// we retry with pauses doubling from the minimum to the maximum until the deadline.
#define CONNECT_PAUSE_NS_MIN (1LL * NS_PER_MS)
#define CONNECT_PAUSE_NS_MAX (50LL * NS_PER_MS)

// A reply is awaited spinning first, then blocked for. A process blocked in poll() sleeps, and
// waking a sleeping task on another CPU costs the waker an inter-processor interrupt, which a
// virtual machine pays with an exit: on 2-vCPU VMs that is most of a request's round trip
// (about 65 us blocked against 23 us spinning for a bare socket ping-pong). regiond answers
// most requests within tens of microseconds, so the client polls without waiting for a while,
// yielding its CPU between polls to any task that shares it (regiond itself, perhaps).
#define RECEIVE_SPIN_NS (200LL * 1000)

// true once fd is readable (or has an error or hang-up to report) within the spin budget.
static bool spin_readable(int fd, int64_t deadline) {
  int64_t until = monotonic_ns() + RECEIVE_SPIN_NS;
  if (until > deadline) until = deadline;
  do {
    struct pollfd entry = {.fd = fd, .events = POLLIN};
    if (poll(&entry, 1, 0) > 0) return true; // EINTR (a shootdown signal) just polls again
    sched_yield();
  } while (monotonic_ns() < until);
  return false;
}

// 1 = ready, 0 = deadline passed, -1 = error (errno). EINTR polls again with what is left.
static int wait_ready(int fd, short events, int64_t deadline) {
  for (;;) {
    int timeout = -1;
    if (deadline != INT64_MAX) {
      int64_t left = deadline - monotonic_ns();
      if (left <= 0) return 0;
      int64_t ms = (left + NS_PER_MS - 1) / NS_PER_MS;
      timeout = ms > INT32_MAX ? INT32_MAX : (int)ms;
    }
    struct pollfd entry = {.fd = fd, .events = events};
    int ready = poll(&entry, 1, timeout);
    if (ready > 0) return 1; // readable, writable, or an error/hang-up the next call reports
    if (ready == 0) continue; // the loop head decides whether the deadline has passed
    if (errno != EINTR) return -1;
  }
}

// A socket file name: no slash, not "." or "..", at most SOCKET_NAME_BYTES_MAX bytes.
static bool arg_socket_name(args_t *args, size_t i, char *name) {
  size_t length;
  if (!arg_string(args, i, "name", name, SOCKET_NAME_BYTES_MAX + 1, &length)) return false;
  if (length == 0 || strchr(name, '/') != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    throw_code(args->env, "EINVAL", NULL, "%s: name \"%s\" is not a plain file name", args->fn, name);
    return false;
  }
  return true;
}

// "/proc/self/fd/<dirfd>/<name>": at most 14 + 10 + 1 + 64 + 1 bytes, well inside sun_path.
static void address_of(int dirfd, const char *name, struct sockaddr_un *address) {
  memset(address, 0, sizeof *address);
  address->sun_family = AF_UNIX;
  int written = snprintf(address->sun_path, sizeof address->sun_path, "/proc/self/fd/%d/%s", dirfd, name);
  ASSERT(written > 0 && (size_t)written < sizeof address->sun_path);
}

// 0 = connected; else an errno (ETIMEDOUT when the backlog stayed full until the deadline).
static int connect_until(int fd, const struct sockaddr_un *address, int64_t deadline) {
  int64_t pause = CONNECT_PAUSE_NS_MIN;
  for (;;) {
    if (connect(fd, (const struct sockaddr *)address, sizeof *address) == 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return errno;
    int64_t left = deadline == INT64_MAX ? pause : deadline - monotonic_ns();
    if (left <= 0) return ETIMEDOUT;
    sleep_ns(pause < left ? pause : left);
    pause = pause * 2 < CONNECT_PAUSE_NS_MAX ? pause * 2 : CONNECT_PAUSE_NS_MAX;
  }
}

// socketConnect(dirfd, name, timeoutMs) -> fd (non-blocking, close-on-exec)
napi_value socket_connect(napi_env env, napi_callback_info info) {
  args_t args;
  int dirfd;
  char name[SOCKET_NAME_BYTES_MAX + 1];
  double timeout_ms;
  struct sockaddr_un address;
  if (!args_get(env, info, "socketConnect", 3, &args) || !arg_fd(&args, 0, &dirfd) ||
      !arg_socket_name(&args, 1, name) || !arg_timeout_ms(&args, 2, &timeout_ms)) {
    return NULL;
  }
  address_of(dirfd, name, &address);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socketConnect", "socket");
  int err = connect_until(fd, &address, deadline_after_ms(timeout_ms));
  if (err != 0) {
    close(fd);
    return throw_errno(env, err, "socketConnect", "connect");
  }
  return make_number(env, fd);
}

// Binds under a temporary name, sets the mode, listens, then renames into place: the socket
// never appears under its real name with the umask's bits, nor before it accepts.
static int listen_at(int fd, int dirfd, const char *name, mode_t mode, int backlog, const char **syscall) {
  char temporary[SOCKET_NAME_BYTES_MAX + 32];
  struct sockaddr_un address;
  snprintf(temporary, sizeof temporary, "%s.%d.tmp", name, (int)getpid());
  unlinkat(dirfd, temporary, 0); // a leftover of a crashed regiond with our pid; ENOENT is normal
  address_of(dirfd, temporary, &address);
  *syscall = "bind";
  if (bind(fd, (const struct sockaddr *)&address, sizeof address) != 0) return errno;
  int err = 0;
  if (fchmodat(dirfd, temporary, mode, 0) != 0) {
    err = errno;
    *syscall = "fchmodat";
  } else if (listen(fd, backlog) != 0) {
    err = errno;
    *syscall = "listen";
  } else if (renameat(dirfd, temporary, dirfd, name) != 0) {
    err = errno;
    *syscall = "renameat";
  }
  if (err != 0) unlinkat(dirfd, temporary, 0);
  return err;
}

// socketListen(dirfd, name, mode, backlog) -> fd of a listening socket (for net.Server's
// listen({ fd })). An existing socket file of that name (a dead regiond's) is replaced.
napi_value socket_listen(napi_env env, napi_callback_info info) {
  args_t args;
  int dirfd;
  char name[SOCKET_NAME_BYTES_MAX + 1];
  int64_t mode, backlog;
  const char *syscall = "socket";
  if (!args_get(env, info, "socketListen", 4, &args) || !arg_fd(&args, 0, &dirfd) ||
      !arg_socket_name(&args, 1, name) || !arg_integer(&args, 2, "mode", 0, 07777, &mode) ||
      !arg_integer(&args, 3, "backlog", 1, LISTEN_BACKLOG_MAX, &backlog)) {
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socketListen", syscall);
  int err = listen_at(fd, dirfd, name, (mode_t)mode, (int)backlog, &syscall);
  if (err != 0) {
    close(fd);
    return throw_errno(env, err, "socketListen", syscall);
  }
  return make_number(env, fd);
}

// 0 = all sent; else an errno (EPIPE or ECONNRESET when the peer is gone, ETIMEDOUT).
static int send_all(int fd, const uint8_t *data, size_t length, int64_t deadline) {
  size_t sent = 0;
  while (sent < length) {
    ssize_t n = send(fd, data + sent, length - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return errno;
    int ready = wait_ready(fd, POLLOUT, deadline);
    if (ready == 0) return ETIMEDOUT;
    if (ready < 0) return errno;
  }
  return 0;
}

// socketSend(fd, bytes, timeoutMs): sends every byte (the caller frames them).
napi_value socket_send(napi_env env, napi_callback_info info) {
  args_t args;
  int fd;
  uint8_t *data;
  size_t length;
  double timeout_ms;
  if (!args_get(env, info, "socketSend", 3, &args) || !arg_fd(&args, 0, &fd) ||
      !arg_bytes(&args, 1, "bytes", &data, &length) || !arg_timeout_ms(&args, 2, &timeout_ms)) {
    return NULL;
  }
  int err = send_all(fd, data, length, deadline_after_ms(timeout_ms));
  if (err != 0) return throw_errno(env, err, "socketSend", "send");
  return make_undefined(env);
}

// Descriptors that came with a frame (SCM_RIGHTS). Each one is ours to close from the moment
// recvmsg returns, so every path out of socketReceive either hands all of them to JavaScript
// or closes all of them.
typedef struct received_fds {
  int fds[SOCKET_FDS_MAX];
  size_t count;
  bool dropped; // more came than fit, or the control data was truncated: they were closed
} received_fds_t;

static void received_close(received_fds_t *received) {
  for (size_t i = 0; i < received->count; i++) close(received->fds[i]);
  received->count = 0;
}

static void received_take(received_fds_t *received, struct msghdr *message) {
  if (message->msg_flags & MSG_CTRUNC) received->dropped = true;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(message); c != NULL; c = CMSG_NXTHDR(message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char *data = CMSG_DATA(c);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, data + i * sizeof fd, sizeof fd);
      if (received->count < SOCKET_FDS_MAX) {
        received->fds[received->count++] = fd;
      } else {
        close(fd); // a peer may not make us hold descriptors we did not ask for
        received->dropped = true;
      }
    }
  }
}

// 0 = filled; ECONNRESET when the peer closed (even cleanly) before `length` bytes came.
// Descriptors passed with any of the bytes are collected (MSG_CMSG_CLOEXEC: none leaks into
// a child we spawn).
static int receive_exact(int fd, uint8_t *data, size_t length, int64_t deadline, received_fds_t *received) {
  size_t got = 0;
  bool spun = false;
  while (got < length) {
    union {
      struct cmsghdr align;
      char bytes[CMSG_SPACE(SOCKET_FDS_MAX * sizeof(int))];
    } control;
    struct iovec vector = {.iov_base = data + got, .iov_len = length - got};
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    ssize_t n = recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n > 0) {
      received_take(received, &message);
      got += (size_t)n;
      continue;
    }
    if (n == 0) return ECONNRESET;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return errno;
    if (!spun) {
      spun = true;
      if (spin_readable(fd, deadline)) continue;
    }
    int ready = wait_ready(fd, POLLIN, deadline);
    if (ready == 0) return ETIMEDOUT;
    if (ready < 0) return errno;
  }
  return 0;
}

static napi_value frame_result(napi_env env, napi_value data, received_fds_t *received) {
  napi_value result, fds;
  if (!napi_check(env, napi_create_object(env, &result), "napi_create_object") ||
      !napi_check(env, napi_create_array_with_length(env, received->count, &fds), "napi_create_array")) {
    return NULL;
  }
  for (size_t i = 0; i < received->count; i++) {
    napi_value number = make_number(env, received->fds[i]);
    if (number == NULL || !napi_check(env, napi_set_element(env, fds, (uint32_t)i, number), "napi_set_element")) {
      return NULL;
    }
  }
  if (!object_set(env, result, "data", data) || !object_set(env, result, "fds", fds)) return NULL;
  received->count = 0; // JavaScript owns them now
  return result;
}

static napi_value receive_frame(napi_env env, int fd, int64_t max_bytes, int64_t deadline, received_fds_t *received) {
  uint8_t header[FRAME_HEADER_BYTES];
  int err = receive_exact(fd, header, sizeof header, deadline, received);
  if (err != 0) return throw_errno(env, err, "socketReceive", "recvmsg");
  uint32_t length =
      (uint32_t)header[0] | (uint32_t)header[1] << 8 | (uint32_t)header[2] << 16 | (uint32_t)header[3] << 24;
  if ((int64_t)length > max_bytes) {
    return throw_code(env, "EMSGSIZE", "recvmsg", "socketReceive: a frame of %u bytes exceeds the limit of %lld",
                      length, (long long)max_bytes);
  }
  void *data = NULL;
  napi_value buffer, array;
  if (!napi_check(env, napi_create_arraybuffer(env, length, &data, &buffer), "napi_create_arraybuffer")) return NULL;
  err = receive_exact(fd, data, length, deadline, received);
  if (err != 0) return throw_errno(env, err, "socketReceive", "recvmsg");
  if (received->dropped) {
    return throw_code(env, "EPROTO", "recvmsg", "socketReceive: the peer passed more than %d descriptors with a frame",
                      SOCKET_FDS_MAX);
  }
  if (!napi_check(env, napi_create_typedarray(env, napi_uint8_array, length, buffer, 0, &array),
                  "napi_create_typedarray")) {
    return NULL;
  }
  return frame_result(env, array, received);
}

// socketReceive(fd, maxBytes, timeoutMs) -> { data: Uint8Array, fds: number[] }: the payload
// of one frame and the descriptors passed with it (the caller closes them). A frame longer
// than maxBytes is EMSGSIZE; the stream is then out of step and must be closed.
napi_value socket_receive(napi_env env, napi_callback_info info) {
  args_t args;
  int fd;
  int64_t max_bytes;
  double timeout_ms;
  if (!args_get(env, info, "socketReceive", 3, &args) || !arg_fd(&args, 0, &fd) ||
      !arg_integer(&args, 1, "maxBytes", 0, FRAME_BYTES_MAX, &max_bytes) || !arg_timeout_ms(&args, 2, &timeout_ms)) {
    return NULL;
  }
  received_fds_t received = {.count = 0, .dropped = false};
  napi_value result = receive_frame(env, fd, max_bytes, deadline_after_ms(timeout_ms), &received);
  received_close(&received); // nothing left unless something failed
  return result;
}

// socketClose(fd). Linux releases the descriptor even when close() reports EINTR, so it is
// never retried (a retry could close a descriptor another thread just opened).
napi_value socket_close(napi_env env, napi_callback_info info) {
  args_t args;
  int fd;
  if (!args_get(env, info, "socketClose", 1, &args) || !arg_fd(&args, 0, &fd)) return NULL;
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, errno, "socketClose", "close");
  return make_undefined(env);
}
