/*
 * The virtual tree. Paths are relative to the mount root:
 *
 *   proc/{cpuinfo,meminfo,stat,uptime,loadavg,swaps,diskstats}, proc/pressure/{cpu,io,memory,irq}
 *   sys/cpu   -> /sys/devices/system/cpu   (bind-mounted over it in the container)
 *   sys/node  -> /sys/devices/system/node
 *
 * classify() maps a path to what it is (a generated file, a host file passed through, a
 * directory or a link) using the current config and cgroup facts, so the tree follows
 * cpuset and policy changes. Node ids are interned path strings in shared memory and
 * survive worker restarts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vkfs.h"

/* ---- node table ---- */

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

uint64_t node_intern(const char *vpath)
{
	uint32_t h = hash_str(vpath);
	for (uint32_t i = 0; i < NODE_HASH; i++) {
		uint32_t slot = (h + i) & (NODE_HASH - 1);
		uint32_t id = __atomic_load_n(&sh->hash[slot], __ATOMIC_ACQUIRE);
		if (id) {
			if (!strcmp(sh->str + sh->node_str[id - 1], vpath))
				return id;
			continue;
		}
		size_t len = strlen(vpath) + 1;
		if (sh->nnodes >= NODE_MAX || sh->strtop + len > NODE_STR) {
			vlog("node table full (%u nodes): %s", sh->nnodes, vpath);
			return 0;
		}
		/* Publish last, so a worker killed half-way leaves no visible half-entry. */
		uint32_t idx = sh->nnodes;
		memcpy(sh->str + sh->strtop, vpath, len);
		sh->node_str[idx] = sh->strtop;
		sh->strtop += len;
		sh->nnodes = idx + 1;
		__atomic_store_n(&sh->hash[slot], idx + 1, __ATOMIC_RELEASE);
		return idx + 1;
	}
	return 0;
}

const char *node_path(uint64_t id)
{
	if (id == 0 || id > sh->nnodes)
		return NULL;
	return sh->str + sh->node_str[id - 1];
}

/* ---- classification ---- */

static const struct {
	const char *name;
	unsigned flag;
	int gen;
} proc_files[] = {
	{ "cpuinfo", F_CPUINFO, G_CPUINFO }, { "meminfo", F_MEMINFO, G_MEMINFO },
	{ "stat", F_STAT, G_STAT },	     { "uptime", F_UPTIME, G_UPTIME },
	{ "loadavg", F_LOADAVG, G_LOADAVG }, { "swaps", F_SWAPS, G_SWAPS },
	{ "diskstats", F_DISKSTATS, G_DISKSTATS },
};
#define NPROC_FILES (sizeof proc_files / sizeof *proc_files)

static const char *const xlist_names[] = { "core_cpus_list", "core_siblings_list", "thread_siblings_list",
					   "package_cpus_list", "die_cpus_list", "cluster_cpus_list",
					   "book_siblings_list", "drawer_siblings_list", NULL };
static const char *const xmask_names[] = { "core_cpus", "core_siblings", "thread_siblings", "package_cpus",
					   "die_cpus", "cluster_cpus", "book_siblings", "drawer_siblings", NULL };
static const char *const node_lists[] = { "online", "possible", "has_cpu", "has_memory", "has_normal_memory",
					  "has_high_memory", "has_generic_initiator", NULL };

static int in_list(const char *const *l, const char *s)
{
	for (; *l; l++)
		if (!strcmp(*l, s))
			return 1;
	return 0;
}

/* "cpu12" -> 12 for prefix "cpu"; -1 when name is not prefix + digits. */
static int numbered(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(name, prefix, n) || !name[n])
		return -1;
	for (const char *p = name + n; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	return atoi(name + n);
}

static int set(struct ventry *e, enum vkind kind, int gen, const char *host)
{
	e->kind = kind;
	e->gen = gen;
	snprintf(e->host, sizeof e->host, "%s", host ? host : "");
	return kind == VK_NONE ? -ENOENT : 0;
}

