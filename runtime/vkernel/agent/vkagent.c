/*
 * vkagent: the vkernel syscall supervisor (seccomp user notification).
 *
 *   vkagent serve --socket PATH [--pidfile FILE] [--ready-fd N] [--die-with-parent]
 *   vkagent trace --pid PID --meta META --pidfile FILE [--ready-fd N]   (trace.c)
 *   vkagent filter            the fixed BPF program (struct sock_filter[]) on stdout
 *
 * Speaks the OCI seccomp agent protocol: each connection to PATH carries one
 * ContainerProcessState JSON with the listener fd in SCM_RIGHTS. Only "pid" and
 * "metadata" are read; metadata is a flat "key=value;..." string:
 *   conf=FILE      the container's vkfs config (runtime/vkernel/view.ts): cgroup dirs,
 *                  cpu rule, start time; re-read when it changes
 *   view=on|off    rule=cpuset|quota|min   (used when there is no conf file)
 *
 *   syscalls=all|none|sysinfo,sched_getaffinity   (used when there is no conf file)
 * Without conf= the cgroup dirs come from /proc/<pid>/cgroup of the container process.
 * The conf file is re-read when the view's vkfs.gen counter (mapped, bumped by the runtime
 * after each change) moves, so a policy change (view, cpu rule, files, syscalls) applies
 * from the next call at no per-call cost; a syscall switched off answers CONTINUE.
 *
 * Handled: sysinfo and sched_getaffinity(pid, ...) for pid 0, the caller's own tid or its
 * thread group id (in the caller's pid namespace). The numbers come from the same code as
 * the file view (vkfs cgroup.c, linked in), so files and syscalls agree; sysinfo's loads
 * are the ones vkfs publishes for /proc/loadavg (<conf dir>/vkfs.load). Anything else,
 * and any error, is answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE (fail open).
 *
 * --die-with-parent: the keeper stops (SIGTERM, PR_SET_PDEATHSIG) when the process that
 * started it dies: a shim daemon's shared agent, which nobody else would stop after a
 * kill -9 of the daemon (containerd then cleans up the containers it served). A standby
 * that took over watches that process through a pidfd opened at start.
 *
 * Processes: a keeper owns the listening socket and every listener fd; a worker (forked,
 * re-forked when it dies) serves them with epoll. Before handling a notification the
 * worker records (slot, id) in shared memory; if it dies mid-request the keeper answers
 * that id with CONTINUE before forking the next worker, so no caller hangs or errs.
 * A third process, the standby, holds a copy of every listener fd (the keeper sends each
 * new one, and each drop, over a socketpair), the listening socket and the worker's ctl
 * pair. When the keeper dies (PR_SET_PDEATHSIG) the standby becomes the keeper: it adopts
 * the worker if it lives (watched by pidfd), else answers its in-flight id and forks a new
 * one, forks a standby of its own and rewrites the pidfile ("keeper worker standby"). So
 * the listeners stay open while the keeper or the standby lives: only losing all three at
 * once (or the keeper and the standby, then the worker) ends the service. A normal stop
 * (SIGTERM, the socket removed, the parent gone) kills the standby first.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../vkfs/vkfs.h"
#include "agent.h"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif


/* vkfs globals the linked cgroup.c/util.c/conf.c expect (fuse.c is not linked). */
struct shared *sh;

struct agent_shared *ash;

const char *sock_path;
static const char *pidfile;
static int sock_path_gone; /* do not unlink: it may be someone else's socket now */
static int ctl[2] = { -1, -1 }; /* keeper -> worker: new slots (index + fd) */

void logf_(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "vkagent[%d]: %s\n", (int)getpid(), msg);
}

/* ---- the filter ---- */

static const struct sock_filter filter[] = COLD_FILTER(SECCOMP_RET_USER_NOTIF);

/* ---- per-container state in the worker ---- */

struct cstate {
	int fd;          /* -1: slot not served */
	uint32_t gen;
	int ready;       /* conf loaded (or derivation failed: ready = -1, always CONTINUE) */
	struct conf *c;
	struct shared *shm;
	double mem_at;       /* monotonic time of the cached memory numbers (0: none) */
	unsigned mem_gen;
	struct mem mem;
	int procs;
	const struct loadpub *pub; /* vkfs's published loads (NULL: none found yet) */
	double pub_try;            /* monotonic time of the last attempt to map it */
	const uint64_t *confgen;   /* <conf dir>/vkfs.gen mapped (NULL: none, stat every call) */
	uint64_t confgen_seen;     /* the counter when the config was last checked */
	int confgen_seen_ok;       /* and that check left the file's config in force */
	int confgen_tried;
};
#define CACHE_S 0.1

double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
static struct cstate cs[MAXC];
static int current = -1;

const char *meta_get(const char *meta, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = meta;
	while (p && *p) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = len - kl - 1;
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, p + kl + 1, vl);
			out[vl] = '\0';
			return out;
		}
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

unsigned long long proc_start_ticks(int pid)
{
	char p[64], st[1024];
	snprintf(p, sizeof p, "/proc/%d/stat", pid);
	if (read_small_once(p, st, sizeof st) <= 0)
		return 0;
	const char *s = strrchr(st, ')');
	if (!s || s[1] != ' ' || s[2] == 'Z' || s[2] == 'X')
		return 0;
	for (int field = 3; field <= 22 && s; field++)
		s = strchr(s + 1, ' ');
	return s ? strtoull(s + 1, NULL, 10) : 0;
}

