// vknative: the few syscalls Node lacks, as a Node-API addon. No policy lives here: each
// function is one kernel call (or a tight sequence of them) with errors thrown as
// `Error` objects carrying `code` (errno name) and `syscall`.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <node_api.h>

#define CHECK(call)                                                                    \
  do {                                                                                 \
    if ((call) != napi_ok) {                                                           \
      napi_throw_error(env, NULL, "vknative: " #call " failed");                       \
      return NULL;                                                                     \
    }                                                                                  \
  } while (0)

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value m, e, code, sc;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_int32(env, err, &code);
  napi_set_named_property(env, e, "errno", code);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, e, "syscall", sc);
  napi_throw(env, e);
  return NULL;
}

static int arg_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

static int arg_str(napi_env env, napi_value v, char *buf, size_t len) {
  size_t n;
  return napi_get_value_string_utf8(env, v, buf, len, &n) == napi_ok ? 0 : -1;
}

static napi_value int_value(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

// setChildSubreaper(): orphaned descendants (container inits) are reparented to us.
static napi_value set_child_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return throw_errno(env, "prctl(PR_SET_CHILD_SUBREAPER)", errno);
  return NULL;
}

// waitpid(pid, nohang) -> [pid, exitCode, signal] or null when nohang and not exited.
static napi_value wait_pid(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool nohang = true;
  int32_t pid;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_i32(env, argv[0], &pid) < 0) return throw_errno(env, "waitpid", EINVAL);
  if (argc > 1) napi_get_value_bool(env, argv[1], &nohang);
  int status;
  pid_t r;
  do r = waitpid(pid, &status, (nohang ? WNOHANG : 0) | __WALL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "waitpid", errno);
  napi_value out;
  if (r == 0) {
    napi_get_null(env, &out);
    return out;
  }
  napi_create_array_with_length(env, 3, &out);
  napi_set_element(env, out, 0, int_value(env, r));
  napi_set_element(env, out, 1, int_value(env, WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  napi_set_element(env, out, 2, int_value(env, WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  return out;
}

// peekExitedChild() -> pid of an exited child without reaping it, or 0.
static napi_value peek_exited_child(napi_env env, napi_callback_info info) {
  (void)info;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) < 0) {
    if (errno == ECHILD) return int_value(env, 0);
    return throw_errno(env, "waitid", errno);
  }
  return int_value(env, si.si_pid);
}

// mkfifo(path, mode)
static napi_value make_fifo(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[4096];
  int32_t mode;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_str(env, argv[0], path, sizeof path) < 0 || arg_i32(env, argv[1], &mode) < 0)
    return throw_errno(env, "mkfifo", EINVAL);
  if (mkfifo(path, (mode_t)mode) < 0) return throw_errno(env, "mkfifo", errno);
  return NULL;
}

// setWinsize(fd, rows, cols)
static napi_value set_winsize(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd, rows, cols;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_i32(env, argv[0], &fd) < 0 || arg_i32(env, argv[1], &rows) < 0 || arg_i32(env, argv[2], &cols) < 0)
    return throw_errno(env, "ioctl(TIOCSWINSZ)", EINVAL);
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return throw_errno(env, "ioctl(TIOCSWINSZ)", errno);
  return NULL;
}

// listenUnix(path, backlog = 4) -> listening AF_UNIX stream socket fd (close-on-exec).
static napi_value listen_unix(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t backlog = 4;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_str(env, argv[0], sa.sun_path, sizeof sa.sun_path) < 0) return throw_errno(env, "socket", EINVAL);
  if (argc > 1 && arg_i32(env, argv[1], &backlog) < 0) return throw_errno(env, "listen", EINVAL);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind/listen", e);
  }
  return int_value(env, fd);
}

// The blocking part of receiving a pty master runs on the libuv thread pool.
typedef struct {
  int listen_fd, timeout_ms;
  int fd, err;
  char name[256];
  napi_deferred deferred;
  napi_async_work work;
} recv_job;

static void recv_execute(napi_env env, void *data) {
  (void)env;
  recv_job *j = data;
  struct pollfd p = {.fd = j->listen_fd, .events = POLLIN};
  int r;
  do r = poll(&p, 1, j->timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r <= 0) {
    j->err = r == 0 ? ETIMEDOUT : errno;
    return;
  }
  int conn = accept4(j->listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0) {
    j->err = errno;
    return;
  }
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = j->name, .iov_len = sizeof j->name - 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  p.fd = conn;
  do r = poll(&p, 1, j->timeout_ms);
  while (r < 0 && errno == EINTR);
  ssize_t n = r > 0 ? recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) : -1;
  if (n < 0) j->err = r == 0 ? ETIMEDOUT : errno;
  close(conn);
  if (n < 0) return;
  j->name[n] = 0;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) {
    j->err = EBADMSG;
    return;
  }
  memcpy(&j->fd, CMSG_DATA(c), sizeof(int));
}

