/*
 * libvkpreload: the LD_PRELOAD fallback of the vkernel syscall layer, for when neither a
 * seccomp listener nor ptrace can be had. Dynamic glibc binaries only: static binaries,
 * raw syscall(2) users and libc-internal callers (sysconf) bypass it.
 *
 * The runtime bind-mounts this file read-only at /.vkernel/libvkpreload.so and puts it
 * first in the workload's LD_PRELOAD. It answers from the container's view files, which
 * the file view (vkfs, or its snapshot files) serves inside the container, so the rules
 * are the view's (docs/vkernel-view.md) and files and calls agree:
 *
 *   sysinfo()            the real call, then RAM, shared, buffers and swap from
 *                        /proc/meminfo, uptime from /proc/uptime, loads and the task
 *                        count from /proc/loadavg; mem_unit 1
 *   sched_getaffinity(0, the caller's pid or tid)   the real mask with only its first N
 *   pthread_getaffinity_np (the calling thread)      set CPUs kept, N = the number of CPUs
 *                        in /sys/devices/system/cpu/online
 *   get_nprocs()         N;  get_nprocs_conf(): the count of .../cpu/possible
 *
 * VKPRELOAD_SYSCALLS (set by the runtime from io.vkernel.syscalls at create: "all", "none"
 * or a comma list of sysinfo, sched_getaffinity) leaves the calls it does not name real;
 * get_nprocs* read the view's files whatever it says, as sysconf() does. It is set at
 * create: live changes of io.vkernel.syscalls do not reach a preloaded process.
 *
 * A file that cannot be read or parsed leaves the real value in place. File contents are
 * reused for 100 ms (each read is a FUSE round trip, ~100 us): limits changed by `update`
 * show up within that, as with the agent's cache.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static ssize_t slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap - 1)
			break;
	}
	close(fd);
	buf[n] = '\0';
	return (ssize_t)n;
}

#define CACHE_NS 100000000LL
static const char *const cached_files[] = { "/proc/meminfo", "/proc/uptime", "/proc/loadavg",
					    "/sys/devices/system/cpu/online", "/sys/devices/system/cpu/possible" };
#define NCACHED (sizeof cached_files / sizeof *cached_files)
static struct {
	long long at; /* CLOCK_MONOTONIC ns of the read; 0: none */
	ssize_t n;
	char text[8192];
} cache[NCACHED];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* slurp() through the 100 ms cache. Uncached when another thread holds the cache (never
 * waits: a fork from a thread that held it must not deadlock the child). */
static ssize_t view_file(const char *path, char *buf, size_t cap)
{
	size_t i = 0;
	while (i < NCACHED && strcmp(cached_files[i], path))
		i++;
	if (i == NCACHED || pthread_mutex_trylock(&cache_lock) != 0)
		return slurp(path, buf, cap);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	if (!cache[i].at || now - cache[i].at >= CACHE_NS) {
		cache[i].n = slurp(path, cache[i].text, sizeof cache[i].text);
		cache[i].at = cache[i].n > 0 ? now : 0;
	}
	ssize_t n = cache[i].n;
	if (n > 0) {
		if ((size_t)n >= cap)
			n = (ssize_t)cap - 1;
		memcpy(buf, cache[i].text, (size_t)n);
		buf[n] = '\0';
	}
	pthread_mutex_unlock(&cache_lock);
	return n;
}

/* CPUs in a list like "0-3,5"; -1 when unreadable. */
static int cpu_count(const char *path)
{
	char b[4096];
	if (view_file(path, b, sizeof b) <= 0)
		return -1;
	int n = 0;
	for (char *p = b; *p && *p != '\n';) {
		char *e;
		long lo = strtol(p, &e, 10), hi = lo;
		if (e == p)
			return -1;
		if (*e == '-')
			hi = strtol(e + 1, &e, 10);
		if (hi < lo)
			return -1;
		n += (int)(hi - lo + 1);
		p = *e == ',' ? e + 1 : e;
	}
	return n > 0 ? n : -1;
}

/* A "Key:   N kB" line of meminfo text, in bytes; 0 when absent. */
static int meminfo_bytes(const char *text, const char *key, unsigned long *out)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, key, kl) && p[kl] == ':') {
			*out = strtoul(p + kl + 1, NULL, 10) * 1024UL;
			return 1;
		}
	}
	return 0;
}

