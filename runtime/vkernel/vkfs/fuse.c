/*
 * Serving: libfuse low-level operations, the worker's request loop and the keeper.
 *
 * The keeper mounts, answers FUSE_INIT and then only forks workers and waits: it holds
 * the /dev/fuse fd, so the connection (and every bind mount of it in containers) stays
 * alive when a worker dies. A new worker first sends FUSE_NOTIFY_RESEND (kernel >= 6.9),
 * which puts the requests the dead worker had read but not answered back in the queue:
 * readers see neither an error nor a hang. Node ids, loadavg and the start time live in
 * shared memory (struct shared), so they survive too. If the keeper dies, its worker
 * notices (PR_SET_PDEATHSIG) and becomes the keeper. A third process, the standby, only
 * holds a copy of the /dev/fuse fd and waits: if the keeper and the worker die together,
 * it becomes the keeper, so the connection never closes while one of the three lives.
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vkfs.h"

#define FUSE_NOTIFY_RESEND_CODE 7            /* linux/fuse.h 7.40, kernel 6.9 */
#define FUSE_UNIQUE_RESEND (1ULL << 63)      /* set on requests the kernel resent */
#define RBUF_SIZE (128 * 1024 + 4096)        /* >= max_write + headers; requests are small */

struct in_header { /* struct fuse_in_header */
	uint32_t len, opcode;
	uint64_t unique, nodeid;
	uint32_t uid, gid, pid;
	uint16_t total_extlen, padding;
};
struct out_header { /* struct fuse_out_header */
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

struct shared *sh;
static struct fuse_session *se;
static int fuse_fd = -1;
static const char *mnt, *pidfile_path;
static int ready_fd = -1; /* serve's --ready-fd until the first worker runs */
static char rbuf[RBUF_SIZE] __attribute__((aligned(4096)));

struct shared *shared_create(void)
{
	struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return NULL;
	s->magic = 0x766b6673;
	sh = s;
	s->view_start = boottime_now();
	node_intern(""); /* FUSE_ROOT_ID == 1 */
	return s;
}

/* ---- open files: generated content per handle, regenerated on reads at offset 0 ---- */

struct slot {
	int used, valid;
	int fresh;         /* generated at open and not read from offset 0 yet */
	unsigned confgen;  /* config generation e was classified under */
	struct ventry e;   /* what was opened (/proc files: reused on later reads) */
	struct buf b;
};
static struct slot *slots;
static uint32_t nslots, *freelist, nfree;
static uint32_t epoch;
static struct buf scratch;

static uint64_t slot_alloc(void)
{
	uint32_t i;
	if (nfree) {
		i = freelist[--nfree];
	} else {
		uint32_t n = nslots ? nslots * 2 : 64;
		struct slot *s = realloc(slots, n * sizeof *s);
		uint32_t *f = realloc(freelist, n * sizeof *f);
		if (!s || !f)
			abort();
		memset(s + nslots, 0, (n - nslots) * sizeof *s);
		slots = s, freelist = f;
		for (uint32_t k = n; k-- > nslots + 1;)
			freelist[nfree++] = k;
		i = nslots;
		nslots = n;
	}
	slots[i].used = 1;
	slots[i].valid = 0;
	return ((uint64_t)epoch << 32) | (i + 1);
}

/* NULL for handles of an earlier worker (their buffers died with it). */
static struct slot *slot_get(uint64_t fh)
{
	uint32_t i = (uint32_t)fh - 1;
	if ((fh >> 32) != epoch || i >= nslots || !slots[i].used)
		return NULL;
	return &slots[i];
}

static void slot_free(uint64_t fh)
{
	struct slot *s = slot_get(fh);
	if (!s)
		return;
	s->used = 0;
	if (s->b.cap > (1 << 20))
		buf_free(&s->b); /* keep small buffers for reuse, drop big ones */
	freelist[nfree++] = (uint32_t)(s - slots);
}

/* ---- operations ---- */

static struct ventry ent;

static int path_of(fuse_ino_t ino, const char **vp)
{
	*vp = node_path(ino);
	if (!*vp)
		return -ESTALE;
	return classify(*vp, &ent);
}

static double ttl(const struct ventry *e)
{
	/* Sizes of generated files change all the time; directories follow the cpuset. */
	(void)e;
	return 1.0;
}

/*
 * st_size of /proc files is the length of their content right now (procfs says 0, but
 * the kernel's splice/sendfile path for FUSE reads through the page cache and stops at
 * i_size: busybox cat would print nothing). sysfs files say 4096 like sysfs.
 */
/*
 * The size must never be below the content of a handle opened a moment ago (Node's
 * readFileSync reads exactly st_size bytes), so it is the largest length generated for the
 * inode in the last two seconds.
 */
static size_t recent_len(fuse_ino_t ino, size_t len)
{
	static struct {
		fuse_ino_t ino;
		size_t len;
		double t;
	} seen[256];
	double now = boottime_now();
	typeof(&seen[0]) e = &seen[ino % 256];
	if (e->ino != ino || now - e->t > 2.0 || len >= e->len) {
		e->ino = ino;
		e->len = len;
		e->t = now;
	}
	return e->len;
}

static void fill_stat(const struct ventry *e, fuse_ino_t ino, struct stat *st)
{
	static struct buf tmp;
	entry_stat(e, ino, st);
	if (e->kind == VK_FILE && !e->sys && generate(e, &tmp) == 0)
		st->st_size = recent_len(ino, tmp.len);
}

/*
 * Raises the kernel's i_size to at least the length of `b` with a FUSE_NOTIFY_STORE of the
 * content's last byte at its own offset. A 0-byte store does not do it: since 6.x the
 * kernel only moves i_size for a store that carries data (fuse_write_update_attr with
 * written > 0), and a short read of an earlier, shorter content (sysfs "0\n" before an
 * update made it "0-1\n") had lowered i_size: sendfile/splice stopped there ("0-"). The
 * byte is the real content, so a page it lands in is never wrong; the open without
 * keep_cache drops the page cache anyway. A shorter content needs nothing: the short
 * read lowers i_size by itself.
 */
static void raise_size(fuse_ino_t ino, const struct buf *b)
{
	if (b->len == 0)
		return;
	struct {
		struct out_header h;
		uint64_t nodeid, offset;
		uint32_t size, padding;
	} msg = { { sizeof msg + 1, 4 /* FUSE_NOTIFY_STORE */, 0 }, ino, b->len - 1, 1, 0 };
	struct iovec iov[2] = { { &msg, sizeof msg }, { b->p + b->len - 1, 1 } };
	if (writev(fuse_fd, iov, 2) < 0 && errno != ENOENT)
		vlog("FUSE_NOTIFY_STORE: %s", strerror(errno));
}

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_ASYNC_READ);
	conn->max_write = 4096;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const char *pp = node_path(parent);
	char vp[PATH_MAX];
	struct fuse_entry_param ep;
	memset(&ep, 0, sizeof ep);
	if (!pp)
		return (void)fuse_reply_err(req, ESTALE);
	if (snprintf(vp, sizeof vp, "%s%s%s", pp, *pp ? "/" : "", name) >= (int)sizeof vp)
		return (void)fuse_reply_err(req, ENAMETOOLONG);
	if (classify(vp, &ent) < 0) {
		ep.entry_timeout = 1.0; /* negative entry */
		return (void)fuse_reply_entry(req, &ep);
	}
	ep.ino = node_intern(vp);
	if (!ep.ino)
		return (void)fuse_reply_err(req, ENOMEM);
	ep.attr_timeout = ep.entry_timeout = ttl(&ent);
	fill_stat(&ent, ep.ino, &ep.attr);
	fuse_reply_entry(req, &ep);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const char *vp;
	struct stat st;
	(void)fi;
	int r = path_of(ino, &vp);
	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	fill_stat(&ent, ino, &st);
	fuse_reply_attr(req, &st, ttl(&ent));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	const char *vp;
	char target[PATH_MAX];
	int r = path_of(ino, &vp);
	if (r < 0 || ent.kind != VK_LINK)
		return (void)fuse_reply_err(req, r < 0 ? -r : EINVAL);
	if (ent.link[0])
		return (void)fuse_reply_readlink(req, ent.link);
	ssize_t n = readlink(ent.host, target, sizeof target - 1);
	if (n < 0)
		return (void)fuse_reply_err(req, errno);
	target[n] = '\0';
	fuse_reply_readlink(req, target);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const char *vp;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return (void)fuse_reply_err(req, EACCES);
	int r = path_of(ino, &vp);
	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	if (ent.kind == VK_DIR)
		return (void)fuse_reply_err(req, EISDIR);
	fi->fh = slot_alloc();
	struct slot *s = slot_get(fi->fh);
	s->e = ent;
	s->confgen = conf.generation;
	/* Generate now: the content of this open is fixed from here, and its length goes
	 * to the kernel's i_size before the opener can splice from it. */
	r = generate(&ent, &s->b);
	if (r < 0) {
		slot_free(fi->fh);
		return (void)fuse_reply_err(req, -r);
	}
	s->valid = s->fresh = 1;
	recent_len(ino, s->b.len); /* st_size of later getattrs covers this content */
	raise_size(ino, &s->b);
	fi->direct_io = 1;   /* read(2) reaches us every time: content is never stale */
	fi->keep_cache = 0;
	fi->noflush = 1;     /* no FLUSH round trip on close */
	if (fuse_reply_open(req, fi) == -ENOENT)
		slot_free(fi->fh); /* the opener was interrupted */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct slot *s = slot_get(fi->fh);
	struct buf *b = s ? &s->b : &scratch;
	int reuse = s && s->valid && (off != 0 || s->fresh);
	if (s)
		s->fresh = 0;
	if (!reuse) {
		/* /proc files map to the same generator for the life of a config; sysfs
		 * entries are classified again (the cpuset decides which CPU backs cpuN). */
		const struct ventry *e = &ent;
		int r = 0;
		if (s && s->confgen == conf.generation && !s->e.sys)
			e = &s->e;
		else
			r = path_of(ino, &(const char *){ NULL });
		if (r == 0 && e->kind == VK_FILE)
			r = generate(e, b);
		else if (r == 0)
			r = -EISDIR;
		if (r < 0) {
			if (s)
				s->valid = 0;
			return (void)fuse_reply_err(req, -r);
		}
		if (s)
			s->valid = 1;
	}
	if ((size_t)off >= b->len)
		return (void)fuse_reply_buf(req, NULL, 0);
	size_t n = b->len - off < size ? b->len - off : size;
	fuse_reply_buf(req, b->p + off, n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	slot_free(fi->fh);
	fuse_reply_err(req, 0);
}

