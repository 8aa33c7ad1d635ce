// vknative: the few syscalls Node lacks, as a Node-API addon. No policy lives here: each
// function is one kernel call (or a tight sequence of them) with errors thrown as
// `Error` objects carrying `code` (errno name) and `syscall`.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
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

// listenUnix(path) -> listening AF_UNIX stream socket fd (close-on-exec).
static napi_value listen_unix(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_str(env, argv[0], sa.sun_path, sizeof sa.sun_path) < 0) return throw_errno(env, "socket", EINVAL);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4) < 0) {
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

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"setChildSubreaper", NULL, set_child_subreaper, NULL, NULL, NULL, napi_default, NULL},
      {"waitpid", NULL, wait_pid, NULL, NULL, NULL, napi_default, NULL},
      {"peekExitedChild", NULL, peek_exited_child, NULL, NULL, NULL, napi_default, NULL},
      {"mkfifo", NULL, make_fifo, NULL, NULL, NULL, napi_default, NULL},
      {"setWinsize", NULL, set_winsize, NULL, NULL, NULL, napi_default, NULL},
      {"listenUnix", NULL, listen_unix, NULL, NULL, NULL, napi_default, NULL},
      {"acceptRecvFd", NULL, accept_recv_fd, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
