/*
 * Facts from the container's cgroup, read at request time (v1 and v2 file names):
 * visible CPUs, memory, CPU times, start time, task states for loadavg.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vkfs.h"

#define UNLIMITED (~0ULL)
/* v1 reports "unlimited" as 2^63 rounded down to a page; anything this big is no limit. */
#define HUGE_LIMIT (1ULL << 62)

static unsigned request_stamp = 1, cpus_stamp;

void facts_reset(void)
{
	request_stamp++;
}

/* The parent directory of dir, in place; 0 when dir is at (or above) the hierarchy root. */
static int walk_up(char *dir, const char *root)
{
	size_t rl = strlen(root);
	if (!root[0] || strlen(dir) <= rl)
		return 0;
	char *slash = strrchr(dir, '/');
	if (!slash || (size_t)(slash - dir) < rl)
		return 0;
	*slash = '\0';
	return 1;
}

/* v1 cfs_quota/period or v2 cpu.max in one directory: ceil(quota/period), -1 for none. */
static long quota_in(const char *dir)
{
	char p[PATH_MAX + 32], tmp[64];
	if (conf.v2) {
		snprintf(p, sizeof p, "%s/cpu.max", dir);
		if (read_small(p, tmp, sizeof tmp) <= 0 || !strncmp(tmp, "max", 3))
			return -1;
		u64 q = 0, per = 0;
		if (sscanf(tmp, "%llu %llu", &q, &per) != 2 || !q || !per)
			return -1;
		return (long)((q + per - 1) / per);
	}
	snprintf(p, sizeof p, "%s/cpu.cfs_quota_us", dir);
	if (read_small(p, tmp, sizeof tmp) <= 0)
		return -1;
	long long q = strtoll(tmp, NULL, 10);
	if (q <= 0)
		return -1;
	snprintf(p, sizeof p, "%s/cpu.cfs_period_us", dir);
	if (read_small(p, tmp, sizeof tmp) <= 0)
		return -1;
	long long per = strtoll(tmp, NULL, 10);
	if (per <= 0)
		return -1;
	return (long)((q + per - 1) / per);
}

static long quota_cpus(void)
{
	if (!conf.cg[CG_CPU][0])
		return -1;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", conf.cg[CG_CPU]);
	long best = -1;
	do {
		long q = quota_in(dir);
		if (q > 0 && (best < 0 || q < best))
			best = q;
	} while (walk_up(dir, conf.cgroot[CG_CPU]));
	return best;
}

const struct cpus *cpus_get(void)
{
	static struct cpus c;
	static char tmp[MAXCPU * 6];
	if (cpus_stamp == request_stamp)
		return &c;
	cpus_stamp = request_stamp;

	/* The effective cpuset only holds online CPUs (the kernel removes offline ones). */
	c.nset = 0;
	if (HAVE_CG(CG_CPUSET)) {
		const char *eff = conf.v2 ? "cpuset.cpus.effective" : "cpuset.effective_cpus";
		if (read_small(cgfile(CG_CPUSET, eff), tmp, sizeof tmp) <= 0 || !*skip_ws(tmp))
			read_small(cgfile(CG_CPUSET, "cpuset.cpus"), tmp, sizeof tmp);
		c.nset = cpulist_parse(tmp, c.set, MAXCPU);
	}
	if (!c.nset) {
		char p[PATH_MAX + 32];
		snprintf(p, sizeof p, "%s/cpu/online", conf.host_sys);
		c.nset = read_small(p, tmp, sizeof tmp) > 0 ? cpulist_parse(tmp, c.set, MAXCPU) : 0;
	}
	if (!c.nset) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		for (c.nset = 0; c.nset < n && c.nset < MAXCPU; c.nset++)
			c.set[c.nset] = c.nset;
	}

	c.quota = quota_cpus();
	c.n = c.nset;
	if (conf.rule != RULE_CPUSET && c.quota > 0 && c.quota < c.n)
		c.n = (int)c.quota;
	if (c.n < 1)
		c.n = 1;
	memcpy(c.vis, c.set, c.n * sizeof *c.vis);
	return &c;
}

