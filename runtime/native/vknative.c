// vknative: the few syscalls Node lacks, as a Node-API addon. No policy lives here: each
// function is one kernel call (or a tight sequence of them) with errors thrown as
// `Error` objects carrying `code` (errno name) and `syscall`.
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/syscall.h>
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

// An Error "<syscall>: <strerror>" carrying errno and syscall, for throws and rejections alike.
static napi_value errno_error(napi_env env, const char *syscall, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value m, e, code, sc;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_int32(env, err, &code);
  napi_set_named_property(env, e, "errno", code);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, e, "syscall", sc);
  return e;
}

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  napi_throw(env, errno_error(env, syscall, err));
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

// peerPid(fd) -> the pid of the process at the other end of a connected AF_UNIX socket, as
// the kernel recorded it at connect (SO_PEERCRED): what a check-in's claimed pid is held to.
static napi_value peer_pid(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  struct ucred cred;
  socklen_t len = sizeof cred;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_i32(env, argv[0], &fd) < 0) return throw_errno(env, "getsockopt", EINVAL);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_errno(env, "getsockopt", errno);
  return int_value(env, cred.pid);
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
    napi_reject_deferred(env, j->deferred, errno_error(env, "receive console fd", j->err ? j->err : EIO));
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
    napi_reject_deferred(env, j->deferred, errno_error(env, "recvmsg", j->err ? j->err : EIO));
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

// ---- cgroup v2 device programs (runtime/cgroups/v2/devices.ts) ---------------------------

static long sys_bpf(int cmd, union bpf_attr *attr) {
  long r;
  do r = syscall(__NR_bpf, cmd, attr, sizeof *attr);
  while (r < 0 && errno == EINTR);
  return r;
}

// bpfProgLoad(progType, insns: Buffer (8 bytes per instruction), license) -> prog fd
// (close-on-exec). A refused program is loaded once more with the verifier log on, and the
// error carries it: `log` property, and appended to the message.
static napi_value bpf_prog_load(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t type;
  void *insns;
  size_t len;
  char license[128];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_i32(env, argv[0], &type) < 0 || napi_get_buffer_info(env, argv[1], &insns, &len) != napi_ok ||
      len == 0 || len % sizeof(struct bpf_insn) != 0 || arg_str(env, argv[2], license, sizeof license) < 0)
    return throw_errno(env, "bpf(BPF_PROG_LOAD)", EINVAL);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = (uint32_t)type;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)(len / sizeof(struct bpf_insn));
  attr.license = (uint64_t)(uintptr_t)license;
  long fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return int_value(env, fd);
  int err = errno;
  size_t log_size = 1 << 18;
  char *log = calloc(1, log_size);
  if (!log) return throw_errno(env, "bpf(BPF_PROG_LOAD)", err);
  attr.log_level = 1;
  attr.log_size = (uint32_t)log_size;
  attr.log_buf = (uint64_t)(uintptr_t)log;
  fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) { // accepted the second time (should not happen): use it
    free(log);
    return int_value(env, fd);
  }
  size_t n = strnlen(log, log_size - 1);
  while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' ')) log[--n] = 0;
  char *msg = malloc(n + 256);
  if (!msg) {
    free(log);
    return throw_errno(env, "bpf(BPF_PROG_LOAD)", err);
  }
  snprintf(msg, n + 256, "bpf(BPF_PROG_LOAD): %s%s%s", strerror(err), n ? ": verifier log: " : "", log);
  napi_value m, e, code, sc, lg;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_int32(env, err, &code);
  napi_set_named_property(env, e, "errno", code);
  napi_create_string_utf8(env, "bpf(BPF_PROG_LOAD)", NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, e, "syscall", sc);
  napi_create_string_utf8(env, log, n, &lg);
  napi_set_named_property(env, e, "log", lg);
  free(msg);
  free(log);
  napi_throw(env, e);
  return NULL;
}

