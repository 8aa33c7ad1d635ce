/*
 * The config file: one "key value" per line, written atomically (rename) by view.ts.
 *
 *   view on|off                cpu_rule cpuset|quota|min
 *   files cpuinfo,meminfo,...  (names as in io.vkernel.files; "all")
 *   syscalls sysinfo,sched_getaffinity   (io.vkernel.syscalls: "all", "none"; read by the agent)
 *   cgroup_mode v1|v2
 *   cg.<role> DIR              root.<role> DIR   roles: cpu cpuacct cpuset memory blkio pids unified
 *   host_proc /proc            host_sys /sys/devices/system
 *   start_time SECONDS         container start, seconds since boot (optional)
 *   start_ticks TICKS          the same in clock ticks (field 22 of /proc/PID/stat)
 *   fixed_now SECONDS          tests only: a fixed CLOCK_BOOTTIME
 *   test_delay_us N            tests only: the worker sleeps after reading each request
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vkfs.h"

struct conf conf;

static const char *const role_names[CG_N] = { "cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "unified" };

static const struct {
	const char *name;
	unsigned flag;
} file_names[] = {
	{ "cpuinfo", F_CPUINFO }, { "meminfo", F_MEMINFO }, { "stat", F_STAT },
	{ "uptime", F_UPTIME }, { "loadavg", F_LOADAVG }, { "swaps", F_SWAPS },
	{ "diskstats", F_DISKSTATS }, { "pressure", F_PRESSURE }, { "sys-cpu", F_SYS_CPU },
	{ "sys-node", F_SYS_NODE }, { "all", F_ALL },
};

static unsigned parse_files(const char *v)
{
	unsigned f = 0;
	char tmp[512];
	snprintf(tmp, sizeof tmp, "%s", v);
	for (char *save, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < sizeof file_names / sizeof *file_names; i++)
			if (!strcmp(t, file_names[i].name))
				f |= file_names[i].flag;
	return f;
}

static unsigned parse_syscalls(const char *v)
{
	unsigned f = 0;
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s", v);
	for (char *save, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "all"))
			f |= SC_ALL;
		else if (!strcmp(t, "sysinfo"))
			f |= SC_SYSINFO;
		else if (!strcmp(t, "sched_getaffinity"))
			f |= SC_SCHED_GETAFFINITY;
	}
	return f; /* "none" (or nothing known): 0 */
}

static int parse(const char *text, struct conf *c)
{
	c->view = 1;
	c->syscalls = SC_ALL;
	c->rule = RULE_MIN;
	c->files = F_ALL;
	strcpy(c->host_proc, "/proc");
	strcpy(c->host_sys, "/sys/devices/system");
	const char *line = text;
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char l[PATH_MAX + 64];
		if (len >= sizeof l)
			return -EINVAL;
		memcpy(l, line, len);
		l[len] = '\0';
		line += len + (nl ? 1 : 0);
		if (!l[0] || l[0] == '#')
			continue;
		char *val = strchr(l, ' ');
		if (!val)
			continue;
		*val++ = '\0';
		if (!strcmp(l, "view"))
			c->view = strcmp(val, "off") != 0;
		else if (!strcmp(l, "cpu_rule"))
			c->rule = !strcmp(val, "cpuset") ? RULE_CPUSET : !strcmp(val, "quota") ? RULE_QUOTA : RULE_MIN;
		else if (!strcmp(l, "files"))
			c->files = parse_files(val);
		else if (!strcmp(l, "syscalls"))
			c->syscalls = parse_syscalls(val);
		else if (!strcmp(l, "cgroup_mode"))
			c->v2 = !strcmp(val, "v2");
		else if (!strcmp(l, "host_proc"))
			snprintf(c->host_proc, sizeof c->host_proc, "%s", val);
		else if (!strcmp(l, "host_sys"))
			snprintf(c->host_sys, sizeof c->host_sys, "%s", val);
		else if (!strcmp(l, "start_time"))
			c->start_time = strtod(val, NULL);
		else if (!strcmp(l, "start_ticks"))
			c->start_time = strtod(val, NULL) / sysconf(_SC_CLK_TCK);
		else if (!strcmp(l, "fixed_now"))
			c->fixed_now = strtod(val, NULL);
		else if (!strcmp(l, "test_delay_us"))
			c->test_delay_us = (unsigned)strtoul(val, NULL, 10);
		else if (!strncmp(l, "cg.", 3) || !strncmp(l, "root.", 5)) {
			int root = l[0] == 'r';
			const char *role = l + (root ? 5 : 3);
			for (int i = 0; i < CG_N; i++)
				if (!strcmp(role, role_names[i]))
					snprintf(root ? c->cgroot[i] : c->cg[i], PATH_MAX, "%s", val);
		}
	}
	return 0;
}

int conf_load(const char *path)
{
	struct buf b = { 0 };
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	int r = read_file_once(path, &b);
	if (r < 0) {
		buf_free(&b);
		return r;
	}
	static struct conf next;
	memset(&next, 0, sizeof next);
	r = parse(b.p, &next);
	buf_free(&b);
	if (r < 0)
		return r;
	fdcache_reset(); /* paths may have changed */
	snprintf(next.path, sizeof next.path, "%s", path);
	next.mtime = st.st_mtim;
	next.ino = st.st_ino;
	next.generation = conf.generation + 1;
	conf = next;
	return 0;
}

int conf_maybe_reload(void)
{
	struct stat st;
	if (!conf.path[0] || stat(conf.path, &st) < 0)
		return 0;
	if (st.st_ino == conf.ino && st.st_mtim.tv_sec == conf.mtime.tv_sec && st.st_mtim.tv_nsec == conf.mtime.tv_nsec) {
		/* A removed cgroup dir that was created again gets a new fd on the next change. */
		return 1;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s", conf.path);
	int r = conf_load(path);
	if (r < 0)
		vlog("config %s: reload failed: %s (keeping the old one)", path, strerror(-r));
	return r == 0;
}

volatile sig_atomic_t conf_reload_due;

void conf_check(void)
{
	static double last;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	double now = ts.tv_sec + ts.tv_nsec / 1e9;
	if (!conf_reload_due && now - last < 1.0)
		return;
	conf_reload_due = 0;
	last = now;
	conf_maybe_reload();
}

int file_virtualized(unsigned f)
{
	return conf.view && (conf.files & f);
}