static const char *const role_names[CG_N] = { "cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "unified" };

/* A vkfs config derived from /proc/<pid>/cgroup (the runc / crun path). */
static int derive_conf(int i, int pid, char *path, size_t cap)
{
	char p[64], line[PATH_MAX], v[32];
	struct buf out = { 0 };
	const char *meta = ash->slots[i].meta;
	snprintf(p, sizeof p, "/proc/%d/cgroup", pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return -errno;
	char cg[CG_N][PATH_MAX] = { { 0 } }, root[CG_N][PATH_MAX] = { { 0 } };
	int nv1 = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = *c2 = '\0';
		const char *ctrls = c1 + 1, *cgpath = c2 + 1;
		if (!*ctrls) {
			struct stat st;
			const char *mnt = stat("/sys/fs/cgroup/unified/cgroup.controllers", &st) == 0 ? "/sys/fs/cgroup/unified"
					: "/sys/fs/cgroup";
			snprintf(root[CG_UNIFIED], PATH_MAX, "%s", mnt);
			snprintf(cg[CG_UNIFIED], PATH_MAX, "%s%s", mnt, strcmp(cgpath, "/") ? cgpath : "");
			continue;
		}
		char list[256];
		snprintf(list, sizeof list, "%s", ctrls);
		for (char *save, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
			for (int r = 0; r < CG_UNIFIED; r++) {
				if (strcmp(t, role_names[r]))
					continue;
				char mnt[PATH_MAX];
				struct stat st;
				snprintf(mnt, sizeof mnt, "/sys/fs/cgroup/%s", t);
				if (stat(mnt, &st) < 0)
					snprintf(mnt, sizeof mnt, "/sys/fs/cgroup/%s", ctrls);
				snprintf(root[r], PATH_MAX, "%s", mnt);
				snprintf(cg[r], PATH_MAX, "%s%s", mnt, strcmp(cgpath, "/") ? cgpath : "");
				nv1++;
			}
	}
	fclose(f);
	int v2 = nv1 == 0;
	if (v2)
		for (int r = 0; r < CG_UNIFIED; r++)
			memcpy(cg[r], cg[CG_UNIFIED], PATH_MAX), memcpy(root[r], root[CG_UNIFIED], PATH_MAX);
	buf_printf(&out, "view %s\n", meta_get(meta, "view", v, sizeof v) ? v : "on");
	buf_printf(&out, "cpu_rule %s\n", meta_get(meta, "rule", v, sizeof v) ? v : "min");
	buf_printf(&out, "syscalls %s\n", meta_get(meta, "syscalls", v, sizeof v) ? v : "all");
	buf_printf(&out, "cgroup_mode %s\n", v2 ? "v2" : "v1");
	for (int r = 0; r < CG_N; r++)
		if (cg[r][0])
			buf_printf(&out, "cg.%s %s\nroot.%s %s\n", role_names[r], cg[r], role_names[r], root[r]);
	/* the container start: the message's pid is the container process */
	unsigned long long ticks = ash->slots[i].pid > 0 ? proc_start_ticks(ash->slots[i].pid) : 0;
	if (ticks)
		buf_printf(&out, "start_ticks %llu\n", ticks);
	snprintf(path, cap, "%s.d/%d.conf", sock_path, i);
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, out.p, out.len) != (ssize_t)out.len) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		buf_free(&out);
		return -e;
	}
	close(fd);
	buf_free(&out);
	return rename(tmp, path) < 0 ? -errno : 0;
}

/* <dir of config>/vkfs.gen mapped read-only, or NULL (no such file, or too short). */
static const uint64_t *confgen_open(const char *config)
{
	char p[PATH_MAX];
	if (conf_sibling(config, "vkfs.gen", p, sizeof p) < 0)
		return NULL;
	return map_file_ro(p, sizeof(uint64_t), sizeof(uint64_t));
}

/* Makes container i current: its conf in the global `conf`, its loadavg state in `sh`. */
int select_container(int i, int pid)
{
	struct cstate *x = &cs[i];
	if (x->ready < 0)
		return -1;
	if (!x->ready) {
		char path[PATH_MAX], v[PATH_MAX];
		const char *meta = ash->slots[i].meta;
		int r = -ENOENT;
		if (meta_get(meta, "conf", v, sizeof v))
			r = conf_load(v);
		if (r < 0) {
			r = derive_conf(i, ash->slots[i].pid > 0 ? ash->slots[i].pid : pid, path, sizeof path);
			if (r == 0)
				r = conf_load(path);
		}
		if (r < 0) {
			logf_("container slot %d: no cgroup view (%s): syscalls pass through", i, strerror(-r));
			x->ready = -1;
			current = -1;
			return -1;
		}
		if (!x->c)
			x->c = malloc(sizeof *x->c);
		if (!x->shm)
			x->shm = calloc(1, sizeof *x->shm);
		if (!x->c || !x->shm) {
			x->ready = -1;
			return -1;
		}
		x->shm->view_start = boottime_now();
		/* The fallback sampler carries on where an earlier worker left it. */
		struct slot *sl = &ash->slots[i];
		if (sl->last_sample > 0) {
			for (int k = 0; k < 3; k++)
				x->shm->avenrun[k] = (unsigned long)sl->avenrun[k];
			x->shm->last_sample = sl->last_sample;
		}
		*x->c = conf;
		x->ready = 1;
		current = i;
	}
	if (current != i) {
		conf = *x->c;
		current = i;
	}
	sh = x->shm;
	/* A live policy change (updateView: view, files, rule, syscalls) is in force from the
	 * next call: updateView replaces the config, then bumps vkfs.gen, which we map. While
	 * the counter stands still there is nothing to stat; without the file (a derived
	 * config, an older view) the config is stat'ed on every call. */
	int check = 1;
	uint64_t now = 0;
	if (!x->confgen_tried && conf.path[0]) {
		x->confgen_tried = 1;
		x->confgen = confgen_open(conf.path); /* and check once now */
	}
	if (x->confgen) {
		now = __atomic_load_n(x->confgen, __ATOMIC_ACQUIRE);
		check = !x->confgen_seen_ok || now != x->confgen_seen;
	}
	if (check) {
		unsigned g = conf.generation;
		int current_ok = conf_maybe_reload();
		if (conf.generation != g)
			*x->c = conf;
		/* Seen only once the config in force is the file's: a failed reload retries. */
		x->confgen_seen = now;
		x->confgen_seen_ok = current_ok;
	}
	facts_reset();
	return 0;
}

static int count_lines(const char *p)
{
	int n = 0;
	for (; *p; p++)
		n += *p == '\n';
	return n;
}