static void recv_complete(napi_env env, napi_status status, void *data) {
  recv_job *j = data;
  napi_value v;
  if (status == napi_ok && !j->err) {
    napi_value fd, name;
    napi_create_object(env, &v);
    napi_create_int32(env, j->fd, &fd);
    napi_create_string_utf8(env, j->name, NAPI_AUTO_LENGTH, &name);
    napi_set_named_property(env, v, "fd", fd);
    napi_set_named_property(env, v, "name", name);
    napi_resolve_deferred(env, j->deferred, v);
  } else {
    napi_value m, code;
    char msg[256];
    snprintf(msg, sizeof msg, "receive console fd: %s", strerror(j->err ? j->err : EIO));
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_error(env, NULL, m, &v);
    napi_create_int32(env, j->err, &code);
    napi_set_named_property(env, v, "errno", code);
    napi_reject_deferred(env, j->deferred, v);
  }
  napi_delete_async_work(env, j->work);
  free(j);
}

// acceptRecvFd(listenFd, timeoutMs) -> Promise<{fd, name}>: one connection, one SCM_RIGHTS fd.
static napi_value accept_recv_fd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], promise, name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  recv_job *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "acceptRecvFd", ENOMEM);
  j->fd = -1;
  if (argc < 2 || arg_i32(env, argv[0], &j->listen_fd) < 0 || arg_i32(env, argv[1], &j->timeout_ms) < 0) {
    free(j);
    return throw_errno(env, "acceptRecvFd", EINVAL);
  }
  CHECK(napi_create_promise(env, &j->deferred, &promise));
  napi_create_string_utf8(env, "vknative.acceptRecvFd", NAPI_AUTO_LENGTH, &name);
  CHECK(napi_create_async_work(env, NULL, name, recv_execute, recv_complete, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  return promise;
}

// mount(source, target, fstype, flags, data): one mount(2) call; the caller parses options.
static napi_value do_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  char source[4096], target[4096], fstype[256];
  int64_t flags;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5 || arg_str(env, argv[0], source, sizeof source) < 0 || arg_str(env, argv[1], target, sizeof target) < 0 ||
      arg_str(env, argv[2], fstype, sizeof fstype) < 0 || napi_get_value_int64(env, argv[3], &flags) != napi_ok)
    return throw_errno(env, "mount", EINVAL);
  // Overlay lowerdir lists can be long: the data string is sized from the argument.
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[4], NULL, 0, &len) != napi_ok) return throw_errno(env, "mount", EINVAL);
  char *data = malloc(len + 1);
  if (!data) return throw_errno(env, "mount", ENOMEM);
  if (arg_str(env, argv[4], data, len + 1) < 0) {
    free(data);
    return throw_errno(env, "mount", EINVAL);
  }
  int r = mount(source[0] ? source : NULL, target, fstype[0] ? fstype : NULL, (unsigned long)flags, data[0] ? data : NULL);
  int e = errno;
  free(data);
  if (r < 0) return throw_errno(env, "mount", e);
  return NULL;
}

// umount2(target, flags)
static napi_value do_umount2(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char target[4096];
  int32_t flags;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_str(env, argv[0], target, sizeof target) < 0 || arg_i32(env, argv[1], &flags) < 0)
    return throw_errno(env, "umount2", EINVAL);
  if (umount2(target, flags) < 0) return throw_errno(env, "umount2", errno);
  return NULL;
}

// pipe() -> [readFd, writeFd], both close-on-exec (a child gets them only through its stdio list).
static napi_value make_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return throw_errno(env, "pipe2", errno);
  napi_value out;
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, int_value(env, fds[0]));
  napi_set_element(env, out, 1, int_value(env, fds[1]));
  return out;
}

// ---- fd passing between shim processes (shim/manager, shim/daemon) ----------------------

// connectUnix(path) -> a connected, blocking AF_UNIX stream socket fd (close-on-exec).
static napi_value connect_unix(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], sa.sun_path, sizeof sa.sun_path, &n) != napi_ok)
    return throw_errno(env, "connect", EINVAL);
  if (n >= sizeof sa.sun_path - 1) return throw_errno(env, "connect", ENAMETOOLONG);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int r;
  do r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "connect", e);
  }
  return int_value(env, fd);
}

// Waits until fd is ready for `events` (EINTR retried); 0 or an errno (ETIMEDOUT).
static int wait_fd(int fd, short events, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = events};
  int r;
  do r = poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r < 0 ? errno : r == 0 ? ETIMEDOUT : 0;
}

// sendFd(sockFd, data: Buffer, fd): `data` with `fd` attached (SCM_RIGHTS) on a connected
// socket, blocking or not (waits up to 5 s for room). The kernel dups the fd for the peer.
static napi_value send_fd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t sock, fd;
  void *data;
  size_t len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_i32(env, argv[0], &sock) < 0 || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok ||
      arg_i32(env, argv[2], &fd) < 0 || len == 0)
    return throw_errno(env, "sendmsg", EINVAL);
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  size_t off = 0;
  while (off < len) {
    ssize_t n = off == 0 ? sendmsg(sock, &msg, MSG_NOSIGNAL) : send(sock, (char *)data + off, len - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int e = wait_fd(sock, POLLOUT, 5000);
        if (e) return throw_errno(env, "sendmsg", e);
        continue;
      }
      return throw_errno(env, "sendmsg", errno);
    }
    off += (size_t)n;
  }
  return NULL;
}