struct dirlist {
	struct buf names; /* "name\0" entries */
	mode_t *modes;
	size_t n, cap;
};
static struct dirlist dl;

static void collect(void *ctx, const char *name, const struct ventry *e)
{
	struct dirlist *d = ctx;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->modes = realloc(d->modes, d->cap * sizeof *d->modes);
		if (!d->modes)
			abort();
	}
	d->modes[d->n++] = e->kind == VK_DIR ? S_IFDIR : e->kind == VK_LINK ? S_IFLNK : S_IFREG;
	buf_add(&d->names, name, strlen(name) + 1);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	const char *vp;
	int r = path_of(ino, &vp);
	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	if (ent.kind != VK_DIR)
		return (void)fuse_reply_err(req, ENOTDIR);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", vp);
	static const struct ventry dot = { .kind = VK_DIR };
	dl.n = 0;
	dl.names.len = 0;
	collect(&dl, ".", &dot);
	collect(&dl, "..", &dot);
	struct ventry self = ent;
	r = list_dir(dir, &self, collect, &dl);
	if (r < 0)
		return (void)fuse_reply_err(req, -r);

	static struct buf out;
	out.len = 0;
	buf_reserve(&out, size);
	const char *name = dl.names.p;
	for (size_t i = 0; i < dl.n; i++, name += strlen(name) + 1) {
		if ((off_t)i < off)
			continue;
		struct stat st = { .st_mode = dl.modes[i] };
		char child[PATH_MAX];
		if (i >= 2) {
			snprintf(child, sizeof child, "%s%s%s", dir, *dir ? "/" : "", name);
			st.st_ino = node_intern(child);
		} else {
			st.st_ino = ino;
		}
		size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
		if (out.len + need > size)
			break;
		fuse_add_direntry(req, out.p + out.len, size - out.len, name, &st, i + 1);
		out.len += need;
	}
	fuse_reply_buf(req, out.p, out.len);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.readdir = op_readdir,
};