/* The current container's thread list (cgroup.threads / tasks) into b; -1 without one. */
int read_tasks(struct buf *b)
{
	static const int order[] = { CG_PIDS, CG_CPU, CG_CPUACCT, CG_MEMORY, CG_UNIFIED };
	for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
		int r = order[k];
		if (!HAVE_CG(r))
			continue;
		if (read_file_once(cgfile(r, conf.v2 || r == CG_UNIFIED ? "cgroup.threads" : "tasks"), b) == 0)
			return 0;
	}
	return -1;
}

static int task_count(void)
{
	static struct buf b;
	return read_tasks(&b) == 0 ? count_lines(b.p) : -1;
}

int write_mem(int pid, uint64_t addr, const void *data, size_t len)
{
	struct iovec local = { (void *)data, len }, remote = { (void *)(uintptr_t)addr, len };
	ssize_t w = process_vm_writev(pid, &local, 1, &remote, 1, 0);
	return w == (ssize_t)len ? 0 : -1;
}

static int write_target(int fd, struct seccomp_notif *req, uint64_t addr, const void *data, size_t len)
{
	/* The pid may have been reused if the caller died: only write while the request lives. */
	if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0)
		return -1;
	return write_mem((int)req->pid, addr, data, len);
}

/* A sample older than this is not vkfs's live state (it samples every 5 s). */
#define PUB_STALE_S 12.0

/* The loads vkfs published for this container's /proc/loadavg; -1 when there are none. */
static int published_loads(struct cstate *x, double now, unsigned long av[3])
{
	double mono = mono_now();
	if (!x->pub) {
		if (mono - x->pub_try < 1.0 || !conf.path[0])
			return -1;
		x->pub_try = mono;
		x->pub = loadpub_open(conf.path);
		if (!x->pub)
			return -1;
	}
	double last;
	if (loadpub_read(x->pub, av, &last) == 0 && now - last <= PUB_STALE_S)
		return 0;
	/* Stale (vkfs gone, or a new page by a new vkfs): map it again later. */
	munmap((void *)x->pub, 4096);
	x->pub = NULL;
	x->pub_try = mono;
	return -1;
}

/* The container's sysinfo (the current container: select_container first). */
int compute_sysinfo(struct sysinfo *out)
{
	struct sysinfo si;
	struct mem m;
	if (!conf.view || !(conf.syscalls & SC_SYSINFO) || sysinfo(&si) < 0)
		return -1;
	memset(&m, 0, sizeof m);
	uint64_t unit = si.mem_unit ? si.mem_unit : 1;
	m.host_total = si.totalram * unit / 1024;
	m.host_free = si.freeram * unit / 1024;
	m.host_avail = (si.freeram + si.bufferram) * unit / 1024;
	m.host_swtotal = si.totalswap * unit / 1024;
	m.host_swfree = si.freeswap * unit / 1024;
	/* memory.stat (v1) alone costs ~20 us to generate: the cgroup numbers are reused for
	 * CACHE_S; limits set by `update` show up within that time. */
	struct cstate *x = &cs[current];
	double mono = mono_now();
	if (x->mem_at > 0 && mono - x->mem_at < CACHE_S && x->mem_gen == conf.generation) {
		m = x->mem;
	} else {
		if (mem_compute(&m) < 0)
			return -1;
		x->mem = m;
		x->procs = task_count();
		x->mem_at = mono;
		x->mem_gen = conf.generation;
	}
	si.totalram = m.total;
	si.freeram = m.free;
	if (m.have_cg) {
		si.sharedram = m.st[MS_SHMEM];
		si.bufferram = 0;
	}
	si.totalswap = m.swtotal;
	si.freeswap = m.swtotal - m.swused;
	si.totalhigh = si.freehigh = 0;
	si.mem_unit = 1;
	int n = x->procs;
	if (n > 0)
		si.procs = (unsigned short)(n > 65535 ? 65535 : n);
	double now = boottime_now();
	double up = now - container_start();
	si.uptime = up > 0 ? (long)up : 0;
	/* The loads are those of the container's /proc/loadavg: vkfs's when it virtualizes
	 * that file, the host's (the kernel's, already in si) when it does not. */
	if (conf.files & F_LOADAVG) {
		unsigned long av[3];
		if (published_loads(x, now, av) < 0) {
			/* No vkfs sampling for this container (snapshot mode, runc + vkernel agent,
			 * the supervisor gone): our own sampler, same rules, kept across workers. */
			struct slot *sl = &ash->slots[current];
			loadavg_catch_up(now);
			for (int k = 0; k < 3; k++)
				av[k] = sh->avenrun[k], sl->avenrun[k] = sh->avenrun[k];
			sl->last_sample = sh->last_sample;
		}
		for (int k = 0; k < 3; k++)
			si.loads[k] = av[k] << (SI_LOAD_SHIFT - 11);
	}
	*out = si;
	return 0;
}

static int do_sysinfo(int fd, struct seccomp_notif *req, int64_t *ret)
{
	struct sysinfo si;
	if (compute_sysinfo(&si) < 0 || write_target(fd, req, req->data.args[0], &si, sizeof si) < 0)
		return -1;
	*ret = 0;
	return 0;
}

/* The last number of a "Key:\t1\t2..." line of a /proc status text (the innermost pid
 * namespace's); 0 when missing. */
static long status_last(const char *st, const char *key)
{
	const char *p = strstr(st, key);
	if (!p)
		return 0;
	const char *e = strchr(p + 1, '\n'); /* key starts with its line's '\n' */
	if (!e)
		return 0; /* cut off by the buffer: the last digits would be part of another number */
	const char *q = e;
	while (q > p && q[-1] >= '0' && q[-1] <= '9')
		q--;
	return q < e ? strtol(q, NULL, 10) : 0;
}

/* The host tid whose mask the call asks for: pid 0, or the caller's own tid or thread group
 * id as the caller numbers them (its pid namespace: NSpid / NStgid of /proc/TID/status,
 * read only for a pid other than 0). -1 for any other task: passed through. */
