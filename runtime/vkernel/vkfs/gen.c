/*
 * File generators. Each builds the whole file into `out` from the facts of this request;
 * the formats follow the kernel's (fs/proc, drivers/base/node.c) so parsers written
 * for the real files keep working.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkfs.h"

const char *const pressure_names[] = { "cpu", "io", "memory", "irq", NULL };

/* ---- /proc/cpuinfo ---- */

struct cpublock {
	const char *start, *end;
	int id, phys, core;
};

static const char *line_value(const char *line, const char *end)
{
	const char *c = memchr(line, ':', end - line);
	return c ? skip_ws(c + 1) : end;
}

static int starts(const char *l, const char *key)
{
	size_t n = strlen(key);
	return !strncmp(l, key, n) && (l[n] == '\t' || l[n] == ' ' || l[n] == ':');
}

static int gen_cpuinfo(struct buf *out)
{
	static struct buf host;
	static struct cpublock blocks[MAXCPU];
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/cpuinfo", conf.host_proc);
	int r = read_file(p, &host);
	if (r < 0)
		return r;
	const struct cpus *c = cpus_get();
	int nb = 0;
	const char *text = host.p, *first = NULL;
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		const char *next = nl ? nl + 1 : l + strlen(l);
		if (starts(l, "processor") && nb < MAXCPU) {
			if (nb)
				blocks[nb - 1].end = l;
			else
				first = l;
			blocks[nb] = (struct cpublock){ l, NULL, atoi(line_value(l, next)), -1, -1 };
			nb++;
		} else if (nb && starts(l, "physical id")) {
			blocks[nb - 1].phys = atoi(line_value(l, next));
		} else if (nb && starts(l, "core id")) {
			blocks[nb - 1].core = atoi(line_value(l, next));
		}
		l = next;
	}
	if (!nb)
		return (buf_add(out, host.p, host.len), 0);
	blocks[nb - 1].end = text + host.len;
	buf_add(out, text, first - text); /* lines before the first processor (s390) */

	for (int v = 0; v < c->n; v++) {
		const struct cpublock *b = NULL;
		for (int i = 0; i < nb && !b; i++)
			if (blocks[i].id == c->vis[v])
				b = &blocks[i];
		if (!b)
			continue;
		/* Siblings and cores as the container sees them: visible CPUs of this package. */
		int siblings = 0, ncores = 0, cores[MAXCPU / 8];
		for (int w = 0; w < c->n; w++)
			for (int i = 0; i < nb; i++) {
				if (blocks[i].id != c->vis[w] || blocks[i].phys != b->phys)
					continue;
				siblings++;
				int seen = 0;
				for (int k = 0; k < ncores; k++)
					seen |= cores[k] == blocks[i].core;
				if (!seen && ncores < MAXCPU / 8)
					cores[ncores++] = blocks[i].core;
			}
		for (const char *l = b->start; l < b->end;) {
			const char *nl = memchr(l, '\n', b->end - l);
			const char *next = nl ? nl + 1 : b->end;
			const char *val = line_value(l, next);
			if (starts(l, "processor"))
				buf_printf(out, "%.*s%d\n", (int)(val - l), l, v);
			else if (starts(l, "siblings"))
				buf_printf(out, "%.*s%d\n", (int)(val - l), l, siblings);
			else if (starts(l, "cpu cores"))
				buf_printf(out, "%.*s%d\n", (int)(val - l), l, ncores);
			else
				buf_add(out, l, next - l);
			l = next;
		}
	}
	return 0;
}

/* ---- memory (/proc/meminfo and node0/meminfo) ---- */

