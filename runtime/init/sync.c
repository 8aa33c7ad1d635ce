/* The wire: frames (`<len>\n<bytes>`) one way, text lines the other, and fd passing.
 * The same reader serves Node's socket and the parent<->child socketpair. */
#include "vkinit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#define MAX_FRAME (64u << 20)

ssize_t reader_fill(struct vk_reader *r)
{
	ssize_t n;

	if (r->cap - r->len < 4096) {
		size_t cap = r->cap ? r->cap * 2 : 8192;
		char *nb = realloc(r->buf, cap);
		if (!nb)
			return -1;
		r->buf = nb;
		r->cap = cap;
	}
	do
		n = read(r->fd, r->buf + r->len, r->cap - r->len - 1);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		r->eof = true;
	if (n > 0)
		r->len += (size_t)n;
	return n;
}

static void reader_consume(struct vk_reader *r, size_t n)
{
	memmove(r->buf, r->buf + n, r->len - n);
	r->len -= n;
}

int reader_take_line(struct vk_reader *r, char **line)
{
	char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
	size_t n;

	if (!nl)
		return 0;
	n = (size_t)(nl - r->buf);
	*line = strndup(r->buf, n);
	if (!*line)
		return -1;
	reader_consume(r, n + 1);
	return 1;
}

int reader_take_frame(struct vk_reader *r, char **data, size_t *len)
{
	char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
	uint64_t n;
	size_t hdr;

	if (!nl)
		return r->len > 20 ? (errno = EINVAL, -1) : 0;
	*nl = '\0';
	if (parse_u64(r->buf, 10, &n) < 0 || n > MAX_FRAME) {
		*nl = '\n';
		errno = EINVAL;
		return -1;
	}
	*nl = '\n';
	hdr = (size_t)(nl - r->buf) + 1;
	if (r->len - hdr < n)
		return 0;
	*data = malloc(n + 1);
	if (!*data)
		return -1;
	memcpy(*data, r->buf + hdr, n);
	(*data)[n] = '\0';
	*len = n;
	reader_consume(r, hdr + n);
	return 1;
}

int read_frame(struct vk_reader *r, char **data, size_t *len, struct vk_error *err)
{
	for (;;) {
		int got = reader_take_frame(r, data, len);
		if (got > 0)
			return 0;
		if (got < 0)
			return vk_fail(err, "sync", errno, "bad frame");
		if (r->eof)
			return vk_fail(err, "sync", EPIPE, "connection closed while waiting for a frame");
		if (reader_fill(r) < 0)
			return vk_fail(err, "sync", errno, "read frame");
	}
}

int read_line(struct vk_reader *r, char **line, struct vk_error *err)
{
	for (;;) {
		int got = reader_take_line(r, line);
		if (got > 0)
			return 0;
		if (got < 0)
			return vk_fail(err, "sync", errno, "read line");
		if (r->eof)
			return vk_fail(err, "sync", EPIPE, "connection closed while waiting for a line");
		if (reader_fill(r) < 0)
			return vk_fail(err, "sync", errno, "read line");
	}
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int send_line(int fd, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	/* A message is one line: whatever the error text holds, no newline gets out. */
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[n++] = '\n';
	return send_all(fd, buf, (size_t)n);
}

int send_frame(int fd, const void *data, size_t len)
{
	char hdr[32];
	int n = snprintf(hdr, sizeof hdr, "%zu\n", len);

	if (send_all(fd, hdr, (size_t)n) < 0)
		return -1;
	return send_all(fd, data, len);
}

int send_error(int fd, const struct vk_error *err)
{
	return send_line(fd, "error %s %d %s", err->step[0] ? err->step : "init", err->errnum,
			 err->msg);
}

/* One SCM_RIGHTS message; the data is the name (runc sends the pty path the same way). */
int send_fd(int sock, int fd, const char *name)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)name, .iov_len = strlen(name) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof u.buf,
	};
	struct cmsghdr *c;
	ssize_t n;

	memset(&u, 0, sizeof u);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && (size_t)n < iov.iov_len)
		errno = EMSGSIZE; /* the receiver reads one message: a cut one is useless */
	return n < 0 || (size_t)n < iov.iov_len ? -1 : 0;
}

/* A connected AF_UNIX stream socket (close-on-exec), or -1 with errno. */
int connect_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	cleanup_close int fd = -1;

	if (strlen(path) >= sizeof addr.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		return -1;
	return take_fd(&fd);
}

int recv_fd(int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char name[4096];
	struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof u.buf,
	};
	struct cmsghdr *c;
	ssize_t n;
	int fd;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
		errno = n == 0 ? EPIPE : EBADMSG;
		return -1;
	}
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}