static int affinity_target(int tid, uint64_t pid)
{
	if (pid == 0)
		return tid;
	if (pid > INT32_MAX)
		return -1;
	char p[64], st[8192]; /* a long Groups: line comes before NSpid */
	snprintf(p, sizeof p, "/proc/%d/status", tid);
	if (read_small_once(p, st, sizeof st) <= 0)
		return -1;
	if ((long)pid == status_last(st, "\nNSpid:"))
		return tid;
	if ((long)pid == status_last(st, "\nNStgid:")) {
		long tgid = status_last(st, "\nTgid:");
		return tgid > 0 ? (int)tgid : -1;
	}
	return -1;
}

/* sched_getaffinity(pid, len) of task `tid` (host tid) as the container sees it: the real
 * mask with only its first N set CPUs kept. Returns the byte count (as the kernel), -1 to
 * pass the call through (the kernel then gives the caller its own error). */
long compute_affinity(int tid, uint64_t pid, uint64_t len, unsigned char *mask, size_t cap)
{
	if (!conf.view || !(conf.syscalls & SC_SCHED_GETAFFINITY))
		return -1;
	/* Only the caller's own thread or process: another pid is another task's mask. */
	int target = affinity_target(tid, pid);
	if (target <= 0)
		return -1;
	if (len > cap)
		len = cap;
	long r = syscall(SYS_sched_getaffinity, target, (size_t)len, mask);
	if (r <= 0)
		return -1;
	int n = cpus_get()->n, seen = 0;
	for (long b = 0; b < r * 8; b++) {
		if (!(mask[b / 8] & (1u << (b % 8))))
			continue;
		if (seen++ >= n)
			mask[b / 8] &= (unsigned char)~(1u << (b % 8));
	}
	return r;
}

static int do_getaffinity(int fd, struct seccomp_notif *req, int64_t *ret)
{
	static unsigned char mask[MAXCPU / 8];
	long r = compute_affinity((int)req->pid, req->data.args[0], req->data.args[1], mask, sizeof mask);
	if (r <= 0 || write_target(fd, req, req->data.args[2], mask, (size_t)r) < 0)
		return -1;
	*ret = r;
	return 0;
}

static int notif_sizes_ok(void)
{
	struct seccomp_notif_sizes sz;
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
		return 0;
	return sz.seccomp_notif <= sizeof(struct seccomp_notif) && sz.seccomp_notif_resp <= sizeof(struct seccomp_notif_resp);
}

static int stats; /* VKAGENT_STATS=1: log the mean handler time every 10000 requests */
static long long stat_ns;
static unsigned long long stat_n;

static void handle(int i)
{
	/* The kernel writes the request straight into shared memory: if this worker dies at
	 * any point after RECV, the keeper finds the id there and answers it (CONTINUE). */
	struct seccomp_notif *rq = (struct seccomp_notif *)&ash->req;
	struct seccomp_notif_resp resp;
	int fd = cs[i].fd;
	memset(rq, 0, sizeof *rq);
	__atomic_store_n(&ash->inflight_slot, i, __ATOMIC_SEQ_CST);
	if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, rq) < 0) {
		__atomic_store_n(&ash->inflight_slot, -1, __ATOMIC_SEQ_CST);
		return; /* ENOENT: the caller went away (or another receiver got it) */
	}
	struct seccomp_notif req = *rq;
	__atomic_store_n(&ash->inflight_id, req.id, __ATOMIC_SEQ_CST);
	memset(&resp, 0, sizeof resp);
	resp.id = req.id;
	int64_t val = 0;
	int ok = -1;
	struct timespec t0, t1;
	if (stats)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	if (req.data.arch == AUDIT_ARCH_X86_64 && select_container(i, (int)req.pid) == 0) {
		if (req.data.nr == __NR_sysinfo)
			ok = do_sysinfo(fd, &req, &val);
		else if (req.data.nr == __NR_sched_getaffinity)
			ok = do_getaffinity(fd, &req, &val);
	}
	if (ok == 0) {
		resp.val = val;
		ash->handled++;
	} else {
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ash->continued++;
	}
	if (stats) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		stat_ns += (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
		if (++stat_n % 10000 == 0)
			logf_("handled %llu, mean handler time %lld ns", stat_n, stat_ns / (long long)stat_n);
	}
	ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	__atomic_store_n(&ash->inflight_slot, -1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ash->inflight_id, 0, __ATOMIC_SEQ_CST);
	rq->id = 0;
}

static void worker_add(int ep, int i, int fd)
{
	if (cs[i].fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, cs[i].fd, NULL);
		close(cs[i].fd);
	}
	cs[i].fd = fd;
	cs[i].gen = ash->slots[i].gen;
	cs[i].ready = 0;
	cs[i].mem_at = 0;
	if (cs[i].pub)
		munmap((void *)cs[i].pub, 4096);
	cs[i].pub = NULL;
	cs[i].pub_try = 0;
	if (cs[i].confgen)
		munmap((void *)cs[i].confgen, sizeof(uint64_t));
	cs[i].confgen = NULL;
	cs[i].confgen_tried = 0;
	cs[i].confgen_seen_ok = 0;
	if (current == i)
		current = -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = ((uint64_t)cs[i].gen << 32) | (uint32_t)i };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int recv_fd(int s, void *data, size_t len, int *fdp)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	*fdp = -1;
	if (n < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			int fds[4];
			memcpy(fds, CMSG_DATA(c), sizeof(int) * (nfd > 4 ? 4 : nfd));
			for (int k = 0; k < nfd && k < 4; k++) {
				if (*fdp < 0)
					*fdp = fds[k];
				else
					close(fds[k]);
			}
		}
	return (int)n;
}

static int served(void)
{
	int n = 0;
	for (int i = 0; i < MAXC; i++)
		n += cs[i].fd >= 0;
	return n;
}

/* No PDEATHSIG: if the keeper dies, the standby adopts this worker (it holds the ctl
 * peer). Only when no keeper or standby is left (EOF on ctl) it is an orphan: it keeps
 * serving the listeners it has and exits once the last container is gone or the socket
 * is removed. */
