/*
 * vktest: the payload that integration tests run inside containers (like crun's
 * tests/init.c). Built static (`make native` -> build/vktest) and placed at /vktest in
 * the test rootfs, so it needs nothing from the image.
 *
 * Usage: vktest COMMAND [ARGS...]
 *
 * Output is machine-parsable: one `key=value` per line, or plain values for commands
 * that report a single thing (hostname, cwd, nproc, ...), or the raw file for
 * `mounts`/`cgroup`/`cat`. Success exits 0. Failure prints `vktest: CMD: message` on
 * stderr and exits 1 (2 for usage errors). Probe commands (`mknod`, `tryopen`, `syscall`) exit 0
 * either way and report the outcome as `errno=N` plus `errname=NAME` (`errno=0` and
 * `errname=OK` on success); `syscall` also prints `ret=N` first.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *cmd = "vktest";

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "vktest: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fprintf(stderr,
		"usage: vktest COMMAND [ARGS...]\n"
		"commands: caps mounts cgroup rlimits ids fds sysinfo nproc hostname domainname\n"
		"  cwd env cat FILE | write FILE TEXT | ls DIR | stat PATH | isatty | winsize\n"
		"  oom_score_adj | ns | pid | sysctl KEY | mknod PATH | memhog MIB | forkbomb N | hugetlb N (2 MiB pages)\n"
		"  readdirect FILE (O_DIRECT read: bytes, ms) | rtfifo (SCHED_FIFO allowed?)\n"
		"  loop sysinfo|getpid|read COUNT (failures, median/p99 ns; read: 1 byte of /dev/zero)\n"
		"  spin SECONDS | sleep SECONDS | exit N | kill SIG | echo ARGS... | readfd N\n"
		"  tryopen PATH FLAGS (FLAGS: r w rw, plus c=creat x=excl t=trunc a=append\n"
		"  d=directory p=path n=nofollow)\n"
		"  syscall NR [ARG...] (up to 6 args: integers, or s:TEXT for a pointer to TEXT)\n");
	exit(2);
}

static long parse_long(const char *s)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0')
		fail("not an integer: %s", s);
	return v;
}

static double parse_seconds(const char *s)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *s == '\0' || *end != '\0' || v < 0)
		fail("not a number of seconds: %s", s);
	return v;
}

/* Prints errno=N and errname=NAME for probe commands (err 0 means success). */
static void report_errno(int err)
{
	const char *name = err ? strerrorname_np(err) : "OK";
	printf("errno=%d\nerrname=%s\n", err, name ? name : "UNKNOWN");
}

static void copy_fd(int fd, const char *what)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("read %s: %s", what, strerror(errno));
		}
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			fail("write stdout: %s", strerror(errno));
	}
}

static void cat_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	copy_fd(fd, path);
	close(fd);
}

/* Reads a small file into buf, without the trailing newline. */
static void read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	n = read(fd, buf, size - 1);
	if (n < 0)
		fail("read %s: %s", path, strerror(errno));
	close(fd);
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
}

static int cmd_caps(void)
{
	static const char *keys[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
				      "NoNewPrivs", "Seccomp" };
	char line[512];
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		fail("open /proc/self/status: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':'), *val;
		size_t i;
		if (!colon)
			continue;
		*colon = '\0';
		for (val = colon + 1; *val == ' ' || *val == '\t'; val++)
			;
		val[strcspn(val, "\n")] = '\0';
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(line, keys[i]) == 0)
				printf("%s=%s\n", line, val);
	}
	fclose(f);
	return 0;
}