static int passthrough(struct ventry *e, const char *host)
{
	struct stat st;
	if (lstat(host, &st) < 0)
		return set(e, VK_NONE, 0, NULL);
	if (S_ISDIR(st.st_mode))
		return set(e, VK_DIR, 0, host);
	if (S_ISLNK(st.st_mode))
		return set(e, VK_LINK, 0, host);
	if (S_ISREG(st.st_mode))
		return set(e, VK_FILE, G_PASS, host);
	return set(e, VK_NONE, 0, NULL);
}

/* First path component of s into comp; returns the rest ("" at the end). */
static const char *split(const char *s, char *comp, size_t cap)
{
	const char *sl = strchr(s, '/');
	size_t n = sl ? (size_t)(sl - s) : strlen(s);
	if (n >= cap)
		n = cap - 1;
	memcpy(comp, s, n);
	comp[n] = '\0';
	return sl ? sl + 1 : s + n;
}

static int exists(const char *p)
{
	return access(p, F_OK) == 0;
}

/* Which /proc files the host kernel has does not change: remember it per config. */
static int proc_exists(int idx, const char *host)
{
	static signed char known[16];
	static unsigned gen;
	if (gen != conf.generation) {
		memset(known, 0, sizeof known);
		gen = conf.generation;
	}
	if (!known[idx])
		known[idx] = exists(host) ? 1 : -1;
	return known[idx] > 0;
}

static int classify_proc(const char *rest, struct ventry *e)
{
	char host[PATH_MAX];
	if (!strncmp(rest, "pressure", 8) && (!rest[8] || rest[8] == '/')) {
		snprintf(host, sizeof host, "%s/pressure%s", conf.host_proc, rest + 8);
		if (!rest[8])
			return set(e, proc_exists(NPROC_FILES, host) ? VK_DIR : VK_NONE, 0, host);
		for (int i = 0; pressure_names[i]; i++)
			if (!strcmp(rest + 9, pressure_names[i]) && proc_exists(NPROC_FILES + 1 + i, host)) {
				e->arg = i;
				return set(e, VK_FILE, file_virtualized(F_PRESSURE) ? G_PRESSURE : G_PASS, host);
			}
		return set(e, VK_NONE, 0, NULL);
	}
	for (size_t i = 0; i < NPROC_FILES; i++)
		if (!strcmp(rest, proc_files[i].name)) {
			snprintf(host, sizeof host, "%s/%s", conf.host_proc, rest);
			if (!proc_exists(i, host))
				break;
			return set(e, VK_FILE, file_virtualized(proc_files[i].flag) ? proc_files[i].gen : G_PASS, host);
		}
	return set(e, VK_NONE, 0, NULL);
}

/* The host NUMA node of a host CPU (its nodeK link), 0 when there is none. */
static int host_node_of(int cpu, char *link_name, size_t cap)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/cpu/cpu%d", conf.host_sys, cpu);
	DIR *d = opendir(p);
	int node = -1;
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) && node < 0)
			if ((node = numbered(de->d_name, "node")) >= 0 && link_name)
				snprintf(link_name, cap, "%s", de->d_name);
		closedir(d);
	}
	return node;
}

static int classify_cpudir(int v, const char *hostcpu, const char *sub, struct ventry *e)
{
	char comp[NAME_MAX + 1], host[PATH_MAX];
	if (!*sub)
		return set(e, VK_DIR, 0, hostcpu);
	const char *rest = split(sub, comp, sizeof comp);
	snprintf(host, sizeof host, "%s/%s", hostcpu, sub);
	if (numbered(comp, "node") >= 0) {
		/* Whatever host node the CPU is on, the container has one node: node0. */
		char name[NAME_MAX + 1];
		if (strcmp(comp, "node0") || *rest || host_node_of(cpus_get()->vis[v], name, sizeof name) < 0)
			return set(e, VK_NONE, 0, NULL);
		snprintf(host, sizeof host, "%s/%s", hostcpu, name);
		snprintf(e->link, sizeof e->link, "../../node/node0");
		return set(e, VK_LINK, 0, host);
	}
	const char *base = strrchr(sub, '/');
	base = base ? base + 1 : sub;
	int renumber = (!strcmp(comp, "topology") && (in_list(xlist_names, base) || in_list(xmask_names, base))) ||
		       (!strcmp(comp, "cache") && (!strcmp(base, "shared_cpu_list") || !strcmp(base, "shared_cpu_map")));
	if (renumber && exists(host))
		return set(e, VK_FILE, strstr(base, "list") ? G_XLIST : G_XMASK, host);
	return passthrough(e, host);
}

