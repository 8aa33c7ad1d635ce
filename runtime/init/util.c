/* Small helpers shared by every stage: errors, whole-buffer I/O, numbers. */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int vk_fail(struct vk_error *err, const char *step, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	err->errnum = errnum;
	snprintf(err->step, sizeof err->step, "%s", step);
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	if (errnum) {
		n = strlen(err->msg);
		snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(errnum));
	}
	return -1;
}

/* Writes everything, also to non-blocking fds shared with Node (waits for POLLOUT). */
int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_file(const char *path, char **out, size_t *len)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	cleanup_free char *buf = NULL;
	size_t cap = 0, n = 0;

	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t r;
		if (n == cap) {
			char *nb = realloc(buf, cap ? cap * 2 : 4096);
			if (!nb)
				return -1;
			buf = nb;
			cap = cap ? cap * 2 : 4096;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = buf;
	buf = NULL;
	*len = n;
	return 0;
}

int write_file_at(int dirfd, const char *path, const char *data)
{
	cleanup_close int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	return write_all(fd, data, strlen(data));
}

/* Grow *arr by one zeroed element of `size` bytes; returns the new element. */
void *vec_push(void *arr, size_t *n, size_t size)
{
	void **pa = arr;
	char *na = realloc(*pa, (*n + 1) * size);

	if (!na)
		return NULL;
	*pa = na;
	memset(na + *n * size, 0, size);
	return na + (*n)++ * size;
}

int parse_u64(const char *s, int base, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!*s || *s == ' ' || *s == '+')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

const char *fd_path(int fd, char buf[static 32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}