// BPF_PROG_ATTACH / BPF_PROG_DETACH: (targetFd, progFd, attachType[, flags]).
static napi_value bpf_attach_cmd(napi_env env, napi_callback_info info, int cmd, const char *name) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t target, prog, type, flags = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_i32(env, argv[0], &target) < 0 || arg_i32(env, argv[1], &prog) < 0 || arg_i32(env, argv[2], &type) < 0 ||
      (argc > 3 && arg_i32(env, argv[3], &flags) < 0))
    return throw_errno(env, name, EINVAL);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)target;
  attr.attach_bpf_fd = (uint32_t)prog;
  attr.attach_type = (uint32_t)type;
  attr.attach_flags = (uint32_t)flags;
  if (sys_bpf(cmd, &attr) < 0) return throw_errno(env, name, errno);
  return NULL;
}

// bpfProgAttach(targetFd, progFd, attachType, flags)
static napi_value bpf_prog_attach(napi_env env, napi_callback_info info) {
  return bpf_attach_cmd(env, info, BPF_PROG_ATTACH, "bpf(BPF_PROG_ATTACH)");
}

// bpfProgDetach(targetFd, progFd, attachType)
static napi_value bpf_prog_detach(napi_env env, napi_callback_info info) {
  return bpf_attach_cmd(env, info, BPF_PROG_DETACH, "bpf(BPF_PROG_DETACH)");
}

// bpfProgQuery(targetFd, attachType) -> { attachFlags, ids }: the programs attached to the
// target itself (not the effective ones inherited from ancestors).
static napi_value bpf_prog_query(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t target, type;
  uint32_t ids[64];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_i32(env, argv[0], &target) < 0 || arg_i32(env, argv[1], &type) < 0)
    return throw_errno(env, "bpf(BPF_PROG_QUERY)", EINVAL);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.query.target_fd = (uint32_t)target;
  attr.query.attach_type = (uint32_t)type;
  attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
  attr.query.prog_cnt = sizeof ids / sizeof ids[0];
  if (sys_bpf(BPF_PROG_QUERY, &attr) < 0) return throw_errno(env, "bpf(BPF_PROG_QUERY)", errno);
  uint32_t cnt = attr.query.prog_cnt < 64 ? attr.query.prog_cnt : 64;
  napi_value out, list;
  napi_create_object(env, &out);
  napi_create_array_with_length(env, cnt, &list);
  for (uint32_t i = 0; i < cnt; i++) napi_set_element(env, list, i, int_value(env, ids[i]));
  napi_set_named_property(env, out, "attachFlags", int_value(env, attr.query.attach_flags));
  napi_set_named_property(env, out, "ids", list);
  return out;
}

// bpfProgGetFdById(id) -> prog fd (close-on-exec); ENOENT once the program is freed.
static napi_value bpf_prog_get_fd_by_id(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t id;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_i32(env, argv[0], &id) < 0) return throw_errno(env, "bpf(BPF_PROG_GET_FD_BY_ID)", EINVAL);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_id = (uint32_t)id;
  long fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0) return throw_errno(env, "bpf(BPF_PROG_GET_FD_BY_ID)", errno);
  return int_value(env, fd);
}

// ---- eventfd notifications (cgroup v1 memory.oom_control, runtime/cgroups/oom.ts) --------

// eventfd(initval, flags) -> fd
static napi_value make_eventfd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t initval, flags;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_i32(env, argv[0], &initval) < 0 || arg_i32(env, argv[1], &flags) < 0)
    return throw_errno(env, "eventfd", EINVAL);
  int fd = eventfd((unsigned)initval, flags);
  if (fd < 0) return throw_errno(env, "eventfd", errno);
  return int_value(env, fd);
}

// A watch is a thread blocked in poll() on the eventfd and a private stop eventfd, so
// neither the event loop nor the libuv thread pool waits. Each read counter value is
// handed to the JS callback through a thread-safe function (never blocking: no queue
// limit, so stopping can join the thread without a deadlock).
typedef struct {
  int fd, stop_fd;
  bool stopped;
  pthread_t thread;
  napi_threadsafe_function tsfn;
} efd_watch;

static void efd_call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  int64_t v = *(int64_t *)data; // > 0: counter value read; < 0: -errno, the watch ended
  free(data);
  if (!env || !cb) return;
  napi_value undef, args[2];
  napi_get_undefined(env, &undef);
  napi_create_int64(env, v > 0 ? v : 0, &args[0]);
  napi_create_int32(env, v < 0 ? (int32_t)-v : 0, &args[1]);
  napi_call_function(env, undef, cb, 2, args, NULL);
}