static int classify_cpu(const char *rest, struct ventry *e)
{
	char base[PATH_MAX], host[PATH_MAX], comp[NAME_MAX + 1];
	snprintf(base, sizeof base, "%s/cpu", conf.host_sys);
	snprintf(host, sizeof host, "%s%s%s", base, *rest ? "/" : "", rest);
	if (!file_virtualized(F_SYS_CPU))
		return passthrough(e, host);
	if (!*rest)
		return set(e, exists(base) ? VK_DIR : VK_NONE, 0, base);
	const char *sub = split(rest, comp, sizeof comp);
	int v = numbered(comp, "cpu");
	if (v >= 0) {
		const struct cpus *c = cpus_get();
		if (v >= c->n)
			return set(e, VK_NONE, 0, NULL);
		char hostcpu[PATH_MAX];
		snprintf(hostcpu, sizeof hostcpu, "%s/cpu%d", base, c->vis[v]);
		return classify_cpudir(v, hostcpu, sub, e);
	}
	if (!*sub && exists(host)) {
		if (!strcmp(comp, "online") || !strcmp(comp, "possible") || !strcmp(comp, "present") ||
		    !strcmp(comp, "enabled"))
			return set(e, VK_FILE, G_CPULIST_ALL, host);
		if (!strcmp(comp, "offline"))
			return set(e, VK_FILE, G_EMPTY_LIST, host);
		if (!strcmp(comp, "isolated") || !strcmp(comp, "nohz_full"))
			return set(e, VK_FILE, G_XLIST, host);
	}
	return passthrough(e, host);
}

static int backing_node(void)
{
	int n = host_node_of(cpus_get()->vis[0], NULL, 0);
	return n < 0 ? 0 : n;
}

static int classify_node(const char *rest, struct ventry *e)
{
	char base[PATH_MAX], host[PATH_MAX], comp[NAME_MAX + 1];
	snprintf(base, sizeof base, "%s/node", conf.host_sys);
	snprintf(host, sizeof host, "%s%s%s", base, *rest ? "/" : "", rest);
	if (!file_virtualized(F_SYS_NODE))
		return passthrough(e, host);
	if (!*rest)
		return set(e, exists(base) ? VK_DIR : VK_NONE, 0, base);
	const char *sub = split(rest, comp, sizeof comp);
	if (!strcmp(comp, "node0")) {
		char hostnode[PATH_MAX];
		snprintf(hostnode, sizeof hostnode, "%s/node%d", base, backing_node());
		snprintf(host, sizeof host, "%s%s%s", hostnode, *sub ? "/" : "", sub);
		if (!*sub)
			return set(e, exists(hostnode) ? VK_DIR : VK_NONE, 0, hostnode);
		if (!strcmp(sub, "meminfo"))
			return set(e, VK_FILE, G_NODE_MEMINFO, host);
		if (!strcmp(sub, "cpulist"))
			return set(e, VK_FILE, G_CPULIST_ALL, host);
		if (!strcmp(sub, "cpumap"))
			return set(e, VK_FILE, G_CPUMASK_ALL, host);
		if (!strcmp(sub, "distance"))
			return set(e, VK_FILE, G_DISTANCE, host);
		int k = numbered(sub, "cpu");
		if (k >= 0) {
			if (k >= cpus_get()->n)
				return set(e, VK_NONE, 0, NULL);
			snprintf(e->link, sizeof e->link, "../../cpu/cpu%d", k);
			return set(e, VK_LINK, 0, "");
		}
		return passthrough(e, host);
	}
	if (numbered(comp, "node") >= 0)
		return set(e, VK_NONE, 0, NULL);
	if (!*sub && in_list(node_lists, comp) && exists(host))
		return set(e, VK_FILE, G_NODE_LIST, host);
	return passthrough(e, host);
}