static int cmd_rlimits(void)
{
	static const struct {
		const char *name;
		int resource;
	} limits[] = {
		{ "RLIMIT_CPU", RLIMIT_CPU },		{ "RLIMIT_FSIZE", RLIMIT_FSIZE },
		{ "RLIMIT_DATA", RLIMIT_DATA },		{ "RLIMIT_STACK", RLIMIT_STACK },
		{ "RLIMIT_CORE", RLIMIT_CORE },		{ "RLIMIT_RSS", RLIMIT_RSS },
		{ "RLIMIT_NPROC", RLIMIT_NPROC },	{ "RLIMIT_NOFILE", RLIMIT_NOFILE },
		{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },	{ "RLIMIT_AS", RLIMIT_AS },
		{ "RLIMIT_LOCKS", RLIMIT_LOCKS },	{ "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
		{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
		{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO },	{ "RLIMIT_RTTIME", RLIMIT_RTTIME },
	};
	size_t i;
	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct rlimit rl;
		char soft[32], hard[32];
		if (getrlimit(limits[i].resource, &rl) < 0)
			fail("getrlimit %s: %s", limits[i].name, strerror(errno));
		if (rl.rlim_cur == RLIM_INFINITY)
			strcpy(soft, "unlimited");
		else
			snprintf(soft, sizeof(soft), "%llu", (unsigned long long)rl.rlim_cur);
		if (rl.rlim_max == RLIM_INFINITY)
			strcpy(hard, "unlimited");
		else
			snprintf(hard, sizeof(hard), "%llu", (unsigned long long)rl.rlim_max);
		printf("%s=%s:%s\n", limits[i].name, soft, hard);
	}
	return 0;
}

static int cmd_ids(void)
{
	gid_t groups[NGROUPS_MAX];
	int n = getgroups(NGROUPS_MAX, groups), i;
	mode_t mask = umask(0);
	umask(mask);
	if (n < 0)
		fail("getgroups: %s", strerror(errno));
	printf("uid=%u\ngid=%u\neuid=%u\negid=%u\ngroups=", (unsigned)getuid(), (unsigned)getgid(),
	       (unsigned)geteuid(), (unsigned)getegid());
	for (i = 0; i < n; i++)
		printf("%s%u", i ? "," : "", (unsigned)groups[i]);
	printf("\numask=%04o\n", (unsigned)mask);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_num(const void *a, const void *b)
{
	return atoi(*(char *const *)a) - atoi(*(char *const *)b);
}

/* Calls fn for each entry of dir except . and .., sorted by name (or numerically). The
 * directory is closed before fn runs, so listing /proc/self/fd does not show its own fd
 * (readlink on it fails and print_fd skips it). */
static void for_each_sorted(const char *dir, int numeric, void (*fn)(const char *name))
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	if (!d)
		fail("opendir %s: %s", dir, strerror(errno));
	while ((errno = 0, e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				fail("out of memory");
		}
		if (!(names[n++] = strdup(e->d_name)))
			fail("out of memory");
	}
	if (errno)
		fail("readdir %s: %s", dir, strerror(errno));
	closedir(d);
	qsort(names, n, sizeof(*names), numeric ? cmp_num : cmp_str);
	for (i = 0; i < n; i++) {
		fn(names[i]);
		free(names[i]);
	}
	free(names);
}

static void print_fd(const char *name)
{
	char path[64], target[PATH_MAX];
	ssize_t len;
	snprintf(path, sizeof(path), "/proc/self/fd/%s", name);
	len = readlink(path, target, sizeof(target) - 1);
	if (len < 0)
		return; /* closed meanwhile */
	target[len] = '\0';
	printf("%s=%s\n", name, target);
}

static int cmd_sysinfo(void)
{
	struct sysinfo si;
	unsigned long long unit;
	if (sysinfo(&si) < 0)
		fail("sysinfo: %s", strerror(errno));
	unit = si.mem_unit ? si.mem_unit : 1;
	printf("totalram=%llu\nfreeram=%llu\nsharedram=%llu\nbufferram=%llu\n",
	       si.totalram * unit, si.freeram * unit, si.sharedram * unit, si.bufferram * unit);
	printf("totalswap=%llu\nfreeswap=%llu\nprocs=%u\nuptime=%ld\n", si.totalswap * unit,
	       si.freeswap * unit, (unsigned)si.procs, (long)si.uptime);
	printf("loads=%.2f,%.2f,%.2f\n", si.loads[0] / 65536.0, si.loads[1] / 65536.0,
	       si.loads[2] / 65536.0);
	printf("loads_raw=%lu,%lu,%lu\n", (unsigned long)si.loads[0], (unsigned long)si.loads[1],
	       (unsigned long)si.loads[2]);
	return 0;
}

static int cmd_nproc(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		fail("sched_getaffinity: %s", strerror(errno));
	printf("%d\n", CPU_COUNT(&set));
	return 0;
}

/* COUNT calls of sysinfo (or getpid with "getpid"): failures, then median and p99 in ns. */
static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

static int cmd_loop(const char *what, long n)
{
	struct sysinfo si;
	struct timespec t0, t1;
	long fails = 0, *ns;
	unsigned long long ram = 0;
	if (n <= 0 || !(ns = calloc((size_t)(n > 100 ? n : 100), sizeof *ns)))
		fail("bad count");
	if (strcmp(what, "getpid") == 0 || strcmp(what, "read") == 0) {
		/* Too short to time one by one: 100 batches, per-call time of each batch.
		 * read: 1 byte from /dev/zero (a hot syscall with an fd and a copy-out). */
		long batch = n / 100 > 0 ? n / 100 : 1;
		int rd = strcmp(what, "read") == 0, fd = rd ? open("/dev/zero", O_RDONLY | O_CLOEXEC) : -1;
		char byte;
		if (rd && fd < 0)
			fail("open /dev/zero: %s", strerror(errno));
		for (long b = 0; b < 100; b++) {
			clock_gettime(CLOCK_MONOTONIC, &t0);
			if (rd)
				for (long i = 0; i < batch; i++)
					syscall(SYS_read, fd, &byte, 1);
			else
				for (long i = 0; i < batch; i++)
					syscall(SYS_getpid);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			ns[b] = ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec)) / batch;
		}
		qsort(ns, 100, sizeof *ns, cmp_long);
		printf("calls=%ld\nfailures=0\nmedian_ns=%ld\np99_ns=%ld\n", batch * 100, ns[50], ns[99]);
		if (fd >= 0)
			close(fd);
		free(ns);
		return 0;
	}
	for (long i = 0; i < n; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (syscall(SYS_sysinfo, &si) < 0)
			fails++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns[i] = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
		ram = si.totalram * (unsigned long long)(si.mem_unit ? si.mem_unit : 1);
	}
	qsort(ns, (size_t)n, sizeof *ns, cmp_long);
	printf("calls=%ld\nfailures=%ld\nmedian_ns=%ld\np99_ns=%ld\ntotalram=%llu\n", n, fails, ns[n / 2],
	       ns[(n * 99) / 100], ram);
	free(ns);
	return 0;
}