static void worker_main(void)
{
	int orphan = 0;
	struct stat bound;
	if (stat(sock_path, &bound) < 0)
		memset(&bound, 0, sizeof bound);
	signal(SIGTERM, SIG_DFL);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < MAXC; i++)
		cs[i].fd = -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
	epoll_ctl(ep, EPOLL_CTL_ADD, ctl[1], &ev);
	for (int i = 0; i < MAXC; i++)
		if (ash->slots[i].used)
			worker_add(ep, i, ash->slots[i].fd);
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(ep, evs, 64, orphan ? 2000 : -1);
		if (n < 0 && errno != EINTR)
			_exit(1);
		if (orphan) {
			struct stat st;
			if (!served() || stat(sock_path, &st) < 0 || st.st_ino != bound.st_ino)
				_exit(0);
		}
		for (int k = 0; k < n; k++) {
			uint64_t d = evs[k].data.u64;
			if (d == UINT64_MAX) {
				int32_t idx;
				int fd;
				int r = recv_fd(ctl[1], &idx, sizeof idx, &fd);
				if (r == 0) { /* keeper gone: serve what we have */
					epoll_ctl(ep, EPOLL_CTL_DEL, ctl[1], NULL);
					orphan = 1;
					logf_("keeper gone: serving %d container(s) until they end", served());
					if (!served())
						_exit(0);
					continue;
				}
				if (r == (int)sizeof idx && fd >= 0 && idx >= 0 && idx < MAXC)
					worker_add(ep, idx, fd);
				else if (fd >= 0)
					close(fd);
				continue;
			}
			int i = (int)(uint32_t)d;
			if (i < 0 || i >= MAXC || cs[i].fd < 0 || cs[i].gen != (uint32_t)(d >> 32))
				continue;
			if (evs[k].events & EPOLLIN)
				handle(i);
			else if (evs[k].events & (EPOLLHUP | EPOLLERR)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, cs[i].fd, NULL);
				close(cs[i].fd);
				cs[i].fd = -1;
				if (current == i)
					current = -1;
			}
		}
	}
}

/* ---- keeper ---- */

/*
 * The keeper's state. A standby that takes over inherits all of it by fork: the listening
 * socket, the ctl pair, the daemon's pidfd; it replaces the rest (take_over).
 */
static int ls = -1;              /* the listening socket */
static struct stat bound;        /* sock_path as we bound it */
static int kep = -1, ksig = -1;  /* the keeper's epoll and signalfd */
static pid_t worker = -1;
static int worker_pidfd = -1;    /* a worker we adopted (not our child): its pidfd, -1: none */
static int worker_adopted;
static pid_t standby;            /* 0: none */
static int sb = -1;              /* keeper -> standby: new and dropped slots */
static int ready_fd = -1;
static int die_with_parent;
static pid_t parent;
static int parent_pidfd = -1;    /* --die-with-parent: the parent's pidfd (-1: none) */
static double last_fork;

#define EV_LISTEN UINT64_MAX
#define EV_SIGNAL (UINT64_MAX - 1)
#define EV_WORKER (UINT64_MAX - 2)
#define EV_PARENT (UINT64_MAX - 3)
#define TAKE_OVER (-100) /* keeper_run's return in a standby whose keeper died */

/* keeper -> standby: slot idx has a new listener (in SCM_RIGHTS) or was dropped; idx
 * CONN_IDX: the agent connection the keeper is reading (add) or is done with. */
struct sbmsg {
	int32_t idx;
	int32_t add;
};
#define CONN_IDX (-1)

static int send_fd(int s, const void *data, size_t len, int fd, int flags)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	}
	return sendmsg(s, &mh, MSG_NOSIGNAL | flags) < 0 ? -1 : 0;
}

static void tell_standby(int idx, int fd)
{
	struct sbmsg m = { idx, fd >= 0 };
	if (sb >= 0 && send_fd(sb, &m, sizeof m, fd, 0) < 0)
		logf_("standby %d missed slot %d (%s)", (int)standby, idx, strerror(errno));
}