int classify(const char *vp, struct ventry *e)
{
	e->arg = 0;
	e->link[0] = '\0';
	e->sys = !strncmp(vp, "sys/", 4);
	if (!*vp || !strcmp(vp, "proc") || !strcmp(vp, "sys"))
		return set(e, VK_DIR, 0, NULL);
	if (!strncmp(vp, "proc/", 5))
		return classify_proc(vp + 5, e);
	if (!strncmp(vp, "sys/cpu", 7) && (!vp[7] || vp[7] == '/'))
		return classify_cpu(vp[7] ? vp + 8 : "", e);
	if (!strncmp(vp, "sys/node", 8) && (!vp[8] || vp[8] == '/'))
		return classify_node(vp[8] ? vp + 9 : "", e);
	return set(e, VK_NONE, 0, NULL);
}

/* ---- listings ---- */

static void offer(const char *dir, const char *name, dir_emit emit, void *ctx)
{
	static struct ventry e;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s%s%s", dir, *dir ? "/" : "", name);
	if (classify(p, &e) == 0)
		emit(ctx, name, &e);
}

int list_dir(const char *vp, const struct ventry *dir, dir_emit emit, void *ctx)
{
	if (!*vp) {
		offer(vp, "proc", emit, ctx);
		offer(vp, "sys", emit, ctx);
		return 0;
	}
	if (!strcmp(vp, "proc")) {
		for (size_t i = 0; i < NPROC_FILES; i++)
			offer(vp, proc_files[i].name, emit, ctx);
		offer(vp, "pressure", emit, ctx);
		return 0;
	}
	if (!strcmp(vp, "sys")) {
		offer(vp, "cpu", emit, ctx);
		offer(vp, "node", emit, ctx);
		return 0;
	}
	/* Virtualized directories hide the host's numbered entries and add their own. */
	const char *hide = NULL, *add = NULL;
	int nadd = 0;
	if (!strcmp(vp, "sys/cpu") && file_virtualized(F_SYS_CPU)) {
		hide = "cpu", add = "cpu", nadd = cpus_get()->n;
	} else if (numbered(vp, "sys/cpu/cpu") >= 0 && file_virtualized(F_SYS_CPU)) {
		hide = "node", add = "node", nadd = 1;
	} else if (!strcmp(vp, "sys/node") && file_virtualized(F_SYS_NODE)) {
		hide = "node", add = "node", nadd = 1;
	} else if (!strcmp(vp, "sys/node/node0") && file_virtualized(F_SYS_NODE)) {
		hide = "cpu", add = "cpu", nadd = cpus_get()->n;
	}
	if (dir->host[0]) {
		DIR *d = opendir(dir->host);
		if (!d)
			return -errno;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
				continue;
			if (hide && numbered(de->d_name, hide) >= 0)
				continue;
			offer(vp, de->d_name, emit, ctx);
		}
		closedir(d);
	}
	for (int i = 0; i < nadd; i++) {
		char name[32];
		snprintf(name, sizeof name, "%s%d", add, i);
		offer(vp, name, emit, ctx);
	}
	return 0;
}

void entry_stat(const struct ventry *e, uint64_t ino, struct stat *st)
{
	struct stat hs;
	int have = e->host[0] && stat(e->host, &hs) == 0;
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_nlink = 1;
	st->st_blksize = 4096;
	if (have) {
		st->st_uid = hs.st_uid;
		st->st_gid = hs.st_gid;
		st->st_atim = hs.st_atim;
		st->st_mtim = hs.st_mtim;
		st->st_ctim = hs.st_ctim;
	} else {
		clock_gettime(CLOCK_REALTIME, &st->st_mtim);
		st->st_atim = st->st_ctim = st->st_mtim;
	}
	switch (e->kind) {
	case VK_DIR:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case VK_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_size = e->link[0] ? (off_t)strlen(e->link) : 0;
		break;
	case VK_FILE:
		if (e->gen == G_PASS && have) {
			st->st_mode = S_IFREG | (hs.st_mode & 0444);
			st->st_size = hs.st_size;
		} else {
			st->st_mode = S_IFREG | 0444;
			st->st_size = e->sys ? 4096 : 0;
		}
		break;
	default:
		break;
	}
}