/* ---- the worker ---- */

static volatile sig_atomic_t tick_due, orphaned;

static void on_alarm(int sig)
{
	(void)sig;
	tick_due = 1;
}

static void on_reload(int sig)
{
	(void)sig;
	conf_reload_due = 1;
}

static void on_parent_death(int sig)
{
	(void)sig;
	orphaned = 1;
}

static void notify_resend(void)
{
	struct out_header oh = { sizeof oh, FUSE_NOTIFY_RESEND_CODE, 0 };
	if (write(fuse_fd, &oh, sizeof oh) < 0)
		vlog("FUSE_NOTIFY_RESEND failed: %s (needs kernel >= 6.9; requests in flight may hang)",
		     strerror(errno));
}

static void process_one(ssize_t n)
{
	const struct in_header *h = (const void *)rbuf;
	if (sh->safe_mode && n >= (ssize_t)sizeof *h && (h->unique & FUSE_UNIQUE_RESEND)) {
		/* Workers keep crashing on resent requests: fail them instead of looping. */
		struct out_header oh = { sizeof oh, -EIO, h->unique };
		if (write(fuse_fd, &oh, sizeof oh) < 0)
			vlog("reply: %s", strerror(errno));
		return;
	}
	facts_reset();
	conf_check();
	if (conf.test_delay_us)
		usleep(conf.test_delay_us); /* tests: a window to kill the worker mid-request */
	struct fuse_buf fb = { .size = n, .mem = rbuf };
	fuse_session_process_buf(se, &fb);
}