static void trim_mask(unsigned char *mask, long bytes)
{
	int n = cpu_count("/sys/devices/system/cpu/online"), seen = 0;
	if (n <= 0)
		return;
	for (long b = 0; b < bytes * 8; b++)
		if ((mask[b / 8] & (1u << (b % 8))) && seen++ >= n)
			mask[b / 8] &= (unsigned char)~(1u << (b % 8));
}

/* Whether io.vkernel.syscalls (VKPRELOAD_SYSCALLS) names `name`; unset means all. */
static int virtualized(const char *name)
{
	const char *v = getenv("VKPRELOAD_SYSCALLS");
	if (!v || !strcmp(v, "all"))
		return 1;
	size_t l = strlen(name);
	for (const char *p = v; (p = strstr(p, name)); p += l)
		if ((p == v || p[-1] == ',') && (p[l] == '\0' || p[l] == ','))
			return 1;
	return 0;
}

EXPORT int sysinfo(struct sysinfo *info)
{
	if (syscall(SYS_sysinfo, info) < 0)
		return -1;
	if (!virtualized("sysinfo"))
		return 0;
	char b[8192];
	unsigned long v, unit = info->mem_unit ? info->mem_unit : 1;
	if (view_file("/proc/meminfo", b, sizeof b) > 0 && meminfo_bytes(b, "MemTotal", &v)) {
		info->totalram = v;
		info->freeram = meminfo_bytes(b, "MemFree", &v) ? v : info->freeram * unit;
		info->sharedram = meminfo_bytes(b, "Shmem", &v) ? v : info->sharedram * unit;
		info->bufferram = meminfo_bytes(b, "Buffers", &v) ? v : info->bufferram * unit;
		info->totalswap = meminfo_bytes(b, "SwapTotal", &v) ? v : info->totalswap * unit;
		info->freeswap = meminfo_bytes(b, "SwapFree", &v) ? v : info->freeswap * unit;
		info->totalhigh = info->freehigh = 0;
		info->mem_unit = 1;
	}
	if (view_file("/proc/uptime", b, sizeof b) > 0)
		info->uptime = strtol(b, NULL, 10);
	if (view_file("/proc/loadavg", b, sizeof b) > 0) {
		char *p = b, *e;
		for (int k = 0; k < 3; k++, p = e) {
			double l = strtod(p, &e);
			if (e == p)
				break;
			info->loads[k] = (unsigned long)(l * (1 << SI_LOAD_SHIFT) + 0.5);
		}
		char *slash = strchr(b, '/');
		if (slash && atoi(slash + 1) > 0)
			info->procs = (unsigned short)(atoi(slash + 1) > 65535 ? 65535 : atoi(slash + 1));
	}
	return 0;
}

/* glibc's wrapper: the kernel writes `r` bytes, the rest of the caller's set is zeroed. */
EXPORT int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set)
{
	long r = syscall(SYS_sched_getaffinity, pid, size > 0x7fffffff ? 0x7fffffff : size, set);
	if (r < 0)
		return -1;
	if ((pid == 0 || pid == getpid() || pid == (pid_t)syscall(SYS_gettid)) && virtualized("sched_getaffinity"))
		trim_mask((unsigned char *)set, r);
	memset((char *)set + r, 0, size - (size_t)r);
	return 0;
}

EXPORT int pthread_getaffinity_np(pthread_t th, size_t size, cpu_set_t *set)
{
	static int (*real)(pthread_t, size_t, cpu_set_t *);
	if (!real)
		real = (int (*)(pthread_t, size_t, cpu_set_t *))dlsym(RTLD_NEXT, "pthread_getaffinity_np");
	if (!real)
		return ENOSYS;
	int e = real(th, size, set);
	if (e == 0 && pthread_equal(th, pthread_self()) && virtualized("sched_getaffinity"))
		trim_mask((unsigned char *)set, (long)size);
	return e;
}

EXPORT int get_nprocs(void)
{
	int n = cpu_count("/sys/devices/system/cpu/online");
	if (n > 0)
		return n;
	int (*real)(void) = (int (*)(void))dlsym(RTLD_NEXT, "get_nprocs");
	return real ? real() : 1;
}

EXPORT int get_nprocs_conf(void)
{
	int n = cpu_count("/sys/devices/system/cpu/possible");
	if (n > 0)
		return n;
	int (*real)(void) = (int (*)(void))dlsym(RTLD_NEXT, "get_nprocs_conf");
	return real ? real() : get_nprocs();
}