/* "keeper worker standby" (tmp + rename: a reader never sees half a line). */
static void write_pidfile(void)
{
	if (!pidfile)
		return;
	char tmp[PATH_MAX + 8], line[64];
	snprintf(tmp, sizeof tmp, "%s.tmp", pidfile);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	int n = snprintf(line, sizeof line, "%d %d %d\n", (int)getpid(), (int)worker, (int)standby);
	if (write(fd, line, (size_t)n) == n)
		rename(tmp, pidfile);
	close(fd);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* In a fresh child: what only the keeper may hold (the standby watches for its EOF). */
static void close_keeper_fds(void)
{
	close_fd(&kep);
	close_fd(&ksig);
	close_fd(&sb);
	close_fd(&worker_pidfd);
	close_fd(&ready_fd);
}

static pid_t spawn_worker(void)
{
	pid_t p = fork();
	if (p == 0) {
		close_keeper_fds();
		close_fd(&ls);
		close_fd(&parent_pidfd);
		close(ctl[0]);
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		worker_main();
		_exit(0);
	}
	if (p > 0) {
		ash->restarts++;
		ash->worker_ticks = proc_start_ticks(p);
		__atomic_store_n(&ash->worker_pid, p, __ATOMIC_SEQ_CST);
	}
	worker_adopted = 0;
	return p;
}

/*
 * The standby: holds a copy of every listener fd (the keeper sends each new one and says
 * which slots it dropped), the listening socket and the ctl pair, and waits for the keeper
 * to die (PR_SET_PDEATHSIG, or EOF on its socket). Returns then, to take over.
 */
static int myfd[MAXC];    /* the standby's copies of the listeners, by slot */
static int my_conn = -1;  /* the standby's copy of the connection the keeper is reading */

/* One message from the keeper; recvmsg's result (0: EOF). */
static int standby_recv(int s)
{
	struct sbmsg m;
	int fd;
	int r = recv_fd(s, &m, sizeof m, &fd);
	int *to = r != (int)sizeof m ? NULL : m.idx == CONN_IDX ? &my_conn : m.idx >= 0 && m.idx < MAXC ? &myfd[m.idx] : NULL;
	if (to) {
		close_fd(to);
		if (m.add)
			*to = fd;
		else
			close_fd(&fd);
	} else {
		close_fd(&fd);
	}
	return r < 0 && errno == EINTR ? 1 : r;
}

static void standby_main(pid_t keeper, int s)
{
	prctl(PR_SET_NAME, "vkagent-stdby");
	close_keeper_fds();
	for (int i = 0; i < MAXC; i++) /* the fork copied the keeper's table, same fd numbers */
		myfd[i] = ash->slots[i].used ? ash->slots[i].fd : -1;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_SETMASK, &set, NULL); /* SIGTERM / SIGINT: die (a normal stop) */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	int usr = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	prctl(PR_SET_PDEATHSIG, SIGUSR1);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	ev.data.u64 = 1;
	epoll_ctl(ep, EPOLL_CTL_ADD, usr, &ev);
	int eof = 0;
	while (getppid() == keeper) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, eof ? 50 : 1000);
		for (int k = 0; k < n; k++) {
			if (evs[k].data.u64 == 1) {
				struct signalfd_siginfo si;
				while (read(usr, &si, sizeof si) == sizeof si)
					;
			} else if (!eof && standby_recv(s) == 0) {
				eof = 1; /* the keeper closed its end: it is dying */
				epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
			}
		}
	}
	/* What the keeper sent before it died and we have not read yet. */
	fcntl(s, F_SETFL, O_NONBLOCK);
	while (standby_recv(s) > 0)
		;
	prctl(PR_SET_PDEATHSIG, 0);
	signal(SIGUSR1, SIG_IGN); /* discards the pending one: the keeper's mask unblocks it */
	signal(SIGUSR1, SIG_DFL);
	close(usr);
	close(ep);
	close(s);
	/* Our copies are the listeners now. A slot the keeper filled but had not marked used
	 * yet is served; one it dropped without telling us hangs up in our epoll. */
	for (int i = 0; i < MAXC; i++) {
		struct slot *sl = &ash->slots[i];
		if (myfd[i] >= 0) {
			sl->fd = myfd[i];
			__atomic_store_n(&sl->used, 1, __ATOMIC_SEQ_CST);
		} else if (sl->used) {
			logf_("slot %d: the keeper died before handing its listener over: dropped", i);
			__atomic_store_n(&sl->used, 0, __ATOMIC_SEQ_CST);
		}
	}
	logf_("keeper %d gone: the standby takes over", (int)keeper);
}

/* Forks the standby; 0 in the standby once its keeper is gone (the caller takes over). */
static pid_t spawn_standby(void)
{
	int sp[2];
	close_fd(&sb);
	standby = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		logf_("standby: socketpair: %s", strerror(errno));
		return -1;
	}
	pid_t keeper = getpid();
	pid_t p = fork();
	if (p == 0) {
		close(sp[0]);
		standby_main(keeper, sp[1]);
		return 0;
	}
	close(sp[1]);
	if (p < 0) {
		logf_("standby: fork: %s", strerror(errno));
		close(sp[0]);
		return -1;
	}
	struct timeval tv = { 1, 0 }; /* a stopped standby must not stop the keeper */
	setsockopt(sp[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	sb = sp[0];
	standby = p;
	return p;
}

static void json_scan(const char *msg, int32_t *pid, char *meta, size_t cap)
{
	/* The top-level "pid" comes before "state" (whose "pid" is the same process anyway). */
	const char *p = strstr(msg, "\"pid\"");
	*pid = 0;
	if (p) {
		p = strchr(p + 5, ':');
		if (p)
			*pid = (int32_t)strtol(p + 1, NULL, 10);
	}
	meta[0] = '\0';
	p = strstr(msg, "\"metadata\"");
	if (!p || !(p = strchr(p + 10, ':')) || !(p = strchr(p, '"')))
		return;
	p++;
	size_t o = 0;
	for (; *p && *p != '"' && o + 1 < cap; p++) {
		if (*p == '\\' && p[1])
			p++;
		meta[o++] = *p;
	}
	meta[o] = '\0';
}

/* Reads an agent connection's message and listener into a free slot; closes c. */
static void keeper_take_conn(int c)
{
	struct timeval tv = { 2, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	static char msg[65536];
	int fd;
	int n = recv_fd(c, msg, sizeof msg - 1, &fd);
	close(c);
	if (n <= 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		logf_("agent connection without a listener fd: ignored");
		return;
	}
	msg[n] = '\0';
	int i;
	for (i = 0; i < MAXC && ash->slots[i].used; i++)
		;
	if (i == MAXC) {
		logf_("too many containers: listener dropped");
		close(fd);
		return;
	}
	uint64_t fl = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
	static int warned;
	if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, fl) < 0 && !warned++) /* 6.6+ */
		logf_("SYNC_WAKE_UP unavailable (%s): slower wake-ups", strerror(errno));
	struct slot *s = &ash->slots[i];
	json_scan(msg, &s->pid, s->meta, sizeof s->meta);
	memset(s->avenrun, 0, sizeof s->avenrun);
	s->last_sample = 0;
	s->fd = fd;
	s->gen++;
	/* The standby first: from here on losing the keeper cannot lose this listener. */
	tell_standby(i, fd);
	__atomic_store_n(&s->used, 1, __ATOMIC_SEQ_CST);
	struct epoll_event ev = { .events = 0, .data.u64 = (uint64_t)i };
	epoll_ctl(kep, EPOLL_CTL_ADD, fd, &ev);
	int32_t idx = i;
	send_fd(ctl[0], &idx, sizeof idx, fd, MSG_DONTWAIT); /* a dead worker's successor inherits it */
}

static void keeper_accept(void)
{
	int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	/* The sender may take a while to send (vkinit connects early and sends the listener
	 * once its filter is loaded): the standby holds the connection too, to read it itself
	 * if we die meanwhile. */
	tell_standby(CONN_IDX, c);
	keeper_take_conn(c);
	tell_standby(CONN_IDX, -1);
}