/* Returns only when the keeper died and this process must take over. */
static void worker_main(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: a blocked read returns EINTR */
	sa.sa_handler = on_parent_death;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_reload;
	sigaction(SIGUSR2, &sa, NULL);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* A worker that took over passes its (set) flag on to the workers it forks. */
	orphaned = 0;
	pid_t keeper = sh->keeper_pid;
	prctl(PR_SET_PDEATHSIG, SIGUSR1);
	if (getppid() != keeper)
		orphaned = 1;
	prctl(PR_SET_NAME, "vkfs-worker");
	setpgid(0, 0); /* a kill of the keeper's process group leaves the worker to take over */
	memset(rbuf, 0, sizeof rbuf); /* fault the pages in: a kill mid-copy must not turn into EFAULT */
	conf_maybe_reload(); /* the keeper's copy may be older than the file */
	if (epoch > 1)
		notify_resend();
	struct itimerval it = { { 5, 0 }, { 5, 0 } };
	setitimer(ITIMER_REAL, &it, NULL);
	loadavg_catch_up(boottime_now());
	double started = boottime_now();

	for (;;) {
		if (orphaned) {
			if (getppid() != keeper)
				break;
			orphaned = 0; /* a stray SIGUSR1, not the keeper's death */
		}
		if (tick_due) {
			tick_due = 0;
			loadavg_tick();
		}
		if (sh->safe_mode && boottime_now() - started > 1.0)
			sh->safe_mode = sh->crash_streak = 0;
		ssize_t n = read(fuse_fd, rbuf, sizeof rbuf);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ENOENT)
				continue;
			if (errno == ENODEV)
				_exit(0); /* unmounted */
			vlog("read /dev/fuse: %s", strerror(errno));
			_exit(1);
		}
		process_one(n);
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	prctl(PR_SET_PDEATHSIG, 0);
	vlog("keeper died: worker takes over");
}

/* ---- the keeper ---- */

static pid_t standby_pid; /* the keeper's standby (0: none) */

