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
 * Without conf= the cgroup dirs come from /proc/<pid>/cgroup of the container process.
 *
 * Handled: sysinfo and sched_getaffinity(0, ...). The numbers come from the same code as
 * the file view (vkfs cgroup.c, linked in), so files and syscalls agree. Anything else,
 * and any error, is answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE (fail open).
 *
 * --die-with-parent: the keeper stops (SIGTERM, PR_SET_PDEATHSIG) when the process that
 * started it dies: a shim daemon's shared agent, which nobody else would stop after a
 * kill -9 of the daemon (containerd then cleans up the containers it served).
 *
 * Processes: a keeper owns the listening socket and every listener fd; a worker (forked,
 * re-forked when it dies) serves them with epoll. Before handling a notification the
 * worker records (slot, id) in shared memory; if it dies mid-request the keeper answers
 * that id with CONTINUE before forking the next worker, so no caller hangs or errs.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
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
	double last_check;
	double mem_at;       /* monotonic time of the cached memory numbers (0: none) */
	unsigned mem_gen;
	struct mem mem;
	int procs;
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
	buf_printf(&out, "cgroup_mode %s\n", v2 ? "v2" : "v1");
	for (int r = 0; r < CG_N; r++)
		if (cg[r][0])
			buf_printf(&out, "cg.%s %s\nroot.%s %s\n", role_names[r], cg[r], role_names[r], root[r]);
	/* the container start: the message's pid is the container process */
	snprintf(p, sizeof p, "/proc/%d/stat", pid);
	if (ash->slots[i].pid > 0) {
		char st[1024];
		snprintf(p, sizeof p, "/proc/%d/stat", ash->slots[i].pid);
		if (read_small_once(p, st, sizeof st) > 0) {
			const char *s = strrchr(st, ')');
			for (int field = 3; field <= 22 && s; field++)
				s = strchr(s + 1, ' ');
			if (s)
				buf_printf(&out, "start_ticks %llu\n", strtoull(s + 1, NULL, 10));
		}
	}
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
		*x->c = conf;
		x->ready = 1;
		current = i;
	}
	if (current != i) {
		conf = *x->c;
		current = i;
	}
	sh = x->shm;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	double now = ts.tv_sec + ts.tv_nsec / 1e9;
	if (now - x->last_check >= 1.0) {
		unsigned g = conf.generation;
		x->last_check = now;
		conf_maybe_reload();
		if (conf.generation != g)
			*x->c = conf;
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

/* The container's sysinfo (the current container: select_container first). */
int compute_sysinfo(struct sysinfo *out)
{
	struct sysinfo si;
	struct mem m;
	if (!conf.view || sysinfo(&si) < 0)
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
	loadavg_catch_up(now);
	for (int k = 0; k < 3; k++)
		si.loads[k] = sh->avenrun[k] << (SI_LOAD_SHIFT - 11);
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

/* sched_getaffinity(pid, len) of task `tid` (host tid) as the container sees it: the real
 * mask with only its first N set CPUs kept. Returns the byte count (as the kernel), -1 to
 * pass the call through (the kernel then gives the caller its own error). */
long compute_affinity(int tid, uint64_t pid, uint64_t len, unsigned char *mask, size_t cap)
{
	/* Only the caller's own mask: another pid is a number in the caller's pid namespace. */
	if (!conf.view || pid != 0)
		return -1;
	if (len > cap)
		len = cap;
	long r = syscall(SYS_sched_getaffinity, tid, (size_t)len, mask);
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
	cs[i].last_check = 0;
	cs[i].mem_at = 0;
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

/* No PDEATHSIG: if the keeper dies, this worker keeps serving the listeners it has (so
 * killing either process alone is invisible to the workloads) and exits once the last
 * container is gone or the socket is removed. */
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

static pid_t worker = -1;

static pid_t spawn_worker(void)
{
	pid_t p = fork();
	if (p == 0) {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		close(ctl[0]);
		worker_main();
		_exit(0);
	}
	if (p > 0)
		ash->restarts++;
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

static void keeper_accept(int ls, int ep)
{
	int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
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
	s->fd = fd;
	s->gen++;
	__atomic_store_n(&s->used, 1, __ATOMIC_SEQ_CST);
	struct epoll_event ev = { .events = 0, .data.u64 = (uint64_t)i };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	int32_t idx = i;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &idx, sizeof idx };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	sendmsg(ctl[0], &mh, MSG_NOSIGNAL | MSG_DONTWAIT); /* a dead worker's successor inherits it */
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

static int serve(int ready_fd)
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
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
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
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0)
		return 1;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	ev.data.u64 = UINT64_MAX - 1;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	worker = spawn_worker();
	if (pidfile) {
		FILE *f = fopen(pidfile, "we");
		if (f) {
			fprintf(f, "%d %d\n", (int)getpid(), (int)worker);
			fclose(f);
		}
	}
	if (ready_fd >= 0) {
		char m[32];
		int l = snprintf(m, sizeof m, "ok %d\n", (int)getpid());
		if (write(ready_fd, m, (size_t)l) < 0) {
		}
		close(ready_fd);
	}
	double last_fork = 0, last_watch = mono_now();
	struct stat bound;
	if (stat(sock_path, &bound) < 0)
		memset(&bound, 0, sizeof bound);
	for (;;) {
		struct epoll_event evs[32];
		int n = epoll_wait(ep, evs, 32, 2000);
		if (n < 0 && errno != EINTR)
			break;
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
		}
		for (int k = 0; k < n; k++) {
			uint64_t d = evs[k].data.u64;
			if (d == UINT64_MAX) {
				keeper_accept(ls, ep);
			} else if (d == UINT64_MAX - 1) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof si) != sizeof si)
					continue;
				if (si.ssi_signo != SIGCHLD)
					goto out;
				int st;
				pid_t p;
				while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
					if (p != worker)
						continue;
					answer_inflight();
					struct timespec ts;
					clock_gettime(CLOCK_MONOTONIC, &ts);
					double now = ts.tv_sec + ts.tv_nsec / 1e9;
					if (now - last_fork < 0.05)
						usleep(50000); /* a crash loop must not spin the CPU */
					last_fork = now;
					worker = spawn_worker();
					if (pidfile) {
						FILE *f = fopen(pidfile, "we");
						if (f) {
							fprintf(f, "%d %d\n", (int)getpid(), (int)worker);
							fclose(f);
						}
					}
				}
			} else if (d < MAXC && (evs[k].events & (EPOLLHUP | EPOLLERR))) {
				struct slot *s = &ash->slots[d];
				epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
				close(s->fd);
				char p[PATH_MAX + 32];
				snprintf(p, sizeof p, "%s.d/%d.conf", sock_path, (int)d);
				unlink(p);
				__atomic_store_n(&s->used, 0, __ATOMIC_SEQ_CST);
			}
		}
	}
out:
	if (worker > 0) {
		kill(worker, SIGKILL);
		waitpid(worker, NULL, 0);
	}
	/* Listener fds close with us: pending and later calls of those containers get ENOSYS. */
	if (!sock_path_gone)
		unlink(sock_path);
	for (int i = 0; i < MAXC; i++) {
		char p[PATH_MAX + 32];
		snprintf(p, sizeof p, "%s.d/%d.conf", sock_path, i);
		unlink(p);
	}
	rmdir(dir);
	if (pidfile)
		unlink(pidfile);
	return 0;
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
	int ready_fd = -1, pid = 0, die_with_parent = 0;
	pid_t parent = getppid();
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
		/* Re-check after arming it: the parent may have died before prctl. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) {
			fprintf(stderr, "vkagent: the parent (pid %d) is gone\n", (int)parent);
			return 1;
		}
	}
	return serve(ready_fd);
}