int cpu_visible_index(const struct cpus *c, int host_id)
{
	for (int v = 0; v < c->n; v++)
		if (c->vis[v] == host_id)
			return v;
	return -1;
}

/* ---- memory ---- */

static const char *const ms_v1[MS_N] = {
	"total_cache", "total_rss", "total_rss_huge", "total_shmem", "total_mapped_file", "total_dirty",
	"total_writeback", "total_swap", "total_swapcached", "total_active_anon", "total_inactive_anon",
	"total_active_file", "total_inactive_file", "total_unevictable", NULL, NULL, NULL, NULL, NULL, NULL,
	NULL, NULL, NULL, NULL, NULL, "hierarchical_memory_limit", "hierarchical_memsw_limit",
};
static const char *const ms_v2[MS_N] = {
	"file", "anon", "anon_thp", "shmem", "file_mapped", "file_dirty", "file_writeback", NULL,
	"swapcached", "active_anon", "inactive_anon", "active_file", "inactive_file", "unevictable", "slab",
	"slab_reclaimable", "slab_unreclaimable", "kernel_stack", "pagetables", "sec_pagetables", "percpu",
	"shmem_thp", "file_thp", "zswap", "zswapped", NULL, NULL,
};

static void parse_memory_stat(const char *text, u64 *st)
{
	const char *const *names = conf.v2 ? ms_v2 : ms_v1;
	for (const char *l = text; l && *l;) {
		const char *sp = strchr(l, ' ');
		const char *nl = strchr(l, '\n');
		if (sp && (!nl || sp < nl)) {
			size_t klen = sp - l;
			for (int i = 0; i < MS_N; i++)
				if (names[i] && strlen(names[i]) == klen && !memcmp(names[i], l, klen)) {
					st[i] = strtoull(sp + 1, NULL, 10);
					break;
				}
		}
		l = nl ? nl + 1 : NULL;
	}
}

/* Smallest value of FILE from the cgroup up to the hierarchy root ("max" = none). */
static u64 walk_min(int role, const char *file)
{
	char dir[PATH_MAX], p[PATH_MAX + 64], tmp[64];
	u64 best = UNLIMITED;
	if (!conf.cg[role][0])
		return best;
	snprintf(dir, sizeof dir, "%s", conf.cg[role]);
	do {
		snprintf(p, sizeof p, "%s/%s", dir, file);
		if (read_small(p, tmp, sizeof tmp) > 0) {
			const char *s = skip_ws(tmp);
			if (*s >= '0' && *s <= '9') {
				u64 v = strtoull(s, NULL, 10);
				if (v < best)
					best = v;
			}
		}
	} while (walk_up(dir, conf.cgroot[role]));
	return best;
}

static u64 meminfo_value(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	return p ? strtoull(skip_ws(p + strlen(key)), NULL, 10) : 0;
}

static u64 min_u64(u64 a, u64 b)
{
	return a < b ? a : b;
}

int mem_get(struct mem *m, struct buf *host)
{
	memset(m, 0, sizeof *m);
	char p[PATH_MAX + 32];
	snprintf(p, sizeof p, "%s/meminfo", conf.host_proc);
	int r = read_file_whole(p, host);
	if (r < 0)
		return r;
	m->host_total = meminfo_value(host->p, "MemTotal:");
	m->host_free = meminfo_value(host->p, "MemFree:");
	m->host_avail = meminfo_value(host->p, "MemAvailable:");
	m->host_swtotal = meminfo_value(host->p, "SwapTotal:");
	m->host_swfree = meminfo_value(host->p, "SwapFree:");
	return mem_compute(m);
}

