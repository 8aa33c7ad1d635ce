// containerd-shim-vkernel-v2: the binary containerd runs for io.containerd.vkernel.v2.
//
// No shim logic lives here. It forwards the invocation (argv, cwd, the variables containerd
// sets, all of stdin, its parent's pid) to the vkernel shim manager over a unix socket and
// relays the answer: stdout bytes, stderr bytes when there are any, the exit code. When no
// manager answers (no socket, connection refused, or a manager that hangs up without a
// complete reply) it execs the Node cold path with the same argv and stdin:
//
//     <node> --no-warnings <pkgroot>/dist/cmd/containerd-shim-vkernel-v2.js <argv[1..]>
//
// Wire format: shim/manager/protocol.ts. Nothing is written to stdout before a complete reply
// is held, so falling back is always safe.
//
// Configuration (containerd's PATH is never consulted):
//   VKERNEL_SHIM_MANAGER  manager socket (default VK_MANAGER_SOCKET); "off" = always cold
//   VKERNEL_NODE          node binary     (default VK_NODE, baked in at build time with -D)
//   VKERNEL_PKGROOT       package root    (default VK_PKGROOT baked in with -D, else the
//                                          parent of the directory holding this binary,
//                                          symlinks resolved: <pkgroot>/build/<this binary>)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef VK_NODE
#define VK_NODE "/usr/bin/node"
#endif
#ifndef VK_MANAGER_SOCKET
#define VK_MANAGER_SOCKET "/run/vkernel/shim-manager.sock"
#endif
#define SHIM_NAME "containerd-shim-vkernel-v2"
#define COLD_SCRIPT "/dist/cmd/" SHIM_NAME ".js"
#define MAX_PAYLOAD (16u << 20)
// A manager answer takes milliseconds (delete: at most a few seconds); past this, go cold.
#define REPLY_TIMEOUT_S 30

static const char *const forwarded_env[] = {"TTRPC_ADDRESS", "GRPC_ADDRESS", "NAMESPACE", "MAX_SHIM_VERSION", "VKERNEL_SHIM_PROTOCOL", NULL};

struct buf {
  unsigned char *p;
  size_t len, cap;
};

static void die(const char *what) {
  fprintf(stderr, SHIM_NAME ": %s: %s\n", what, strerror(errno));
  exit(1);
}

static void buf_put(struct buf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) die("out of memory");
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void put_u32(unsigned char *at, uint32_t v) {
  at[0] = v >> 24;
  at[1] = v >> 16;
  at[2] = v >> 8;
  at[3] = v;
}

static uint32_t get_u32(const unsigned char *at) {
  return (uint32_t)at[0] << 24 | (uint32_t)at[1] << 16 | (uint32_t)at[2] << 8 | at[3];
}

static void put_record(struct buf *b, char tag, const void *data, size_t n) {
  unsigned char head[5];
  head[0] = (unsigned char)tag;
  put_u32(head + 1, (uint32_t)n);
  buf_put(b, head, sizeof head);
  buf_put(b, data, n);
}

// Reads fd to EOF into b; -1 on error (errno set) or when more than max bytes arrive.
static int read_all(int fd, struct buf *b, size_t max) {
  unsigned char chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (b->len + (size_t)n > max) {
      errno = EFBIG;
      return -1;
    }
    buf_put(b, chunk, (size_t)n);
  }
}

static int write_all(int fd, const void *data, size_t n) {
  const unsigned char *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void package_root(char *out, size_t size);

// Builds the request: VKS1 | u32 length | records.
static void build_request(struct buf *req, int argc, char **argv, const struct buf *in) {
  struct buf payload = {0};
  for (int i = 0; i < argc; i++) put_record(&payload, 'A', argv[i], strlen(argv[i]));
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd)) put_record(&payload, 'C', cwd, strlen(cwd));
  for (const char *const *name = forwarded_env; *name; name++) {
    const char *v = getenv(*name);
    if (!v) continue;
    struct buf kv = {0};
    buf_put(&kv, *name, strlen(*name));
    buf_put(&kv, "=", 1);
    buf_put(&kv, v, strlen(v));
    put_record(&payload, 'E', kv.p, kv.len);
    free(kv.p);
  }
  if (in->len) put_record(&payload, 'I', in->p, in->len);
  char ppid[32];
  int n = snprintf(ppid, sizeof ppid, "%d", (int)getppid());
  put_record(&payload, 'P', ppid, (size_t)n);
  // Our package: a manager running another copy of vkernel (a dev tree, an older install)
  // declines, and we run our own code on the cold path.
  char root[PATH_MAX];
  package_root(root, sizeof root);
  put_record(&payload, 'R', root, strlen(root));
  unsigned char head[8] = {'V', 'K', 'S', '1'};
  put_u32(head + 4, (uint32_t)payload.len);
  buf_put(req, head, sizeof head);
  buf_put(req, payload.p, payload.len);
  free(payload.p);
}

struct reply {
  const unsigned char *out, *err;
  size_t out_len, err_len;
  int code, complete;
};

