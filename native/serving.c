// regiond's side of its connections, beyond what Node's net.Server does: replies that pass
// a descriptor (Node's sockets cannot), and a look at whether other connections have bytes
// waiting (group commit, src/regiond/sync_queue.ts). The client's side is socket.c.

#include "socket.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

// socketSendSome(fd, bytes, passFd) -> bytes sent: one non-blocking sendmsg (0 when the
// socket's buffer is full), with passFd attached (SCM_RIGHTS) unless it is -1. regiond's
// replies that carry a descriptor go this way: Node's sockets cannot pass descriptors.
napi_value socket_send_some(napi_env env, napi_callback_info info) {
  args_t args;
  int fd;
  uint8_t *data;
  size_t length;
  int64_t pass;
  if (!args_get(env, info, "socketSendSome", 3, &args) || !arg_fd(&args, 0, &fd) ||
      !arg_bytes(&args, 1, "bytes", &data, &length) || !arg_integer(&args, 2, "passFd", -1, INT32_MAX, &pass)) {
    return NULL;
  }
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(int))];
  } control;
  struct iovec vector = {.iov_base = data, .iov_len = length};
  struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1};
  if (pass >= 0) {
    int passed = (int)pass;
    memset(&control, 0, sizeof control);
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    struct cmsghdr *c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof passed);
    memcpy(CMSG_DATA(c), &passed, sizeof passed);
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return make_number(env, (double)n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return make_number(env, 0);
    return throw_errno(env, errno, "socketSendSome", "sendmsg");
  }
}

// socketsReadable(fds: Int32Array) -> true if any of the sockets has bytes (or a hang-up or
// an error) waiting: one poll() that does not wait. regiond asks it before serving a pmsync at
// once: if another connection has bytes pending, they may be a pmsync of the same poll phase,
// which must join the same commit. A negative descriptor is skipped (poll ignores it).
#define READABLE_FDS_MAX 1024
napi_value sockets_readable(napi_env env, napi_callback_info info) {
  args_t args;
  uint8_t *data;
  size_t length;
  if (!args_get(env, info, "socketsReadable", 1, &args) || !arg_bytes(&args, 0, "fds", &data, &length)) {
    return NULL;
  }
  size_t count = length / sizeof(int32_t);
  if (length % sizeof(int32_t) != 0 || count > READABLE_FDS_MAX) {
    return throw_code(env, "EINVAL", NULL, "socketsReadable: fds must be an Int32Array of <= %d", READABLE_FDS_MAX);
  }
  struct pollfd entries[READABLE_FDS_MAX];
  for (size_t i = 0; i < count; i++) {
    int32_t fd;
    memcpy(&fd, data + i * sizeof fd, sizeof fd);
    entries[i] = (struct pollfd){.fd = fd, .events = POLLIN};
  }
  for (;;) {
    int ready = poll(entries, (nfds_t)count, 0);
    if (ready >= 0) return make_bool(env, ready > 0);
    if (errno != EINTR) return throw_errno(env, errno, "socketsReadable", "poll");
  }
}