/* The rest of mem_get once m->host_* (kB) are set; vkagent fills them from sysinfo(2). */
int mem_compute(struct mem *m)
{
	static struct buf stat;
	u64 host_total = m->host_total * 1024, host_sw = m->host_swtotal * 1024;
	if (!HAVE_CG(CG_MEMORY) || read_file_whole(cgfile(CG_MEMORY, "memory.stat"), &stat) < 0) {
		/* No memory cgroup: the host's numbers. */
		m->total = host_total;
		m->free = m->host_free * 1024;
		m->avail = m->host_avail * 1024;
		m->usage = m->total - m->free;
		m->swtotal = host_sw;
		m->swused = host_sw - m->host_swfree * 1024;
		return 0;
	}
	m->have_cg = 1;
	parse_memory_stat(stat.p, m->st);
	u64 limit, swlimit, v = 0;
	int no_swap_accounting = 0;
	if (conf.v2) {
		limit = min_u64(walk_min(CG_MEMORY, "memory.max"), walk_min(CG_MEMORY, "memory.high"));
		read_u64(cgfile(CG_MEMORY, "memory.current"), &m->usage);
		swlimit = walk_min(CG_MEMORY, "memory.swap.max");
		if (read_u64(cgfile(CG_MEMORY, "memory.swap.current"), &v) == 0)
			m->swused = v;
		else
			swlimit = UNLIMITED, no_swap_accounting = 1;
	} else {
		limit = m->st[MS_HIER_LIMIT];
		if (!limit && read_u64(cgfile(CG_MEMORY, "memory.limit_in_bytes"), &limit) < 0)
			limit = UNLIMITED;
		read_u64(cgfile(CG_MEMORY, "memory.usage_in_bytes"), &m->usage);
		u64 memsw_usage;
		if (read_u64(cgfile(CG_MEMORY, "memory.memsw.usage_in_bytes"), &memsw_usage) == 0) {
			u64 memsw = m->st[MS_HIER_MEMSW] ? m->st[MS_HIER_MEMSW] : UNLIMITED;
			/* memsw limits memory+swap: the swap share is what is left above the memory limit. */
			swlimit = memsw >= HUGE_LIMIT ? UNLIMITED : memsw > limit ? memsw - limit : 0;
			m->swused = m->st[MS_SWAP] ? m->st[MS_SWAP] : memsw_usage > m->usage ? memsw_usage - m->usage : 0;
		} else {
			swlimit = UNLIMITED, no_swap_accounting = 1;
		}
	}
	m->total = min_u64(limit, host_total);
	m->free = m->total > m->usage ? m->total - m->usage : 0;
	m->free = min_u64(m->free, m->host_free * 1024);
	u64 reclaimable = m->st[MS_ACTIVE_FILE] + m->st[MS_INACTIVE_FILE] + m->st[MS_SLAB_RECL];
	m->avail = min_u64(m->free + reclaimable, m->total);
	m->swtotal = min_u64(swlimit, host_sw);
	if (no_swap_accounting) /* the container may use all of the host's swap; its share is unknown */
		m->swused = host_sw - min_u64(m->host_swfree * 1024, host_sw);
	m->swused = min_u64(m->swused, m->swtotal);
	return 0;
}

/* ---- start time ---- */

/* Start time of a process, seconds since boot (field 22 of /proc/PID/stat); 0 on error. */
static double proc_start(const char *pid)
{
	char p[PATH_MAX], tmp[1024];
	snprintf(p, sizeof p, "%s/%s/stat", conf.host_proc, pid);
	if (read_small_once(p, tmp, sizeof tmp) <= 0)
		return 0;
	const char *s = strrchr(tmp, ')');
	if (!s)
		return 0;
	/* Each step moves to the space before the next field: ") S ..." -> field 3, ... 22. */
	for (int field = 3; field <= 22 && s; field++)
		s = strchr(s + 1, ' ');
	if (!s)
		return 0;
	static long tck;
	if (!tck)
		tck = sysconf(_SC_CLK_TCK);
	return strtoull(s + 1, NULL, 10) / (double)tck;
}

static int task_dir_fd(void)
{
	static const int order[] = { CG_CPUACCT, CG_CPU, CG_MEMORY, CG_PIDS, CG_UNIFIED };
	for (size_t i = 0; i < sizeof order / sizeof *order; i++)
		if (HAVE_CG(order[i]))
			return order[i];
	return -1;
}