/* The container's value for a meminfo key in bytes, or -1 to keep the host's line. */
static long long mem_key(const struct mem *m, const char *k)
{
	const u64 *st = m->st;
	struct {
		const char *key;
		u64 v;
	} t[] = {
		{ "MemTotal", m->total },
		{ "MemFree", m->free },
		{ "MemAvailable", m->avail },
		{ "MemUsed", m->total - m->free },
		{ "Buffers", 0 },
		{ "Cached", st[MS_CACHE] },
		{ "FilePages", st[MS_CACHE] },
		{ "SwapCached", st[MS_SWAPCACHED] },
		{ "Active", st[MS_ACTIVE_ANON] + st[MS_ACTIVE_FILE] },
		{ "Inactive", st[MS_INACTIVE_ANON] + st[MS_INACTIVE_FILE] },
		{ "Active(anon)", st[MS_ACTIVE_ANON] },
		{ "Inactive(anon)", st[MS_INACTIVE_ANON] },
		{ "Active(file)", st[MS_ACTIVE_FILE] },
		{ "Inactive(file)", st[MS_INACTIVE_FILE] },
		{ "Unevictable", st[MS_UNEVICTABLE] },
		{ "Mlocked", 0 },
		{ "SwapTotal", m->swtotal },
		{ "SwapFree", m->swtotal - m->swused },
		{ "Zswap", st[MS_ZSWAP] },
		{ "Zswapped", st[MS_ZSWAPPED] },
		{ "Dirty", st[MS_DIRTY] },
		{ "Writeback", st[MS_WRITEBACK] },
		{ "AnonPages", st[MS_ANON] },
		{ "Mapped", st[MS_MAPPED] },
		{ "Shmem", st[MS_SHMEM] },
		{ "KReclaimable", st[MS_SLAB_RECL] },
		{ "Slab", st[MS_SLAB] },
		{ "SReclaimable", st[MS_SLAB_RECL] },
		{ "SUnreclaim", st[MS_SLAB_UNRECL] },
		{ "KernelStack", st[MS_KSTACK] },
		{ "PageTables", st[MS_PAGETABLES] },
		{ "SecPageTables", st[MS_SECPAGETABLES] },
		{ "NFS_Unstable", 0 },
		{ "Bounce", 0 },
		{ "WritebackTmp", 0 },
		{ "CommitLimit", m->total / 2 + m->swtotal },
		{ "Committed_AS", st[MS_ANON] + st[MS_SHMEM] + m->swused },
		{ "Percpu", st[MS_PERCPU] },
		{ "AnonHugePages", st[MS_ANON_THP] },
		{ "ShmemHugePages", st[MS_SHMEM_THP] },
		{ "ShmemPmdMapped", 0 },
		{ "FileHugePages", st[MS_FILE_THP] },
		{ "FilePmdMapped", 0 },
		{ "Unaccepted", 0 },
	};
	if (!m->have_cg && strcmp(k, "MemTotal") && strcmp(k, "MemFree") && strcmp(k, "MemAvailable"))
		return -1; /* no memory cgroup: the host's lines */
	for (size_t i = 0; i < sizeof t / sizeof *t; i++)
		if (!strcmp(k, t[i].key))
			return (long long)t[i].v;
	return -1;
}

/* Rewrites host meminfo-style text line by line. prefix: "" or "Node 0 ". */
static void meminfo_lines(struct buf *out, const struct mem *m, const char *text, const char *prefix)
{
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		const char *next = nl ? nl + 1 : l + strlen(l);
		const char *key = l;
		if (*prefix && !strncmp(l, "Node ", 5)) {
			/* "Node N Key:" -> key starts after the node number */
			key = strchr(l + 5, ' ');
			key = key ? key + 1 : l;
		}
		const char *colon = memchr(key, ':', next - key);
		char k[64];
		long long v = -1;
		if (colon && colon - key < (long)sizeof k - 1) {
			memcpy(k, key, colon - key);
			k[colon - key] = '\0';
			v = mem_key(m, k);
		}
		if (v >= 0) {
			char label[72];
			snprintf(label, sizeof label, "%s:", k);
			buf_printf(out, "%s%-16s%8llu kB\n", prefix, label, (u64)v / 1024);
		} else {
			buf_puts(out, prefix);
			buf_add(out, key, next - key);
			if (next[-1] != '\n')
				buf_add(out, "\n", 1);
		}
		l = next;
	}
}

static int gen_meminfo(struct buf *out)
{
	static struct buf host;
	struct mem m;
	int r = mem_get(&m, &host);
	if (r < 0)
		return r;
	meminfo_lines(out, &m, host.p, "");
	return 0;
}

static int gen_node_meminfo(const char *hostfile, struct buf *out)
{
	static struct buf host, node;
	struct mem m;
	int r = mem_get(&m, &host);
	if (r < 0)
		return r;
	if (read_file_whole(hostfile, &node) < 0) {
		/* No host node file: the /proc/meminfo keys the node file has. */
		buf_printf(&node, "Node 0 MemTotal: 0 kB\nNode 0 MemFree: 0 kB\nNode 0 MemUsed: 0 kB\n");
	}
	meminfo_lines(out, &m, node.p, "Node 0 ");
	return 0;
}

