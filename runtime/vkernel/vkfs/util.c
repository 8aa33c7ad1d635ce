/* Small helpers: buffers, file reads, cpu lists and masks, clocks, logging. */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vkfs.h"

void buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		vlog("out of memory (%zu bytes)", cap);
		abort();
	}
	b->p = p;
	b->cap = cap;
}

void buf_add(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	buf_reserve(b, 128);
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			b->len += n;
			return;
		}
		buf_reserve(b, n);
	}
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/*
 * Hot files stay open and are re-read with pread() at offset 0: seq_file (procfs, cgroupfs,
 * sysfs attributes) regenerates the content on every read at offset 0, so this is as fresh
 * as open+read+close at a third of the system calls. A failed pread (the cgroup was
 * removed, ...) drops the fd and opens the path again once.
 */
#define FDC_N 1024
static struct fdc {
	char *path;
	int fd;
} fdc[FDC_N];
static int fdc_used;

void fdcache_reset(void)
{
	for (int i = 0; i < FDC_N; i++) {
		if (fdc[i].fd > 0)
			close(fdc[i].fd);
		free(fdc[i].path);
		fdc[i].path = NULL;
		fdc[i].fd = 0;
	}
	fdc_used = 0;
}

static uint32_t path_hash(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static struct fdc *fdc_slot(const char *path)
{
	if (fdc_used >= FDC_N / 2)
		fdcache_reset(); /* a crawler walked sysfs: start over rather than grow */
	for (uint32_t i = path_hash(path);; i++) {
		struct fdc *e = &fdc[i % FDC_N];
		if (!e->path) {
			e->path = strdup(path);
			if (!e->path)
				abort();
			fdc_used++;
			return e;
		}
		if (!strcmp(e->path, path))
			return e;
	}
}

/* pread from offset 0 until the end; -errno. `small`: one read is the whole file. */
static ssize_t pread_all(int fd, char **p, size_t *cap, struct buf *grow, int small)
{
	size_t len = 0;
	for (;;) {
		if (grow && *cap - len < 1024) {
			grow->len = len;
			buf_reserve(grow, grow->cap);
			*p = grow->p;
			*cap = grow->cap;
		}
		ssize_t n = pread(fd, *p + len, *cap - len - 1, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += n;
		/* Single-record files (cgroup knobs, sysfs attributes, /proc/meminfo, ...) come
		 * whole in the first read that is shorter than the buffer. Files printed record
		 * by record (cpuinfo, diskstats) can return short reads before the end. */
		if (small && len < *cap - 1)
			break;
		if (!grow && len >= *cap - 1)
			break;
	}
	(*p)[len] = '\0';
	return len;
}

static ssize_t read_path(const char *path, char *dst, size_t cap, struct buf *grow, int small, int cache)
{
	char *p = dst;
	if (grow) {
		buf_reserve(grow, 4096);
		p = grow->p;
		cap = grow->cap;
	}
	p[0] = '\0';
	if (!cache) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		ssize_t n = pread_all(fd, &p, &cap, grow, small);
		close(fd);
		if (grow)
			grow->len = n > 0 ? n : 0;
		return n;
	}
	struct fdc *e = fdc_slot(path);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (e->fd <= 0) {
			e->fd = open(path, O_RDONLY | O_CLOEXEC);
			if (e->fd < 0) {
				int err = errno;
				e->fd = 0;
				return -err;
			}
		}
		ssize_t n = pread_all(e->fd, &p, &cap, grow, small);
		if (n >= 0) {
			if (grow)
				grow->len = n;
			return n;
		}
		close(e->fd);
		e->fd = 0;
	}
	return -EIO;
}

int read_file(const char *path, struct buf *b)
{
	ssize_t n = read_path(path, NULL, 0, b, 0, 1);
	return n < 0 ? (int)n : 0;
}

int read_file_whole(const char *path, struct buf *b)
{
	ssize_t n = read_path(path, NULL, 0, b, 1, 1);
	return n < 0 ? (int)n : 0;
}

int read_file_once(const char *path, struct buf *b)
{
	ssize_t n = read_path(path, NULL, 0, b, 0, 0);
	return n < 0 ? (int)n : 0;
}