double container_start(void)
{
	if (conf.start_time > 0)
		return conf.start_time;
	if (sh->init_start > 0)
		return sh->init_start;
	int role = task_dir_fd();
	static struct buf b;
	double best = 0;
	if (role >= 0 && read_file_once(cgfile(role, "cgroup.procs"), &b) == 0) {
		for (char *save, *t = strtok_r(b.p, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
			double s = proc_start(t);
			if (s > 0 && (best == 0 || s < best))
				best = s;
		}
	}
	if (best > 0) {
		sh->init_start = best; /* the oldest process is the init: it cannot get older */
		return best;
	}
	return sh->view_start;
}

/* ---- CPU times ---- */

static u64 uu[MAXCPU], us[MAXCPU];

/* Per host CPU user/system nanoseconds (v1). Returns the number of CPU slots filled. */
static int cpuacct_percpu(void)
{
	static struct buf b;
	int n = 0;
	if (read_file_whole(cgfile(CG_CPUACCT, "cpuacct.usage_all"), &b) == 0) {
		const char *l = strchr(b.p, '\n'); /* skip "cpu user system" */
		while (l && *++l) {
			int cpu;
			u64 u, s;
			if (sscanf(l, "%d %llu %llu", &cpu, &u, &s) == 3 && cpu >= 0 && cpu < MAXCPU) {
				uu[cpu] = u;
				us[cpu] = s;
				if (cpu + 1 > n)
					n = cpu + 1;
			}
			l = strchr(l, '\n');
		}
		return n;
	}
	const char *files[2] = { "cpuacct.usage_percpu_user", "cpuacct.usage_percpu_sys" };
	u64 *dst[2] = { uu, us };
	for (int k = 0; k < 2; k++) {
		if (read_file_whole(cgfile(CG_CPUACCT, files[k]), &b) < 0) {
			if (k == 0 && read_file_whole(cgfile(CG_CPUACCT, "cpuacct.usage_percpu"), &b) < 0)
				return 0;
			if (k == 1)
				break;
		}
		char *s = b.p, *end;
		for (int i = 0; i < MAXCPU; i++, s = end) {
			u64 v = strtoull(s, &end, 10);
			if (end == s)
				break;
			dst[k][i] = v;
			if (i + 1 > n)
				n = i + 1;
		}
	}
	return n;
}

static u64 stat_field(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, key, kl) && l[kl] == ' ')
			return strtoull(l + kl + 1, NULL, 10);
	return 0;
}

/* Time the container's tasks waited for a CPU they were entitled to run on, in ticks. */
static u64 steal_ticks(void)
{
	static struct buf b;
	if (HAVE_CG(CG_UNIFIED) && read_file_whole(cgfile(CG_UNIFIED, "cpu.pressure"), &b) == 0) {
		const char *t = strstr(b.p, "total=");
		if (t)
			return strtoull(t + 6, NULL, 10) / (1000000 / USER_HZ);
	}
	if (!conf.v2 && HAVE_CG(CG_CPU) && read_file_whole(cgfile(CG_CPU, "cpu.stat"), &b) == 0)
		return stat_field(b.p, "throttled_time") / (1000000000ULL / USER_HZ);
	return 0;
}