static int gen_swaps(struct buf *out)
{
	static struct buf host;
	struct mem m;
	int r = mem_get(&m, &host);
	if (r < 0)
		return r;
	buf_puts(out, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
	if (m.swtotal) {
		u64 size = m.swtotal / 1024, used = m.swused / 1024;
		buf_printf(out, "none%*s%s\t%llu\t%s%llu\t%s%d\n", 36, " ", "virtual", size,
			   size < 10000000 ? "\t" : "", used, used < 10000000 ? "\t" : "", -2);
	}
	return 0;
}

/* ---- CPU time: /proc/stat, /proc/uptime ---- */

static int gen_stat(struct buf *out)
{
	static struct buf host;
	static struct cputimes t;
	const struct cpus *c = cpus_get();
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/stat", conf.host_proc);
	int r = read_file_whole(p, &host);
	if (r < 0)
		return r;
	cputimes_get(c, &t);
	buf_printf(out, "cpu  %llu 0 %llu %llu 0 0 0 %llu 0 0\n", t.tuser, t.tsys, t.tidle, t.tsteal);
	for (int v = 0; v < t.n; v++)
		buf_printf(out, "cpu%d %llu 0 %llu %llu 0 0 0 %llu 0 0\n", v, t.user[v], t.sys[v], t.idle[v], t.steal[v]);
	for (const char *l = host.p; *l;) {
		const char *nl = strchr(l, '\n');
		const char *next = nl ? nl + 1 : l + strlen(l);
		if (!strncmp(l, "cpu", 3))
			; /* replaced above */
		else if (!strncmp(l, "procs_running ", 14))
			buf_printf(out, "procs_running %u\n", sh->nr_running ? sh->nr_running : 1);
		else if (!strncmp(l, "procs_blocked ", 14))
			buf_printf(out, "procs_blocked %u\n", sh->nr_blocked);
		else
			buf_add(out, l, next - l);
		l = next;
	}
	return 0;
}

static int gen_uptime(struct buf *out)
{
	static struct cputimes t;
	cputimes_get(cpus_get(), &t);
	buf_printf(out, "%.2f %.2f\n", t.age, t.tidle / (double)USER_HZ);
	return 0;
}

#define FSHIFT 11
#define FIXED_1 (1UL << FSHIFT)
#define LOAD_INT(x) ((x) >> FSHIFT)
#define LOAD_FRAC(x) LOAD_INT(((x) & (FIXED_1 - 1)) * 100)

static int gen_loadavg(struct buf *out)
{
	unsigned long a[3];
	for (int i = 0; i < 3; i++)
		a[i] = sh->avenrun[i] + FIXED_1 / 200;
	unsigned running = sh->nr_running ? sh->nr_running : 1; /* the reader runs */
	unsigned threads = sh->nr_threads > running ? sh->nr_threads : running;
	buf_printf(out, "%lu.%02lu %lu.%02lu %lu.%02lu %u/%u %u\n", LOAD_INT(a[0]), LOAD_FRAC(a[0]), LOAD_INT(a[1]),
		   LOAD_FRAC(a[1]), LOAD_INT(a[2]), LOAD_FRAC(a[2]), running, threads, sh->last_pid);
	return 0;
}

/* ---- /proc/diskstats ---- */

struct iodev {
	unsigned maj, min;
	u64 rios, wios, rbytes, wbytes, dios, dbytes;
};

static struct iodev *iodev_get(struct iodev *d, int *n, int max, unsigned maj, unsigned min)
{
	for (int i = 0; i < *n; i++)
		if (d[i].maj == maj && d[i].min == min)
			return &d[i];
	if (*n >= max)
		return NULL;
	d[*n] = (struct iodev){ .maj = maj, .min = min };
	return &d[(*n)++];
}

static int io_devices(struct iodev *d, int max)
{
	static struct buf b;
	int n = 0;
	if (conf.v2) {
		if (!HAVE_CG(CG_BLKIO) || read_file_whole(cgfile(CG_BLKIO, "io.stat"), &b) < 0)
			return 0;
		for (char *save, *l = strtok_r(b.p, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			unsigned maj, min;
			if (sscanf(l, "%u:%u", &maj, &min) != 2)
				continue;
			struct iodev *x = iodev_get(d, &n, max, maj, min);
			if (!x)
				break;
			const char *f;
			if ((f = strstr(l, "rbytes=")))
				x->rbytes = strtoull(f + 7, NULL, 10);
			if ((f = strstr(l, "wbytes=")))
				x->wbytes = strtoull(f + 7, NULL, 10);
			if ((f = strstr(l, "rios=")))
				x->rios = strtoull(f + 5, NULL, 10);
			if ((f = strstr(l, "wios=")))
				x->wios = strtoull(f + 5, NULL, 10);
			if ((f = strstr(l, "dbytes=")))
				x->dbytes = strtoull(f + 7, NULL, 10);
			if ((f = strstr(l, "dios=")))
				x->dios = strtoull(f + 5, NULL, 10);
		}
		return n;
	}
	if (!HAVE_CG(CG_BLKIO))
		return 0;
	const char *files[2] = { "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive" };
	for (int k = 0; k < 2; k++) {
		if (read_file_whole(cgfile(CG_BLKIO, files[k]), &b) < 0)
			continue;
		for (char *save, *l = strtok_r(b.p, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			unsigned maj, min;
			char op[16];
			u64 v;
			if (sscanf(l, "%u:%u %15s %llu", &maj, &min, op, &v) != 4)
				continue;
			struct iodev *x = iodev_get(d, &n, max, maj, min);
			if (!x)
				break;
			if (!strcmp(op, "Read"))
				*(k ? &x->rios : &x->rbytes) = v;
			else if (!strcmp(op, "Write"))
				*(k ? &x->wios : &x->wbytes) = v;
			else if (!strcmp(op, "Discard"))
				*(k ? &x->dios : &x->dbytes) = v;
		}
	}
	return n;
}

static int gen_diskstats(struct buf *out)
{
	static struct buf host;
	static struct iodev devs[256];
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/diskstats", conf.host_proc);
	int r = read_file(p, &host);
	if (r < 0)
		return r;
	int n = io_devices(devs, 256);
	for (const char *l = host.p; *l;) {
		const char *nl = strchr(l, '\n');
		const char *next = nl ? nl + 1 : l + strlen(l);
		unsigned maj, min;
		char name[64];
		if (sscanf(l, "%u %u %63s", &maj, &min, name) == 3)
			for (int i = 0; i < n; i++) {
				const struct iodev *x = &devs[i];
				if (x->maj != maj || x->min != min || !(x->rios | x->wios | x->dios))
					continue;
				buf_printf(out, "%4u %7u %s %llu 0 %llu 0 %llu 0 %llu 0 0 0 0 %llu 0 %llu 0 0 0\n", maj, min,
					   name, x->rios, x->rbytes / 512, x->wios, x->wbytes / 512, x->dios,
					   x->dbytes / 512);
			}
		l = next;
	}
	return 0;
}

static int gen_pressure(int idx, struct buf *out)
{
	char name[32], p[PATH_MAX];
	snprintf(name, sizeof name, "%s.pressure", pressure_names[idx]);
	if (HAVE_CG(CG_UNIFIED) && read_file_whole(cgfile(CG_UNIFIED, name), out) == 0 && out->len)
		return 0;
	snprintf(p, sizeof p, "%s/pressure/%s", conf.host_proc, pressure_names[idx]);
	return read_file_whole(p, out);
}

/* ---- sysfs lists ---- */

static int gen_xlist(const char *hostfile, int mask, struct buf *out)
{
	static char tmp[MAXCPU * 6];
	static int ids[MAXCPU], virt[MAXCPU];
	ssize_t r = read_small(hostfile, tmp, sizeof tmp);
	if (r < 0)
		return r;
	const struct cpus *c = cpus_get();
	int n = mask ? cpumask_parse(tmp, ids, MAXCPU) : cpulist_parse(tmp, ids, MAXCPU);
	int k = 0;
	for (int v = 0; v < c->n; v++)
		for (int i = 0; i < n; i++)
			if (ids[i] == c->vis[v]) {
				virt[k++] = v;
				break;
			}
	if (mask)
		cpumask_format(out, virt, k, c->n);
	else
		cpulist_format(out, virt, k);
	return 0;
}

int generate(const struct ventry *e, struct buf *out)
{
	static int all[MAXCPU];
	out->len = 0;
	buf_reserve(out, 0);
	out->p[0] = '\0';
	switch (e->gen) {
	case G_PASS:
		return read_file(e->host, out);
	case G_CPUINFO:
		return gen_cpuinfo(out);
	case G_MEMINFO:
		return gen_meminfo(out);
	case G_STAT:
		return gen_stat(out);
	case G_UPTIME:
		return gen_uptime(out);
	case G_LOADAVG:
		return gen_loadavg(out);
	case G_SWAPS:
		return gen_swaps(out);
	case G_DISKSTATS:
		return gen_diskstats(out);
	case G_PRESSURE:
		return gen_pressure(e->arg, out);
	case G_CPULIST_ALL:
	case G_CPUMASK_ALL: {
		const struct cpus *c = cpus_get();
		for (int v = 0; v < c->n; v++)
			all[v] = v;
		if (e->gen == G_CPULIST_ALL)
			cpulist_format(out, all, c->n);
		else
			cpumask_format(out, all, c->n, c->n);
		return 0;
	}
	case G_EMPTY_LIST:
		buf_puts(out, "\n");
		return 0;
	case G_XLIST:
	case G_XMASK:
		return gen_xlist(e->host, e->gen == G_XMASK, out);
	case G_NODE_LIST: {
		char tmp[256];
		ssize_t r = read_small(e->host, tmp, sizeof tmp);
		buf_puts(out, r > 0 && strpbrk(tmp, "0123456789") ? "0\n" : "\n");
		return 0;
	}
	case G_NODE_MEMINFO:
		return gen_node_meminfo(e->host, out);
	case G_DISTANCE:
		buf_puts(out, "10\n");
		return 0;
	}
	return -EIO;
}