// The blocking part of recvFd runs on the libuv thread pool.
typedef struct {
  int sock, timeout_ms;
  int fd, err;
  ssize_t n;
  char buf[65536];
  napi_deferred deferred;
  napi_async_work work;
} recvfd_job;

static void recvfd_execute(napi_env env, void *data) {
  (void)env;
  recvfd_job *j = data;
  char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  struct iovec iov = {.iov_base = j->buf, .iov_len = sizeof j->buf};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  for (;;) {
    int e = wait_fd(j->sock, POLLIN, j->timeout_ms);
    if (e) {
      j->err = e;
      return;
    }
    j->n = recvmsg(j->sock, &msg, MSG_CMSG_CLOEXEC);
    if (j->n >= 0) break;
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      j->err = errno;
      return;
    }
  }
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (j->fd < 0) j->fd = got;
      else close(got); // only one fd is expected: never leak the others
    }
  }
}

static void recvfd_complete(napi_env env, napi_status status, void *data) {
  recvfd_job *j = data;
  napi_value v;
  if (status == napi_ok && !j->err) {
    napi_value fd, buf;
    napi_create_object(env, &v);
    napi_create_int32(env, j->fd, &fd);
    napi_create_buffer_copy(env, (size_t)j->n, j->buf, NULL, &buf);
    napi_set_named_property(env, v, "fd", fd);
    napi_set_named_property(env, v, "data", buf);
    napi_resolve_deferred(env, j->deferred, v);
  } else {
    if (j->fd >= 0) close(j->fd);
    napi_value m, code;
    char msg[256];
    snprintf(msg, sizeof msg, "recvmsg: %s", strerror(j->err ? j->err : EIO));
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_error(env, NULL, m, &v);
    napi_create_int32(env, j->err, &code);
    napi_set_named_property(env, v, "errno", code);
    napi_reject_deferred(env, j->deferred, v);
  }
  napi_delete_async_work(env, j->work);
  free(j);
}

// recvFd(sockFd, timeoutMs) -> Promise<{fd, data}>: one recvmsg; fd is -1 when none came
// with the data, and data is empty at end of stream. timeoutMs < 0 waits forever.
static napi_value recv_fd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], promise, name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  recvfd_job *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "recvFd", ENOMEM);
  j->fd = -1;
  if (argc < 2 || arg_i32(env, argv[0], &j->sock) < 0 || arg_i32(env, argv[1], &j->timeout_ms) < 0) {
    free(j);
    return throw_errno(env, "recvFd", EINVAL);
  }
  CHECK(napi_create_promise(env, &j->deferred, &promise));
  napi_create_string_utf8(env, "vknative.recvFd", NAPI_AUTO_LENGTH, &name);
  CHECK(napi_create_async_work(env, NULL, name, recvfd_execute, recvfd_complete, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  return promise;
}

// flock(fd) -> true when this open file now holds the exclusive lock, false when another
// holder has it (LOCK_EX | LOCK_NB). The lock lives as long as the open file does.
static napi_value flock_exclusive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_i32(env, argv[0], &fd) < 0) return throw_errno(env, "flock", EINVAL);
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EWOULDBLOCK) return throw_errno(env, "flock", errno);
  napi_get_boolean(env, r == 0, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"setChildSubreaper", NULL, set_child_subreaper, NULL, NULL, NULL, napi_default, NULL},
      {"waitpid", NULL, wait_pid, NULL, NULL, NULL, napi_default, NULL},
      {"peekExitedChild", NULL, peek_exited_child, NULL, NULL, NULL, napi_default, NULL},
      {"mkfifo", NULL, make_fifo, NULL, NULL, NULL, napi_default, NULL},
      {"setWinsize", NULL, set_winsize, NULL, NULL, NULL, napi_default, NULL},
      {"listenUnix", NULL, listen_unix, NULL, NULL, NULL, napi_default, NULL},
      {"acceptRecvFd", NULL, accept_recv_fd, NULL, NULL, NULL, napi_default, NULL},
      {"mount", NULL, do_mount, NULL, NULL, NULL, napi_default, NULL},
      {"umount2", NULL, do_umount2, NULL, NULL, NULL, napi_default, NULL},
      {"pipe", NULL, make_pipe, NULL, NULL, NULL, napi_default, NULL},
      {"connectUnix", NULL, connect_unix, NULL, NULL, NULL, napi_default, NULL},
      {"sendFd", NULL, send_fd, NULL, NULL, NULL, napi_default, NULL},
      {"recvFd", NULL, recv_fd, NULL, NULL, NULL, napi_default, NULL},
      {"flock", NULL, flock_exclusive, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