/* "keeper worker standby": view.ts reads the first two. */
static void write_pidfile(pid_t worker)
{
	if (!pidfile_path)
		return;
	char tmp[PATH_MAX], line[64];
	snprintf(tmp, sizeof tmp, "%s.tmp", pidfile_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	int n = snprintf(line, sizeof line, "%d %d %d\n", (int)getpid(), (int)worker, (int)standby_pid);
	if (write(fd, line, n) == n)
		rename(tmp, pidfile_path);
	close(fd);
}

/* fork() for the keeper's children: -1 (logged) on failure; the child drops the ready fd. */
static pid_t fork_child(void)
{
	pid_t p = fork();
	if (p < 0)
		vlog("fork: %s", strerror(errno));
	if (p == 0 && ready_fd >= 0) {
		close(ready_fd); /* the parent's business */
		ready_fd = -1;
	}
	return p;
}

static pid_t spawn_worker(void)
{
	sh->epoch++;
	pid_t p = fork_child();
	if (p < 0)
		return -1;
	if (p == 0) {
		epoch = sh->epoch;
		sh->worker_pid = getpid();
		worker_main();
		return 0; /* orphaned: the caller becomes the keeper */
	}
	write_pidfile(p);
	return p;
}

static int pid_gone(pid_t pid)
{
	char path[64], st[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	ssize_t n = read(fd, st, sizeof st - 1);
	close(fd);
	if (n <= 0)
		return 1;
	st[n] = '\0';
	const char *r = strrchr(st, ')');
	return !r || r[1] != ' ' || r[2] == 'Z' || r[2] == 'X';
}

/*
 * The standby: holds the inherited /dev/fuse fd and waits for the keeper to die. Then the
 * worker takes over if it lives (the standby exits: the new keeper forks its own); if the
 * worker died too, this process takes over. Returns only to take over.
 */
static void standby_main(pid_t keeper)
{
	prctl(PR_SET_NAME, "vkfs-standby");
	setpgid(0, 0); /* like the worker: a kill of the keeper's process group spares it */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_SETMASK, &usr1, NULL); /* SIGUSR1 (parent death) is only waited for */
	prctl(PR_SET_PDEATHSIG, SIGUSR1);
	while (getppid() == keeper) {
		struct timespec ts = { 1, 0 };
		sigtimedwait(&usr1, NULL, &ts);
	}
	prctl(PR_SET_PDEATHSIG, 0);
	/* The worker finishes its request and sets keeper_pid to itself; give it 2 s. */
	for (int i = 0; i < 400; i++) {
		pid_t k = sh->keeper_pid, w = sh->worker_pid;
		if (k != keeper && k > 0 && !pid_gone(k))
			_exit(0); /* taken over */
		if (w <= 0 || w == keeper || pid_gone(w))
			break;
		usleep(5000);
	}
	sigemptyset(&usr1);
	sigprocmask(SIG_SETMASK, &usr1, NULL);
	vlog("keeper %d and its worker died: standby takes over", (int)keeper);
}

static pid_t spawn_standby(void)
{
	pid_t keeper = getpid();
	pid_t p = fork_child();
	if (p < 0)
		return -1;
	if (p == 0) {
		standby_pid = 0;
		standby_main(keeper);
		return 0; /* take over */
	}
	return p;
}

static void shutdown_all(pid_t worker, int code)
{
	if (standby_pid > 0) { /* first: it would take over once the keeper is gone */
		kill(standby_pid, SIGKILL);
		waitpid(standby_pid, NULL, 0);
		standby_pid = 0;
	}
	if (worker > 0) {
		kill(worker, SIGKILL);
		waitpid(worker, NULL, 0);
	}
	for (int i = 0; i < 8 && umount2(mnt, MNT_DETACH) == 0; i++)
		;
	if (pidfile_path)
		unlink(pidfile_path);
	exit(code);
}

/* Tell the parent how the start went: "ok PID\n" or "error: message\n". */
static void ready(int fd, const char *fmt, ...)
{
	if (fd < 0)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (write(fd, msg, strlen(msg)) < 0)
		vlog("ready pipe: %s", strerror(errno));
	close(fd);
}

/* The cgroup to watch: when it is gone the container is gone, and so is the view. It
 * counts once it has been seen (checked before "ok", so a quick delete is noticed). */
static int cgroup_seen;

static int watched_role(void)
{
	static const int order[] = { CG_MEMORY, CG_CPU, CG_CPUACCT, CG_PIDS, CG_UNIFIED };
	for (size_t i = 0; i < sizeof order / sizeof *order; i++)
		if (conf.cg[order[i]][0])
			return order[i];
	return -1;
}

/* Returns only in a worker whose keeper died: that process then runs it again as the keeper. */
static void keeper_run(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sh->keeper_pid = getpid();
	prctl(PR_SET_NAME, "vkfs-keeper");
	signal(SIGUSR1, SIG_IGN); /* worker-only signals: reload, parent death */
	signal(SIGUSR2, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	int role = watched_role();
	double window = boottime_now(), checked = window;
	int in_window = 0;

	standby_pid = 0;
	pid_t worker = spawn_worker();
	if (worker == 0)
		return;
	standby_pid = spawn_standby();
	if (standby_pid == 0)
		return;
	write_pidfile(worker);
	if (ready_fd >= 0) {
		/* Up, with a worker and the pidfile naming both: tell the parent. */
		ready(ready_fd, "ok %d\n", (int)getpid());
		ready_fd = -1;
	}
	double started = boottime_now();
	for (;;) {
		struct timespec ts = { 1, 0 };
		siginfo_t info;
		int sig = sigtimedwait(&set, &info, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			shutdown_all(worker, 0);
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == standby_pid) {
				vlog("standby %d died; restarting", (int)p);
				if (++in_window > 50)
					usleep(100000);
				standby_pid = spawn_standby();
				if (standby_pid == 0)
					return;
				write_pidfile(worker);
				continue;
			}
			if (p != worker)
				continue;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				shutdown_all(0, 0); /* the file system was unmounted */
			double now = boottime_now(), lived = now - started;
			if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL && lived < 1.0)
				sh->crash_streak++;
			else if (lived >= 1.0)
				sh->crash_streak = 0;
			sh->safe_mode = sh->crash_streak >= 3;
			sh->restarts++;
			if (WIFSIGNALED(st))
				vlog("worker %d killed by signal %d; restarting", (int)p, WTERMSIG(st));
			else
				vlog("worker %d exited with %d; restarting", (int)p, WEXITSTATUS(st));
			if (now - window > 1.0)
				window = now, in_window = 0;
			if (++in_window > 50)
				usleep(100000); /* something kills workers in a loop: do not spin */
			worker = spawn_worker();
			if (worker == 0)
				return;
			started = boottime_now();
		}
		if (boottime_now() - checked >= 1.0) {
			/* Periodic checks: the state dir and the container's cgroup. */
			checked = boottime_now();
			if (conf.path[0] && access(conf.path, F_OK) < 0) {
				vlog("config %s is gone: stopping", conf.path);
				shutdown_all(worker, 0);
			}
			if (role >= 0) {
				int there = access(conf.cg[role], F_OK) == 0;
				if (cgroup_seen && !there) {
					vlog("cgroup %s is gone: stopping", conf.cg[role]);
					shutdown_all(worker, 0);
				}
				cgroup_seen |= there;
			}
		}
	}
}