int cputimes_get(const struct cpus *c, struct cputimes *t)
{
	int n = c->n;
	t->n = n;
	t->age = boottime_now() - container_start();
	if (t->age < 0)
		t->age = 0;
	memset(t->user, 0, n * sizeof *t->user);
	memset(t->sys, 0, n * sizeof *t->sys);
	const u64 ns_per_tick = 1000000000ULL / USER_HZ;
	if (!conf.v2 && HAVE_CG(CG_CPUACCT)) {
		memset(uu, 0, sizeof uu);
		memset(us, 0, sizeof us);
		int slots = cpuacct_percpu();
		for (int r = 0; r < slots; r++) {
			if (!uu[r] && !us[r])
				continue;
			/* Time spent on hidden CPUs is folded onto the visible ones. */
			int v = cpu_visible_index(c, r);
			if (v < 0) {
				int pos = r;
				for (int i = 0; i < c->nset; i++)
					if (c->set[i] == r)
						pos = i;
				v = pos % n;
			}
			t->user[v] += uu[r] / ns_per_tick;
			t->sys[v] += us[r] / ns_per_tick;
		}
	} else if (HAVE_CG(CG_CPU)) {
		static struct buf b;
		if (read_file_whole(cgfile(CG_CPU, "cpu.stat"), &b) == 0) {
			/* v2 has no per-CPU split: spread evenly. */
			u64 user = stat_field(b.p, "user_usec") / (1000000 / USER_HZ);
			u64 sys = stat_field(b.p, "system_usec") / (1000000 / USER_HZ);
			for (int v = 0; v < n; v++) {
				t->user[v] = user / n + (v == 0 ? user % n : 0);
				t->sys[v] = sys / n + (v == 0 ? sys % n : 0);
			}
		}
	}
	u64 steal = steal_ticks();
	u64 age_ticks = (u64)(t->age * USER_HZ);
	t->tuser = t->tsys = t->tsteal = t->tidle = 0;
	for (int v = 0; v < n; v++) {
		t->steal[v] = steal / n + (v == 0 ? steal % n : 0);
		u64 busy = t->user[v] + t->sys[v] + t->steal[v];
		t->idle[v] = age_ticks > busy ? age_ticks - busy : 0;
		t->tuser += t->user[v];
		t->tsys += t->sys[v];
		t->tsteal += t->steal[v];
		t->tidle += t->idle[v];
	}
	return 0;
}

/* ---- tasks and loadavg ---- */

#define MAX_TASKS 100000

static void sample_file(const char *dir, const char *file, struct sample *s, int depth)
{
	char p[PATH_MAX];
	static struct buf b;
	static char st[2048];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	if (read_file_once(p, &b) == 0) {
		char *save;
		for (char *t = strtok_r(b.p, "\n", &save); t && s->threads < MAX_TASKS; t = strtok_r(NULL, "\n", &save)) {
			char sp[PATH_MAX];
			snprintf(sp, sizeof sp, "%s/%s/status", conf.host_proc, t);
			if (read_small_once(sp, st, sizeof st) <= 0)
				continue;
			s->threads++;
			const char *state = strstr(st, "\nState:");
			if (state) {
				char c = *skip_ws(state + 7);
				if (c == 'R')
					s->running++;
				else if (c == 'D')
					s->blocked++;
			}
			const char *ns = strstr(st, "\nNSpid:");
			if (ns) {
				const char *e = strchr(ns + 1, '\n');
				const char *last = e ? e : ns + strlen(ns);
				while (last > ns && last[-1] >= '0' && last[-1] <= '9')
					last--;
				unsigned pid = (unsigned)strtoul(last, NULL, 10);
				if (pid > s->last_pid)
					s->last_pid = pid;
			}
		}
	}
	if (depth >= 8)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		char sub[PATH_MAX];
		if (snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) < (int)sizeof sub)
			sample_file(sub, file, s, depth + 1);
	}
	closedir(d);
}

int tasks_sample(struct sample *s)
{
	memset(s, 0, sizeof *s);
	int role = task_dir_fd();
	if (role < 0)
		return -ENOENT;
	sample_file(conf.cg[role], conf.v2 || role == CG_UNIFIED ? "cgroup.threads" : "tasks", s, 0);
	return 0;
}

#define FSHIFT 11
#define FIXED_1 (1UL << FSHIFT)
static const unsigned long EXP[3] = { 1884, 2014, 2037 }; /* 1/exp(5s/1min), 5min, 15min */

static unsigned long calc_load(unsigned long load, unsigned long exp, unsigned long active)
{
	unsigned long newload = load * exp + active * (FIXED_1 - exp);
	if (active >= load)
		newload += FIXED_1 - 1;
	return newload / FIXED_1;
}

