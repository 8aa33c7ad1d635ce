/*
 * vkfs: the per-container FUSE view of /proc and /sys/devices/system/{cpu,node}.
 *
 * Layout of the sources:
 *   util.c    growable buffers, small file reads, cpu lists and masks, clocks
 *   conf.c    the flat config file written by runtime/vkernel/view.ts (re-read on change)
 *   cgroup.c  facts from the container's cgroup: CPUs, memory, CPU times, I/O, tasks
 *   gen.c     the file generators (/proc/meminfo, ..., cpu lists, node meminfo)
 *   tree.c    the virtual tree: path -> entry, directory listings, the node table
 *   fuse.c    libfuse low-level operations and the serving worker's loop
 *   main.c    command line: serve (keeper + worker), cat, ls, snapshot, umount
 *
 * Rules and formats are documented in docs/vkernel-view.md.
 */
#ifndef VKFS_H
#define VKFS_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define MAXCPU 8192
#define USER_HZ 100

typedef unsigned long long u64;

/* ---- util.c ---- */
struct buf {
	char *p;
	size_t len, cap;
};
void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const char *s, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

/* Whole file into b (NUL-terminated). 0 or -errno. The plain versions keep the file open
 * and pread() it again next time (see util.c); *_once open and close (per-task files). */
int read_file(const char *path, struct buf *b);
int read_file_once(const char *path, struct buf *b);
/* For single-record files (see util.c): a short read is the end, one system call. */
int read_file_whole(const char *path, struct buf *b);
/* Small file into dst (NUL-terminated, truncated to cap-1). Length or -errno. */
ssize_t read_small(const char *path, char *dst, size_t cap);
/* NAME in the directory of the config file CONFIG (the view's state dir); -1 if too long. */
int conf_sibling(const char *config, const char *name, char *out, size_t cap);
/* PATH mapped shared and read-only (len bytes) when it has at least min bytes; NULL otherwise. */
const void *map_file_ro(const char *path, size_t min, size_t len);
ssize_t read_small_once(const char *path, char *dst, size_t cap);
/* First unsigned number of a small file; -errno on failure, -ERANGE for "max". */
int read_u64(const char *path, u64 *out);
void fdcache_reset(void);
/* "<cgroup dir of role>/<name>" (a rotating static buffer: valid for a few calls). */
const char *cgfile(int role, const char *name);
#define HAVE_CG(role) (conf.cg[role][0] != '\0')

/* cpu lists: "0-3,8\n" <-> sorted arrays of ids. Returns the count (<= max). */
int cpulist_parse(const char *s, int *ids, int max);
void cpulist_format(struct buf *b, const int *ids, int n);
/* Hex bitmap as the kernel prints it ("%*pb"): comma-separated 32-bit words. */
int cpumask_parse(const char *s, int *ids, int max);
void cpumask_format(struct buf *b, const int *ids, int n, int nbits);

double boottime_now(void);  /* CLOCK_BOOTTIME seconds, or the config's fixed_now */
void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *skip_ws(const char *s);

/* ---- conf.c ---- */
enum { RULE_CPUSET, RULE_QUOTA, RULE_MIN };
enum {
	F_CPUINFO = 1 << 0,
	F_MEMINFO = 1 << 1,
	F_STAT = 1 << 2,
	F_UPTIME = 1 << 3,
	F_LOADAVG = 1 << 4,
	F_SWAPS = 1 << 5,
	F_DISKSTATS = 1 << 6,
	F_PRESSURE = 1 << 7,
	F_SYS_CPU = 1 << 8,
	F_SYS_NODE = 1 << 9,
	F_ALL = (1 << 10) - 1,
};
enum { SC_SYSINFO = 1 << 0, SC_SCHED_GETAFFINITY = 1 << 1, SC_ALL = (1 << 2) - 1 };
/* Cgroup directories by role. In v2 mode all roles name the same directory. */
enum { CG_CPU, CG_CPUACCT, CG_CPUSET, CG_MEMORY, CG_BLKIO, CG_PIDS, CG_UNIFIED, CG_N };