ssize_t read_small(const char *path, char *dst, size_t cap)
{
	return read_path(path, dst, cap, NULL, 1, 1);
}

ssize_t read_small_once(const char *path, char *dst, size_t cap)
{
	return read_path(path, dst, cap, NULL, 1, 0);
}

int read_u64(const char *path, u64 *out)
{
	char tmp[64];
	ssize_t n = read_small(path, tmp, sizeof tmp);
	if (n < 0)
		return n;
	const char *s = skip_ws(tmp);
	if (!strncmp(s, "max", 3))
		return -ERANGE;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	*out = strtoull(s, NULL, 10);
	return 0;
}

const char *cgfile(int role, const char *name)
{
	static char p[4][PATH_MAX];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", conf.cg[role], name);
	return p[k];
}

const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	return s;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Sorts and removes duplicates. */
static int ids_normalize(int *ids, int n)
{
	qsort(ids, n, sizeof *ids, cmp_int);
	int k = 0;
	for (int i = 0; i < n; i++)
		if (k == 0 || ids[k - 1] != ids[i])
			ids[k++] = ids[i];
	return k;
}

int cpulist_parse(const char *s, int *ids, int max)
{
	int n = 0;
	while (*s) {
		s = skip_ws(s);
		if (*s < '0' || *s > '9')
			break;
		char *end;
		long a = strtol(s, &end, 10), b = a;
		s = end;
		if (*s == '-') {
			b = strtol(s + 1, &end, 10);
			s = end;
		}
		for (long i = a; i <= b && n < max; i++)
			if (i >= 0 && i < MAXCPU)
				ids[n++] = (int)i;
		if (*s == ',')
			s++;
	}
	return ids_normalize(ids, n);
}

void cpulist_format(struct buf *b, const int *ids, int n)
{
	for (int i = 0; i < n;) {
		int j = i;
		while (j + 1 < n && ids[j + 1] == ids[j] + 1)
			j++;
		if (i)
			buf_add(b, ",", 1);
		if (j > i)
			buf_printf(b, "%d-%d", ids[i], ids[j]);
		else
			buf_printf(b, "%d", ids[i]);
		i = j + 1;
	}
	buf_add(b, "\n", 1);
}

int cpumask_parse(const char *s, int *ids, int max)
{
	/* Collect hex digits (most significant first), ignoring commas. */
	char digits[MAXCPU / 4 + 1];
	int nd = 0;
	for (; *s && *s != '\n'; s++) {
		if (*s == ',')
			continue;
		if (nd < (int)sizeof digits - 1)
			digits[nd++] = *s;
	}
	int n = 0;
	for (int i = 0; i < nd; i++) {
		char c = digits[nd - 1 - i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 0;
		for (int bit = 0; bit < 4; bit++)
			if (v & (1 << bit) && n < max)
				ids[n++] = i * 4 + bit;
	}
	return ids_normalize(ids, n);
}

void cpumask_format(struct buf *b, const int *ids, int n, int nbits)
{
	if (nbits < 1)
		nbits = 1;
	int nwords = (nbits + 31) / 32;
	for (int w = nwords - 1; w >= 0; w--) {
		uint32_t word = 0;
		for (int i = 0; i < n; i++)
			if (ids[i] / 32 == w)
				word |= 1u << (ids[i] % 32);
		int bits = w == nwords - 1 && nbits % 32 ? nbits % 32 : 32;
		int width = (bits + 3) / 4;
		buf_printf(b, w == nwords - 1 ? "%0*x" : ",%0*x", width, word);
	}
	buf_add(b, "\n", 1);
}

double boottime_now(void)
{
	if (conf.fixed_now > 0)
		return conf.fixed_now;
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void vlog(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02dZ vkfs[%d]: %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)getpid(), msg);
}

int conf_sibling(const char *config, const char *name, char *out, size_t cap)
{
	const char *slash = strrchr(config, '/');
	int dl = slash ? (int)(slash - config) : 1;
	int n = snprintf(out, cap, "%.*s/%s", dl, slash ? config : ".", name);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

const void *map_file_ro(const char *path, size_t min, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	void *m = MAP_FAILED;
	if (fstat(fd, &st) == 0 && st.st_size >= (off_t)min)
		m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}