static void keeper_loop(void)
{
	for (;;)
		keeper_run();
}

int serve_main(const char *config, const char *mountpoint, const char *pidfile, int readyfd)
{
	ready_fd = readyfd;
	mnt = mountpoint;
	pidfile_path = pidfile;
	int r = conf_load(config);
	if (r < 0) {
		ready(ready_fd, "error: config %s: %s\n", config, strerror(-r));
		return 1;
	}
	if (!shared_create()) {
		ready(ready_fd, "error: shared memory: %s\n", strerror(errno));
		return 1;
	}
	/* sysinfo().loads of the syscall agent come from here (vkfs.h: struct loadpub). */
	if (!loadpub_create(config))
		vlog("%s: cannot publish the load averages (%s): the agent samples on its own", config, strerror(errno));
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	if (fuse_opt_add_arg(&args, "vkfs") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, "allow_other,ro,nosuid,nodev,noexec,fsname=vkfs,subtype=vkfs")) {
		ready(ready_fd, "error: out of memory\n");
		return 1;
	}
	se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	fuse_opt_free_args(&args);
	if (!se) {
		ready(ready_fd, "error: fuse_session_new failed\n");
		return 1;
	}
	if (fuse_session_mount(se, mountpoint) != 0) {
		ready(ready_fd, "error: mount %s failed (see log)\n", mountpoint);
		return 1;
	}
	fuse_fd = fuse_session_fd(se);
	/* Answer FUSE_INIT here, so every forked worker starts with an initialized session. */
	for (;;) {
		ssize_t n = read(fuse_fd, rbuf, sizeof rbuf);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			ready(ready_fd, "error: reading FUSE_INIT: %s\n", strerror(errno));
			shutdown_all(0, 1);
		}
		const struct in_header *h = (const void *)rbuf;
		struct fuse_buf fb = { .size = n, .mem = rbuf };
		fuse_session_process_buf(se, &fb);
		if (h->opcode == 26 /* FUSE_INIT */)
			break;
	}
	write_pidfile(0);
	int role = watched_role();
	cgroup_seen = role >= 0 && access(conf.cg[role], F_OK) == 0;
	if (chdir("/") < 0)
		vlog("chdir /: %s", strerror(errno));
	keeper_loop(); /* says "ok" once the first worker is forked */
	return 0;
}