// Validates a VKR1 reply; complete only with an exit code record.
static int parse_reply(const struct buf *b, struct reply *r) {
  memset(r, 0, sizeof *r);
  if (b->len < 8 || memcmp(b->p, "VKR1", 4) != 0 || get_u32(b->p + 4) != b->len - 8) return -1;
  size_t pos = 8;
  while (pos < b->len) {
    if (pos + 5 > b->len) return -1;
    char tag = (char)b->p[pos];
    size_t len = get_u32(b->p + pos + 1);
    pos += 5;
    if (len > b->len - pos) return -1;
    const unsigned char *data = b->p + pos;
    if (tag == 'O') {
      r->out = data;
      r->out_len = len;
    } else if (tag == 'E') {
      r->err = data;
      r->err_len = len;
    } else if (tag == 'X') {
      char num[16];
      if (len == 0 || len >= sizeof num) return -1;
      memcpy(num, data, len);
      num[len] = 0;
      char *end;
      long code = strtol(num, &end, 10);
      if (*end || code < 0 || code > 255) return -1;
      r->code = (int)code;
      r->complete = 1;
    }
    pos += len;
  }
  return r->complete ? 0 : -1;
}

// Asks the manager; 0 with a complete reply in `out`, -1 when the cold path should run.
static int ask_manager(const char *path, const struct buf *req, struct buf *out) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return -1;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int r;
  do r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  while (r < 0 && errno == EINTR);
  if (r < 0 || write_all(fd, req->p, req->len) < 0 || shutdown(fd, SHUT_WR) < 0 || read_all(fd, out, MAX_PAYLOAD + 8) < 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

#ifdef VK_PKGROOT
static int is_file(const char *p) {
  return access(p, R_OK) == 0;
}
#endif

// The package root: VKERNEL_PKGROOT, the baked-in VK_PKGROOT, or derived from our own path.
static void package_root(char *out, size_t size) {
  const char *env = getenv("VKERNEL_PKGROOT");
  if (env && *env) {
    snprintf(out, size, "%s", env);
    return;
  }
#ifdef VK_PKGROOT
  char script[PATH_MAX + sizeof COLD_SCRIPT];
  snprintf(script, sizeof script, "%s" COLD_SCRIPT, VK_PKGROOT);
  if (is_file(script)) {
    snprintf(out, size, "%s", VK_PKGROOT);
    return;
  }
#endif
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    for (int up = 0; up < 2; up++) {
      char *slash = strrchr(self, '/');
      if (slash) *slash = 0;
    }
    snprintf(out, size, "%s", self[0] ? self : "/");
    return;
  }
#ifdef VK_PKGROOT
  snprintf(out, size, "%s", VK_PKGROOT);
#else
  snprintf(out, size, "/usr/local/lib/vkernel");
#endif
}

// The cold path: exec node on the shim's JS entry, with stdin restored from what we read.
static int cold(int argc, char **argv, const struct buf *in, int consumed) {
  const char *node = getenv("VKERNEL_NODE");
  if (!node || !*node) node = VK_NODE;
  char root[PATH_MAX], script[PATH_MAX + sizeof COLD_SCRIPT];
  package_root(root, sizeof root);
  snprintf(script, sizeof script, "%s" COLD_SCRIPT, root);
  if (consumed) {
    // stdin was read to the end: hand the same bytes on in a memory file at offset 0.
    int m = memfd_create("stdin", MFD_CLOEXEC);
    if (m < 0) die("memfd_create");
    if (write_all(m, in->p, in->len) < 0 || lseek(m, 0, SEEK_SET) < 0) die("memfd write");
    if (dup2(m, 0) < 0) die("dup2");
    close(m);
  }
  setenv("NODE_NO_WARNINGS", "1", 1);
  char **args = calloc((size_t)argc + 3, sizeof *args);
  if (!args) die("out of memory");
  args[0] = (char *)node;
  args[1] = "--no-warnings";
  args[2] = script;
  for (int i = 1; i < argc; i++) args[i + 2] = argv[i];
  execv(node, args);
  fprintf(stderr,
          SHIM_NAME ": cannot run node: exec %s: %s; set VKERNEL_NODE in containerd's environment to a Node.js (>= 20) "
                    "binary, or reinstall vkernel (make install INSTALL_NODE=/path/to/node)\n",
          node, strerror(errno));
  return 127;
}

int main(int argc, char **argv) {
  struct buf in = {0};
  int consumed = 0;
  // A terminal is a person running `-v`: nothing to read. A closed or unreadable stdin is empty.
  if (!isatty(0)) {
    if (read_all(0, &in, MAX_PAYLOAD) < 0) {
      if (errno == EFBIG) {
        fprintf(stderr, SHIM_NAME ": stdin is larger than %u bytes\n", MAX_PAYLOAD);
        return 1;
      }
      in.len = 0;
    } else {
      consumed = 1;
    }
  }
  const char *manager = getenv("VKERNEL_SHIM_MANAGER");
  if (!manager || !*manager) manager = VK_MANAGER_SOCKET;
  if (strcmp(manager, "off") != 0) {
    struct buf req = {0}, rep = {0};
    struct reply r;
    build_request(&req, argc, argv, &in);
    if (ask_manager(manager, &req, &rep) == 0 && parse_reply(&rep, &r) == 0) {
      if (write_all(1, r.out, r.out_len) < 0) return 1;
      if (r.err_len && write_all(2, r.err, r.err_len) < 0) return 1;
      return r.code;
    }
    free(req.p);
    free(rep.p);
  }
  return cold(argc, argv, &in, consumed);
}