static int cmd_uname(int domain)
{
	struct utsname u;
	if (uname(&u) < 0)
		fail("uname: %s", strerror(errno));
	printf("%s\n", domain ? u.domainname : u.nodename);
	return 0;
}

static int cmd_cwd(void)
{
	char buf[PATH_MAX];
	if (!getcwd(buf, sizeof(buf)))
		fail("getcwd: %s", strerror(errno));
	printf("%s\n", buf);
	return 0;
}

static int cmd_env(void)
{
	char **e;
	for (e = environ; *e; e++)
		printf("%s\n", *e);
	return 0;
}

static int cmd_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text);
	if (fd < 0)
		fail("open %s: %s", path, strerror(errno));
	if (write(fd, text, len) != (ssize_t)len)
		fail("write %s: %s", path, strerror(errno));
	if (close(fd) < 0)
		fail("close %s: %s", path, strerror(errno));
	return 0;
}

static void print_name(const char *name)
{
	printf("%s\n", name);
}

static int cmd_stat(const char *path)
{
	struct stat st;
	const char *type;
	if (lstat(path, &st) < 0)
		fail("lstat %s: %s", path, strerror(errno));
	switch (st.st_mode & S_IFMT) {
	case S_IFREG: type = "file"; break;
	case S_IFDIR: type = "dir"; break;
	case S_IFLNK: type = "symlink"; break;
	case S_IFCHR: type = "char"; break;
	case S_IFBLK: type = "block"; break;
	case S_IFIFO: type = "fifo"; break;
	case S_IFSOCK: type = "socket"; break;
	default: type = "unknown"; break;
	}
	printf("type=%s\nmode=%04o\n", type, (unsigned)(st.st_mode & 07777));
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
		printf("rdev=%u:%u\n", major(st.st_rdev), minor(st.st_rdev));
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t len = readlink(path, target, sizeof(target) - 1);
		if (len >= 0) {
			target[len] = '\0';
			printf("target=%s\n", target);
		}
	}
	printf("uid=%u\ngid=%u\nsize=%lld\n", (unsigned)st.st_uid, (unsigned)st.st_gid,
	       (long long)st.st_size);
	return 0;
}