struct conf {
	int view;       /* 0: every file shows the host's content */
	unsigned syscalls; /* SC_* the syscall layer answers (the agent; vkfs ignores it) */
	int rule;       /* RULE_* */
	unsigned files; /* F_* of the files that are virtualized */
	int v2;         /* cgroup v2 file names in the CG_* dirs (else v1) */
	char cg[CG_N][PATH_MAX];     /* "" when the controller is not available */
	char cgroot[CG_N][PATH_MAX]; /* mountpoint of each hierarchy: the walk up stops there */
	char host_proc[PATH_MAX];    /* default /proc */
	char host_sys[PATH_MAX];     /* default /sys/devices/system */
	double start_time;           /* container start, seconds since boot; 0 = discover */
	double fixed_now;            /* tests: fixed CLOCK_BOOTTIME; 0 = the real clock */
	unsigned test_delay_us;      /* tests: the worker sleeps this long after reading a request */
	char path[PATH_MAX];
	struct timespec mtime;
	ino_t ino;
	unsigned generation;         /* bumped on every (re)load */
};
extern struct conf conf;
int conf_load(const char *path);
/* Re-reads the file when its mtime or inode changed; keeps the old config on error. */
int conf_maybe_reload(void); /* 1: the config in force is the file's (unchanged or reloaded) */
/* Per request: reloads when signalled (SIGUSR2 from view.ts) or at most once a second. */
#include <signal.h>
extern volatile sig_atomic_t conf_reload_due;
void conf_check(void);
int file_virtualized(unsigned f);

/* ---- shared state (the keeper maps it MAP_SHARED so it survives worker restarts) ---- */
#define NODE_MAX 32768
#define NODE_HASH 65536
#define NODE_STR (2u << 20)
struct shared {
	uint32_t magic;
	uint32_t epoch;          /* worker generation: 1, 2, ... */
	int32_t keeper_pid, worker_pid;
	uint32_t crash_streak;   /* consecutive quick crashes (not SIGKILL) of the worker */
	uint32_t safe_mode;      /* 1: answer resent requests with EIO (poison protection) */
	uint64_t restarts;
	double view_start;       /* boottime seconds when the keeper started */
	double init_start;       /* discovered container start (0 = not yet) */
	/* loadavg, kernel fixed point (FSHIFT 11) */
	unsigned long avenrun[3];
	double last_sample;
	uint32_t nr_running, nr_blocked, nr_threads, last_pid;
	/* node table: nodeid = index + 1; root (index 0) is "" */
	uint32_t nnodes, strtop;
	uint32_t hash[NODE_HASH];
	uint32_t node_str[NODE_MAX];
	char str[NODE_STR];
};
extern struct shared *sh;
struct shared *shared_create(void);

/*
 * The load averages, published for the syscall agent so that sysinfo().loads is the view's
 * /proc/loadavg: <directory of the config>/vkfs.load, a file-backed page that `vkfs serve`
 * maps MAP_SHARED before it forks (workers, standby and a keeper that took over write the
 * same page). Seqlock: seq is odd while a sample is being written.
 */
#define LOADPUB_MAGIC 0x766b6c64u
#define LOADPUB_FILE "vkfs.load"
struct loadpub {
	uint32_t magic;
	uint32_t seq;
	uint64_t avenrun[3];     /* kernel fixed point (FSHIFT 11), as sh->avenrun */
	double last_sample;      /* CLOCK_BOOTTIME seconds of the sample */
	uint32_t nr_running, nr_threads, last_pid, keeper_pid;
};
extern struct loadpub *lpub;   /* NULL: nothing is published (the agent, snapshot mode) */
/* "<dir of config>/vkfs.load" into out; -1 when it does not fit. */
int loadpub_path(const char *config, char *out, size_t cap);
struct loadpub *loadpub_create(const char *config);  /* vkfs serve: zeroed, writable */
void loadpub_publish(void);                          /* sh's load state into lpub */
/* The agent: a read-only mapping of a published page (NULL when there is none yet). */
const struct loadpub *loadpub_open(const char *config);
/* A consistent copy; 0, or -1 when the page is not (or no longer) valid. */
int loadpub_read(const struct loadpub *p, unsigned long avenrun[3], double *last_sample);