static void efd_post(efd_watch *w, int64_t v) {
  int64_t *p = malloc(sizeof *p);
  if (!p) return;
  *p = v;
  if (napi_call_threadsafe_function(w->tsfn, p, napi_tsfn_nonblocking) != napi_ok) free(p);
}

static void *efd_thread(void *arg) {
  efd_watch *w = arg;
  for (;;) {
    struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN}, {.fd = w->stop_fd, .events = POLLIN}};
    int r = poll(p, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      efd_post(w, -(int64_t)errno);
      break;
    }
    if (p[1].revents) break;
    if (p[0].revents & (POLLERR | POLLNVAL)) {
      efd_post(w, -(int64_t)EBADF);
      break;
    }
    uint64_t v;
    ssize_t n = read(w->fd, &v, sizeof v);
    if (n == (ssize_t)sizeof v) efd_post(w, (int64_t)v);
    else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      efd_post(w, -(int64_t)errno);
      break;
    }
  }
  napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
  return NULL;
}

static void efd_stop(efd_watch *w) {
  if (w->stopped) return;
  w->stopped = true;
  uint64_t one = 1;
  if (write(w->stop_fd, &one, sizeof one) < 0) { /* the thread still ends at the next poll error */ }
  pthread_join(w->thread, NULL);
  close(w->stop_fd);
}

static void efd_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  efd_watch *w = data;
  efd_stop(w);
  free(w);
}

// watchEventfd(fd, cb(value, errno)) -> watch handle. cb gets each counter value read
// (value > 0, errno 0), or errno != 0 once when the watch fails and ends. The handle keeps
// the event loop alive until unwatchEventfd(handle); the fd stays the caller's to close,
// after unwatching.
static napi_value watch_eventfd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, handle;
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_i32(env, argv[0], &fd) < 0) return throw_errno(env, "watchEventfd", EINVAL);
  efd_watch *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "watchEventfd", ENOMEM);
  w->fd = fd;
  w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->stop_fd < 0) {
    int e = errno;
    free(w);
    return throw_errno(env, "eventfd", e);
  }
  napi_create_string_utf8(env, "vknative.watchEventfd", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, efd_call_js, &w->tsfn) != napi_ok) {
    close(w->stop_fd);
    free(w);
    return throw_errno(env, "watchEventfd", EINVAL);
  }
  int e = pthread_create(&w->thread, NULL, efd_thread, w);
  if (e) {
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    close(w->stop_fd);
    free(w);
    return throw_errno(env, "pthread_create", e);
  }
  CHECK(napi_create_external(env, w, efd_finalize, NULL, &handle));
  return handle;
}

// unwatchEventfd(handle): stops and joins the watch thread; idempotent. Callbacks already
// queued may still run afterwards.
static napi_value unwatch_eventfd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok) return throw_errno(env, "unwatchEventfd", EINVAL);
  efd_stop(data);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"setChildSubreaper", NULL, set_child_subreaper, NULL, NULL, NULL, napi_default, NULL},
      {"waitpid", NULL, wait_pid, NULL, NULL, NULL, napi_default, NULL},
      {"peekExitedChild", NULL, peek_exited_child, NULL, NULL, NULL, napi_default, NULL},
      {"peerPid", NULL, peer_pid, NULL, NULL, NULL, napi_default, NULL},
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
      {"bpfProgLoad", NULL, bpf_prog_load, NULL, NULL, NULL, napi_default, NULL},
      {"bpfProgAttach", NULL, bpf_prog_attach, NULL, NULL, NULL, napi_default, NULL},
      {"bpfProgDetach", NULL, bpf_prog_detach, NULL, NULL, NULL, napi_default, NULL},
      {"bpfProgQuery", NULL, bpf_prog_query, NULL, NULL, NULL, napi_default, NULL},
      {"bpfProgGetFdById", NULL, bpf_prog_get_fd_by_id, NULL, NULL, NULL, napi_default, NULL},
      {"eventfd", NULL, make_eventfd, NULL, NULL, NULL, napi_default, NULL},
      {"watchEventfd", NULL, watch_eventfd, NULL, NULL, NULL, napi_default, NULL},
      {"unwatchEventfd", NULL, unwatch_eventfd, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