static int cmd_isatty(void)
{
	int fd;
	for (fd = 0; fd <= 2; fd++)
		printf("%d=%d\n", fd, isatty(fd) ? 1 : 0);
	return 0;
}

static int cmd_winsize(void)
{
	struct winsize ws;
	int fd;
	for (fd = 0; fd <= 2; fd++)
		if (ioctl(fd, TIOCGWINSZ, &ws) == 0)
			break;
	if (fd > 2)
		fail("TIOCGWINSZ on fds 0-2: %s", strerror(errno));
	printf("rows=%u\ncols=%u\n", ws.ws_row, ws.ws_col);
	return 0;
}

static int cmd_oom_score_adj(void)
{
	char buf[64];
	read_small("/proc/self/oom_score_adj", buf, sizeof(buf));
	printf("%s\n", buf);
	return 0;
}

static void print_ns(const char *name)
{
	char path[128], target[256];
	ssize_t len;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	len = readlink(path, target, sizeof(target) - 1);
	if (len < 0)
		return;
	target[len] = '\0';
	printf("%s=%s\n", name, target);
}

static int cmd_sysctl(const char *key)
{
	char path[PATH_MAX], buf[4096];
	size_t i, off;
	/* Accept both net.ipv4.ip_forward and net/ipv4/ip_forward. */
	off = (size_t)snprintf(path, sizeof(path), "/proc/sys/");
	for (i = 0; key[i] && off < sizeof(path) - 1; i++)
		path[off++] = (key[i] == '.' && !strchr(key, '/')) ? '/' : key[i];
	path[off] = '\0';
	read_small(path, buf, sizeof(buf));
	printf("%s\n", buf);
	return 0;
}

static int cmd_mknod(const char *path)
{
	/* A char device like /dev/null (1:3). */
	int rc = mknod(path, S_IFCHR | 0666, makedev(1, 3));
	report_errno(rc < 0 ? errno : 0);
	return 0;
}

static int cmd_memhog(const char *arg)
{
	long mib = parse_long(arg), i;
	long page = sysconf(_SC_PAGESIZE);
	for (i = 0; i < mib; i++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		long off;
		if (p == MAP_FAILED) {
			printf("allocated_mib=%ld\n", i);
			fail("mmap after %ld MiB: %s", i, strerror(errno));
		}
		for (off = 0; off < (1 << 20); off += page)
			p[off] = 1;
	}
	printf("allocated_mib=%ld\n", mib);
	return 0;
}