/* ---- cgroup.c ---- */
struct cpus {
	int nset;           /* the container's effective cpuset (host ids) */
	int set[MAXCPU];
	long quota;         /* ceil(quota/period), hierarchical minimum; -1 = none */
	int n;              /* visible CPUs (the rule applied, 1 <= n <= nset) */
	int vis[MAXCPU];    /* host id of visible CPU v (first n of the cpuset) */
};
void facts_reset(void);             /* call at the start of each request */
const struct cpus *cpus_get(void);  /* computed once per request */
int cpu_visible_index(const struct cpus *c, int host_id); /* -1 when hidden */

enum {
	MS_CACHE, MS_ANON, MS_ANON_THP, MS_SHMEM, MS_MAPPED, MS_DIRTY, MS_WRITEBACK,
	MS_SWAP, MS_SWAPCACHED, MS_ACTIVE_ANON, MS_INACTIVE_ANON, MS_ACTIVE_FILE,
	MS_INACTIVE_FILE, MS_UNEVICTABLE, MS_SLAB, MS_SLAB_RECL, MS_SLAB_UNRECL,
	MS_KSTACK, MS_PAGETABLES, MS_SECPAGETABLES, MS_PERCPU, MS_SHMEM_THP,
	MS_FILE_THP, MS_ZSWAP, MS_ZSWAPPED, MS_HIER_LIMIT, MS_HIER_MEMSW, MS_N
};
struct mem {
	/* bytes */
	u64 total, usage, free, avail, swtotal, swused;
	u64 st[MS_N];
	/* host /proc/meminfo, kB */
	u64 host_total, host_free, host_avail, host_swtotal, host_swfree;
	int have_cg;
};
int mem_get(struct mem *m, struct buf *hostmeminfo);
int mem_compute(struct mem *m); /* mem_get after the host_* fields are set */

struct cputimes {
	int n;
	double age;        /* seconds since the container started */
	u64 user[MAXCPU], sys[MAXCPU], steal[MAXCPU], idle[MAXCPU]; /* USER_HZ ticks */
	u64 tuser, tsys, tsteal, tidle;
};
int cputimes_get(const struct cpus *c, struct cputimes *t);
double container_start(void);

struct sample {
	unsigned running, blocked, threads, last_pid;
};
int tasks_sample(struct sample *s);
void loadavg_tick(void);          /* one 5 s sample into sh->avenrun */
void loadavg_catch_up(double now);

/* ---- gen.c ---- */
enum {
	G_PASS,          /* the host file (e->host) as is */
	G_CPUINFO, G_MEMINFO, G_STAT, G_UPTIME, G_LOADAVG, G_SWAPS, G_DISKSTATS,
	G_PRESSURE,      /* arg: index into pressure_names */
	G_CPULIST_ALL,   /* "0-(n-1)" */
	G_CPUMASK_ALL,
	G_EMPTY_LIST,    /* "\n" */
	G_XLIST,         /* host cpu list file (e->host) renumbered to visible CPUs */
	G_XMASK,         /* same for a hex mask file */
	G_NODE_LIST,     /* "0" when the host list is not empty */
	G_NODE_MEMINFO,
	G_DISTANCE,
};
extern const char *const pressure_names[];
struct ventry;
int generate(const struct ventry *e, struct buf *out);

/* ---- tree.c ---- */
enum vkind { VK_NONE, VK_DIR, VK_FILE, VK_LINK };
struct ventry {
	enum vkind kind;
	int gen;           /* G_* for VK_FILE */
	int arg;
	int sys;           /* lives under sys/ (sysfs-like sizes) */
	char host[PATH_MAX];  /* backing host path, "" when synthetic */
	char link[PATH_MAX];  /* VK_LINK: target ("" = readlink(host)) */
};
int classify(const char *vpath, struct ventry *e);
typedef void (*dir_emit)(void *ctx, const char *name, const struct ventry *e);
int list_dir(const char *vpath, const struct ventry *dir, dir_emit emit, void *ctx);
uint64_t node_intern(const char *vpath);  /* 0 when the table is full */
const char *node_path(uint64_t nodeid);   /* NULL for an unknown id */
void entry_stat(const struct ventry *e, uint64_t ino, struct stat *st);

/* ---- fuse.c ---- */
int serve_main(const char *config, const char *mountpoint, const char *pidfile, int ready_fd);

#endif