static void keeper_drop(int i)
{
	struct slot *s = &ash->slots[i];
	epoll_ctl(kep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	char p[PATH_MAX + 32];
	snprintf(p, sizeof p, "%s.d/%d.conf", sock_path, i);
	unlink(p);
	__atomic_store_n(&s->used, 0, __ATOMIC_SEQ_CST);
	tell_standby(i, -1);
}

static void answer_inflight(void)
{
	int i = ash->inflight_slot;
	uint64_t id = __atomic_load_n(&ash->inflight_id, __ATOMIC_SEQ_CST);
	if (!id)
		id = ash->req.id; /* died between RECV and recording the id */
	if (id && i >= 0 && i < MAXC && ash->slots[i].used) {
		struct seccomp_notif_resp resp = { .id = id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
		if (ioctl(ash->slots[i].fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0)
			ash->continued++;
	}
	ash->inflight_id = 0;
	ash->req.id = 0;
	ash->inflight_slot = -1;
}

/* The worker is gone (reaped, or an adopted one exited): answer its request, fork the next. */
static void worker_died(void)
{
	if (worker_pidfd >= 0)
		epoll_ctl(kep, EPOLL_CTL_DEL, worker_pidfd, NULL);
	close_fd(&worker_pidfd);
	answer_inflight();
	double now = mono_now();
	if (now - last_fork < 0.05)
		usleep(50000); /* a crash loop must not spin the CPU */
	last_fork = now;
	worker = spawn_worker();
	write_pidfile();
}

static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* The adopted worker without a pidfd (kernel < 5.3): gone when its start time changed. */
static int adopted_gone(void)
{
	return worker_adopted && worker_pidfd < 0 && proc_start_ticks(worker) != ash->worker_ticks;
}

static int parent_gone(void)
{
	if (!die_with_parent)
		return 0;
	if (parent_pidfd >= 0) {
		struct pollfd pf = { parent_pidfd, POLLIN, 0 };
		return poll(&pf, 1, 0) > 0;
	}
	return kill(parent, 0) < 0 && errno == ESRCH;
}

/* The keeper's epoll and signalfd (fresh in a standby that takes over) with the listening
 * socket, the parent's pidfd and every listener (hang-ups only) in it. */
static int keeper_setup(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_SETMASK, &set, NULL);
	ksig = signalfd(-1, &set, SFD_CLOEXEC);
	kep = epoll_create1(EPOLL_CLOEXEC);
	if (ksig < 0 || kep < 0)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_LISTEN };
	epoll_ctl(kep, EPOLL_CTL_ADD, ls, &ev);
	ev.data.u64 = EV_SIGNAL;
	epoll_ctl(kep, EPOLL_CTL_ADD, ksig, &ev);
	if (parent_pidfd >= 0) {
		ev.data.u64 = EV_PARENT;
		epoll_ctl(kep, EPOLL_CTL_ADD, parent_pidfd, &ev);
	}
	for (int i = 0; i < MAXC; i++)
		if (ash->slots[i].used) {
			struct epoll_event hup = { .events = 0, .data.u64 = (uint64_t)i };
			epoll_ctl(kep, EPOLL_CTL_ADD, ash->slots[i].fd, &hup);
		}
	return 0;
}

/* A standby becomes the keeper: its own epoll, and the worker adopted if it lives. */
static void take_over(void)
{
	struct stat st;
	prctl(PR_SET_NAME, "vkagent");
	if (stat(sock_path, &st) < 0 || st.st_ino != bound.st_ino || st.st_dev != bound.st_dev) {
		logf_("%s was removed: exiting", sock_path);
		_exit(0);
	}
	if (keeper_setup() < 0)
		_exit(1);
	pid_t w = ash->worker_pid;
	int pfd = w > 0 ? pidfd_of(w) : -1;
	int nopidfd = pfd < 0 && errno == ENOSYS;
	struct pollfd pf = { pfd, POLLIN, 0 };
	if (w > 0 && (pfd >= 0 || nopidfd) && proc_start_ticks(w) == ash->worker_ticks && (pfd < 0 || poll(&pf, 1, 0) == 0)) {
		/* Alive: it keeps serving (we hold its ctl peer); we watch it through its pidfd. */
		worker = w;
		worker_adopted = 1;
		worker_pidfd = pfd;
		if (pfd >= 0) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_WORKER };
			epoll_ctl(kep, EPOLL_CTL_ADD, pfd, &ev);
		}
		write_pidfile();
		logf_("worker %d adopted", (int)w);
	} else {
		if (pfd >= 0)
			close(pfd);
		worker_died();
	}
	if (my_conn >= 0) { /* the keeper died reading it */
		keeper_take_conn(my_conn);
		my_conn = -1;
	}
}

/* Stops what the keeper started: the standby first (it would take over), then the worker. */
static void keeper_stop_children(void)
{
	if (standby > 0) {
		kill(standby, SIGKILL);
		waitpid(standby, NULL, 0);
		standby = 0;
	}
	if (worker > 0) {
		kill(worker, SIGKILL);
		if (!worker_adopted) {
			waitpid(worker, NULL, 0);
		} else if (worker_pidfd >= 0) {
			struct pollfd pf = { worker_pidfd, POLLIN, 0 };
			poll(&pf, 1, 1000);
		} else {
			for (int i = 0; i < 200 && !adopted_gone(); i++)
				usleep(5000);
		}
		worker = -1;
	}
}

/*
 * The keeper's loop (also of a standby that took over). Returns the exit code, or
 * TAKE_OVER in a standby (forked here) whose keeper died.
 */