void loadavg_tick(void)
{
	struct sample s;
	double now = boottime_now();
	if (tasks_sample(&s) < 0)
		memset(&s, 0, sizeof s);
	/* Missed periods (no worker, a slow sample) decay with the current count. */
	long periods = 1;
	if (sh->last_sample > 0 && now - sh->last_sample > 10)
		periods = (long)((now - sh->last_sample) / 5.0);
	if (periods > 2000)
		periods = 2000;
	unsigned long active = (unsigned long)(s.running + s.blocked) * FIXED_1;
	for (long k = 0; k < periods; k++)
		for (int i = 0; i < 3; i++)
			sh->avenrun[i] = calc_load(sh->avenrun[i], EXP[i], active);
	sh->nr_running = s.running;
	sh->nr_blocked = s.blocked;
	sh->nr_threads = s.threads;
	sh->last_pid = s.last_pid;
	sh->last_sample = now;
	loadpub_publish();
}

/* ---- the load averages published for the syscall agent (vkfs.h: struct loadpub) ---- */

struct loadpub *lpub;

int loadpub_path(const char *config, char *out, size_t cap)
{
	return conf_sibling(config, LOADPUB_FILE, out, cap);
}

struct loadpub *loadpub_create(const char *config)
{
	char p[PATH_MAX], tmp[PATH_MAX + 16];
	if (loadpub_path(config, p, sizeof p) < 0)
		return NULL;
	/* A fresh inode (temp + rename): an agent still mapping an older page sees it go stale. */
	snprintf(tmp, sizeof tmp, "%s.%d", p, (int)getpid());
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return NULL;
	void *m = MAP_FAILED;
	if (ftruncate(fd, 4096) == 0)
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED || rename(tmp, p) < 0) {
		if (m != MAP_FAILED)
			munmap(m, 4096);
		unlink(tmp);
		return NULL;
	}
	lpub = m;
	lpub->keeper_pid = (uint32_t)getpid();
	__atomic_store_n(&lpub->magic, LOADPUB_MAGIC, __ATOMIC_RELEASE);
	return lpub;
}

void loadpub_publish(void)
{
	if (!lpub)
		return;
	/* Odd while writing, even when done, from whatever was there: a worker killed between
	 * the two stores of an earlier publish (the page outlives it) left it odd. */
	uint32_t s = __atomic_load_n(&lpub->seq, __ATOMIC_RELAXED) | 1u;
	__atomic_store_n(&lpub->seq, s, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (int i = 0; i < 3; i++)
		__atomic_store_n(&lpub->avenrun[i], (uint64_t)sh->avenrun[i], __ATOMIC_RELAXED);
	lpub->nr_running = sh->nr_running;
	lpub->nr_threads = sh->nr_threads;
	lpub->last_pid = sh->last_pid;
	lpub->last_sample = sh->last_sample;
	__atomic_store_n(&lpub->seq, s + 1, __ATOMIC_RELEASE); /* even: done */
}

const struct loadpub *loadpub_open(const char *config)
{
	char p[PATH_MAX];
	if (loadpub_path(config, p, sizeof p) < 0)
		return NULL;
	const struct loadpub *lp = map_file_ro(p, sizeof(struct loadpub), 4096);
	if (lp && __atomic_load_n(&lp->magic, __ATOMIC_ACQUIRE) != LOADPUB_MAGIC) {
		munmap((void *)lp, 4096);
		return NULL;
	}
	return lp;
}

int loadpub_read(const struct loadpub *p, unsigned long avenrun[3], double *last_sample)
{
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t s0 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
		if (s0 & 1)
			continue;
		for (int i = 0; i < 3; i++)
			avenrun[i] = (unsigned long)__atomic_load_n(&p->avenrun[i], __ATOMIC_RELAXED);
		*last_sample = ((const volatile struct loadpub *)p)->last_sample;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&p->seq, __ATOMIC_RELAXED) == s0)
			return *last_sample > 0 ? 0 : -1;
	}
	return -1;
}

void loadavg_catch_up(double now)
{
	if (sh->last_sample == 0 || now - sh->last_sample >= 5.0)
		loadavg_tick();
}