static int cmd_forkbomb(const char *arg)
{
	long want = parse_long(arg), forked = 0;
	int gate[2], first_err = 0;
	char c;
	/* Children block reading the gate until the parent closes its write end. */
	if (pipe(gate) < 0)
		fail("pipe: %s", strerror(errno));
	while (forked < want) {
		pid_t pid = fork();
		if (pid < 0) {
			first_err = errno;
			break;
		}
		if (pid == 0) {
			close(gate[1]);
			while (read(gate[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		forked++;
	}
	close(gate[1]);
	close(gate[0]);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	printf("forked=%ld\n", forked);
	report_errno(first_err);
	return 0;
}

static double now(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* N huge pages (2 MiB) mapped and touched one by one, printing each: the hugetlb limit
 * ends it with SIGBUS at the page that would exceed it. */
static int cmd_hugetlb(const char *arg)
{
	long n = parse_long(arg);
	const size_t huge = 2UL << 20;
	if (n <= 0)
		fail("bad count");
	char *p = mmap(NULL, (size_t)n * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p == MAP_FAILED)
		fail("mmap MAP_HUGETLB: %s", strerror(errno));
	for (long i = 0; i < n; i++) {
		p[(size_t)i * huge] = 1;
		printf("touched=%ld\n", i + 1);
		fflush(stdout);
	}
	return 0;
}

/* FILE read with O_DIRECT (past the page cache, to the device) in 64 KiB blocks: bytes and ms. */
static int cmd_readdirect(const char *file)
{
	int fd = open(file, O_RDONLY | O_DIRECT | O_CLOEXEC);
	void *buf;
	long total = 0;
	ssize_t n;
	if (fd < 0)
		fail("open %s: %s", file, strerror(errno));
	if (posix_memalign(&buf, 4096, 65536))
		fail("posix_memalign");
	double start = now(CLOCK_MONOTONIC);
	while ((n = read(fd, buf, 65536)) > 0)
		total += n;
	if (n < 0)
		fail("read %s: %s", file, strerror(errno));
	printf("bytes=%ld\nms=%.0f\n", total, (now(CLOCK_MONOTONIC) - start) * 1000);
	free(buf);
	close(fd);
	return 0;
}

/* sched_setscheduler(0, SCHED_FIFO, 1): "fifo=ok" or "fifo=<errno name>" (the cgroup's
 * real-time runtime decides it under RT group scheduling). */
static int cmd_rtfifo(void)
{
	struct sched_param sp = { .sched_priority = 1 };
	if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0)
		printf("fifo=ok\n");
	else
		printf("fifo=%s\n", errno == EPERM ? "EPERM" : strerror(errno));
	return 0;
}

static int cmd_spin(const char *arg)
{
	double secs = parse_seconds(arg), start = now(CLOCK_MONOTONIC);
	volatile unsigned long x = 0;
	while (now(CLOCK_MONOTONIC) - start < secs) {
		unsigned i;
		for (i = 0; i < 100000; i++)
			x += i;
	}
	/* CPU time actually received: lower than wall time when throttled. */
	printf("wall_ms=%.0f\ncpu_ms=%.0f\n", (now(CLOCK_MONOTONIC) - start) * 1000,
	       now(CLOCK_PROCESS_CPUTIME_ID) * 1000);
	return 0;
}

static int cmd_sleep(const char *arg)
{
	double secs = parse_seconds(arg);
	struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
	while (nanosleep(&ts, &ts) < 0)
		if (errno != EINTR)
			fail("nanosleep: %s", strerror(errno));
	return 0;
}

static int parse_signal(const char *s)
{
	int sig;
	if (isdigit((unsigned char)*s))
		return (int)parse_long(s);
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (sig = 1; sig < NSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);
		if (abbrev && strcasecmp(abbrev, s) == 0)
			return sig;
	}
	fail("unknown signal: %s", s);
}

static int cmd_kill(const char *arg)
{
	int sig = parse_signal(arg);
	fflush(stdout);
	if (raise(sig) != 0)
		fail("raise %d: %s", sig, strerror(errno));
	/* Still here: the signal is ignored, handled by default as non-fatal, or we are a
	 * namespace's pid 1 (which the kernel protects from its own default actions). */
	fail("still alive after signal %d", sig);
}

static int cmd_echo(int argc, char **argv)
{
	int i;
	for (i = 0; i < argc; i++)
		printf("%s%s", i ? " " : "", argv[i]);
	printf("\n");
	return 0;
}

static int cmd_readfd(const char *arg)
{
	int fd = (int)parse_long(arg);
	if (fcntl(fd, F_GETFD) < 0)
		fail("fd %d: %s", fd, strerror(errno));
	copy_fd(fd, arg);
	return 0;
}

static int cmd_tryopen(const char *path, const char *spec)
{
	int flags = 0, fd;
	int r = strchr(spec, 'r') != NULL, w = strchr(spec, 'w') != NULL;
	const char *p;
	flags = r && w ? O_RDWR : w ? O_WRONLY : O_RDONLY;
	for (p = spec; *p; p++) {
		switch (*p) {
		case 'r': case 'w': break;
		case 'c': flags |= O_CREAT; break;
		case 'x': flags |= O_EXCL; break;
		case 't': flags |= O_TRUNC; break;
		case 'a': flags |= O_APPEND; break;
		case 'd': flags |= O_DIRECTORY; break;
		case 'p': flags |= O_PATH; break;
		case 'n': flags |= O_NOFOLLOW; break;
		default: fail("unknown flag '%c' in %s", *p, spec);
		}
	}
	fd = open(path, flags | O_CLOEXEC | O_NONBLOCK, 0644);
	report_errno(fd < 0 ? errno : 0);
	if (fd >= 0)
		close(fd);
	return 0;
}

/*
 * Raw syscall(NR, ARGS...): prints ret=N and the errno probe lines. An argument is an
 * integer (strtol base 0: 0x.. and negative values work) or s:TEXT, passed as a pointer to
 * the string TEXT. Missing arguments are 0.
 */
static int cmd_syscall(int argc, char **argv)
{
	long nr, a[6] = {0}, ret;
	int i, err;
	if (argc < 1 || argc > 7)
		usage();
	nr = parse_long(argv[0]);
	for (i = 1; i < argc; i++)
		a[i - 1] = strncmp(argv[i], "s:", 2) == 0 ? (long)(argv[i] + 2) : parse_long(argv[i]);
	errno = 0;
	ret = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	err = ret == -1 ? errno : 0;
	printf("ret=%ld\n", ret);
	report_errno(err);
	return 0;
}

/* Checks the argument count: exactly `n` arguments after the command. */
static void want_args(int argc, int n)
{
	if (argc - 2 != n)
		usage();
}

int main(int argc, char **argv)
{
	int rc;
	if (argc < 2)
		usage();
	cmd = argv[1];

	if (strcmp(cmd, "echo") == 0)
		rc = cmd_echo(argc - 2, argv + 2);
	else if (strcmp(cmd, "caps") == 0 && argc == 2)
		rc = cmd_caps();
	else if (strcmp(cmd, "mounts") == 0 && argc == 2)
		cat_file("/proc/self/mountinfo"), rc = 0;
	else if (strcmp(cmd, "cgroup") == 0 && argc == 2)
		cat_file("/proc/self/cgroup"), rc = 0;
	else if (strcmp(cmd, "rlimits") == 0 && argc == 2)
		rc = cmd_rlimits();
	else if (strcmp(cmd, "ids") == 0 && argc == 2)
		rc = cmd_ids();
	else if (strcmp(cmd, "fds") == 0 && argc == 2)
		for_each_sorted("/proc/self/fd", 1, print_fd), rc = 0;
	else if (strcmp(cmd, "sysinfo") == 0 && argc == 2)
		rc = cmd_sysinfo();
	else if (strcmp(cmd, "loop") == 0 && argc == 4)
		return cmd_loop(argv[2], parse_long(argv[3]));
	else if (strcmp(cmd, "nproc") == 0 && argc == 2)
		rc = cmd_nproc();
	else if (strcmp(cmd, "hostname") == 0 && argc == 2)
		rc = cmd_uname(0);
	else if (strcmp(cmd, "domainname") == 0 && argc == 2)
		rc = cmd_uname(1);
	else if (strcmp(cmd, "cwd") == 0 && argc == 2)
		rc = cmd_cwd();
	else if (strcmp(cmd, "env") == 0 && argc == 2)
		rc = cmd_env();
	else if (strcmp(cmd, "cat") == 0)
		want_args(argc, 1), cat_file(argv[2]), rc = 0;
	else if (strcmp(cmd, "write") == 0)
		want_args(argc, 2), rc = cmd_write(argv[2], argv[3]);
	else if (strcmp(cmd, "ls") == 0)
		want_args(argc, 1), for_each_sorted(argv[2], 0, print_name), rc = 0;
	else if (strcmp(cmd, "stat") == 0)
		want_args(argc, 1), rc = cmd_stat(argv[2]);
	else if (strcmp(cmd, "isatty") == 0 && argc == 2)
		rc = cmd_isatty();
	else if (strcmp(cmd, "winsize") == 0 && argc == 2)
		rc = cmd_winsize();
	else if (strcmp(cmd, "oom_score_adj") == 0 && argc == 2)
		rc = cmd_oom_score_adj();
	else if (strcmp(cmd, "ns") == 0 && argc == 2)
		for_each_sorted("/proc/self/ns", 0, print_ns), rc = 0;
	else if (strcmp(cmd, "pid") == 0 && argc == 2)
		printf("pid=%d\nppid=%d\n", (int)getpid(), (int)getppid()), rc = 0;
	else if (strcmp(cmd, "sysctl") == 0)
		want_args(argc, 1), rc = cmd_sysctl(argv[2]);
	else if (strcmp(cmd, "mknod") == 0)
		want_args(argc, 1), rc = cmd_mknod(argv[2]);
	else if (strcmp(cmd, "memhog") == 0)
		want_args(argc, 1), rc = cmd_memhog(argv[2]);
	else if (strcmp(cmd, "forkbomb") == 0)
		want_args(argc, 1), rc = cmd_forkbomb(argv[2]);
	else if (strcmp(cmd, "spin") == 0)
		want_args(argc, 1), rc = cmd_spin(argv[2]);
	else if (strcmp(cmd, "hugetlb") == 0)
		want_args(argc, 1), rc = cmd_hugetlb(argv[2]);
	else if (strcmp(cmd, "rtfifo") == 0 && argc == 2)
		rc = cmd_rtfifo();
	else if (strcmp(cmd, "readdirect") == 0)
		want_args(argc, 1), rc = cmd_readdirect(argv[2]);
	else if (strcmp(cmd, "sleep") == 0)
		want_args(argc, 1), rc = cmd_sleep(argv[2]);
	else if (strcmp(cmd, "exit") == 0)
		want_args(argc, 1), rc = (int)parse_long(argv[2]);
	else if (strcmp(cmd, "kill") == 0)
		want_args(argc, 1), rc = cmd_kill(argv[2]);
	else if (strcmp(cmd, "readfd") == 0)
		want_args(argc, 1), rc = cmd_readfd(argv[2]);
	else if (strcmp(cmd, "tryopen") == 0)
		want_args(argc, 2), rc = cmd_tryopen(argv[2], argv[3]);
	else if (strcmp(cmd, "syscall") == 0)
		rc = cmd_syscall(argc - 2, argv + 2);
	else
		usage();

	if (fflush(stdout) != 0)
		fail("write stdout: %s", strerror(errno));
	return rc;
}