static int keeper_run(void)
{
	double last_watch = 0, last_standby = 0;
	int standby_restarts = 0;
	if (parent_gone()) /* a standby taking over after the parent and the keeper died */
		goto parent;
	if (spawn_standby() == 0)
		return TAKE_OVER;
	write_pidfile();
	if (ready_fd >= 0) {
		char m[32];
		int l = snprintf(m, sizeof m, "ok %d\n", (int)getpid());
		if (write(ready_fd, m, (size_t)l) < 0) {
		}
		close_fd(&ready_fd);
	}
	for (;;) {
		struct epoll_event evs[32];
		int n = epoll_wait(kep, evs, 32, worker_adopted && worker_pidfd < 0 ? 100 : 2000);
		if (n < 0 && errno != EINTR)
			break;
		if (adopted_gone())
			worker_died();
		/* Our socket removed or replaced (the container's state dir is gone): nobody can
		 * reach us any more and nobody will stop us, so stop. */
		if (mono_now() - last_watch >= 2.0) {
			struct stat now_st;
			last_watch = mono_now();
			if (stat(sock_path, &now_st) < 0 || now_st.st_ino != bound.st_ino || now_st.st_dev != bound.st_dev) {
				logf_("%s was removed: exiting", sock_path);
				sock_path_gone = 1;
				goto out;
			}
			if (parent_gone())
				goto parent;
		}
		for (int k = 0; k < n; k++) {
			uint64_t d = evs[k].data.u64;
			if (d == EV_LISTEN) {
				keeper_accept();
			} else if (d == EV_PARENT) {
				goto parent;
			} else if (d == EV_WORKER) {
				if (worker_adopted)
					worker_died();
			} else if (d == EV_SIGNAL) {
				struct signalfd_siginfo si;
				if (read(ksig, &si, sizeof si) != sizeof si)
					continue;
				if (si.ssi_signo != SIGCHLD)
					goto out;
				int st;
				pid_t p;
				while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
					if (p == worker && !worker_adopted) {
						worker_died();
					} else if (p == standby) {
						double now = mono_now();
						standby_restarts = now - last_standby < 1.0 ? standby_restarts + 1 : 0;
						last_standby = now;
						if (standby_restarts > 5)
							usleep(100000);
						logf_("standby %d died: restarting it", (int)p);
						if (spawn_standby() == 0)
							return TAKE_OVER;
						write_pidfile();
					}
				}
			} else if (d < MAXC && (evs[k].events & (EPOLLHUP | EPOLLERR))) {
				keeper_drop((int)d);
			}
		}
	}
	goto out;
parent:
	logf_("the parent (pid %d) is gone: exiting", (int)parent);
out:
	keeper_stop_children();
	/* Listener fds close with us: pending and later calls of those containers get ENOSYS. */
	if (!sock_path_gone)
		unlink(sock_path);
	for (int i = 0; i < MAXC; i++) {
		char p[PATH_MAX + 32];
		snprintf(p, sizeof p, "%s.d/%d.conf", sock_path, i);
		unlink(p);
	}
	char dir[PATH_MAX + 8];
	snprintf(dir, sizeof dir, "%s.d", sock_path);
	rmdir(dir);
	if (pidfile)
		unlink(pidfile);
	return 0;
}

static int serve(void)
{
	if (!notif_sizes_ok()) {
		logf_("unexpected seccomp notification sizes");
		return 1;
	}
	ash = mmap(NULL, sizeof *ash, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ash == MAP_FAILED)
		return 1;
	ash->inflight_slot = -1;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s.d", sock_path);
	mkdir(dir, 0700);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock_path) >= sizeof sa.sun_path) {
		logf_("socket path too long: %s", sock_path);
		return 1;
	}
	strcpy(sa.sun_path, sock_path);
	unlink(sock_path);
	if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 128) < 0) {
		logf_("listen on %s: %s", sock_path, strerror(errno));
		return 1;
	}
	chmod(sock_path, 0600);
	if (stat(sock_path, &bound) < 0)
		memset(&bound, 0, sizeof bound);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0 || keeper_setup() < 0)
		return 1;
	worker = spawn_worker();
	int r;
	while ((r = keeper_run()) == TAKE_OVER) {
		/* Here in the standby (forked by keeper_run), after its keeper died. */
		take_over();
	}
	return r;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "filter")) {
		if (write(1, filter, sizeof filter) != (ssize_t)sizeof filter)
			return 1;
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "trace-filter"))
		return write(1, trace_filter, trace_filter_len) == (ssize_t)trace_filter_len ? 0 : 1;
	int trace = argc >= 2 && !strcmp(argv[1], "trace");
	if (argc < 2 || (strcmp(argv[1], "serve") && !trace)) {
		fprintf(stderr, "usage: vkagent serve --socket PATH [--pidfile FILE] [--ready-fd N] [--die-with-parent] | vkagent trace --pid PID "
				"--meta META --pidfile FILE [--ready-fd N] | vkagent filter | vkagent trace-filter\n");
		return 2;
	}
	int pid = 0;
	parent = getppid();
	const char *meta = NULL;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			sock_path = argv[++i];
		else if (!strcmp(argv[i], "--pidfile") && i + 1 < argc)
			pidfile = argv[++i];
		else if (!strcmp(argv[i], "--ready-fd") && i + 1 < argc)
			ready_fd = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--pid") && i + 1 < argc)
			pid = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--meta") && i + 1 < argc)
			meta = argv[++i];
		else if (!strcmp(argv[i], "--die-with-parent"))
			die_with_parent = 1;
		else {
			fprintf(stderr, "vkagent: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (trace ? pid <= 0 || !meta || !pidfile || pidfile[0] != '/' : !sock_path || sock_path[0] != '/') {
		fprintf(stderr, trace ? "vkagent trace: needs --pid, --meta and an absolute --pidfile\n"
				      : "vkagent: --socket needs an absolute path\n");
		return 2;
	}
	/* Only what we were given: an inherited pipe end would keep someone's EOF away. */
	for (int fd = 3; fd < 1024; fd++)
		if (fd != ready_fd)
			close(fd);
	signal(SIGPIPE, SIG_IGN);
	if (trace)
		return trace_main(pid, meta, pidfile, ready_fd);
	stats = getenv("VKAGENT_STATS") != NULL;
	if (die_with_parent) {
		/* PDEATHSIG is the keeper's alone: a standby that took over (its parent is the old
		 * keeper) watches the parent through this pidfd (or kill(parent, 0)). Re-check
		 * after arming both: the parent may have died before. */
		int armed = prctl(PR_SET_PDEATHSIG, SIGTERM) == 0;
		parent_pidfd = pidfd_of(parent);
		if (!armed || getppid() != parent) {
			fprintf(stderr, "vkagent: the parent (pid %d) is gone\n", (int)parent);
			return 1;
		}
	}
	return serve();
}
