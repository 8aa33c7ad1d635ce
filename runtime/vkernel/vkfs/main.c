/*
 * vkfs command line.
 *
 *   vkfs serve --config FILE --mount DIR [--pidfile FILE] [--ready-fd N]
 *       mount the view at DIR and serve it (keeper + worker); "ok PID" or "error: ..."
 *       is written to the ready fd once the file system answers.
 *   vkfs cat --config FILE [--repeat N] VPATH...
 *       print generated files (tests, debugging); with --repeat, time generation instead
 *   vkfs ls --config FILE VPATH         list a directory: "d|f|l NAME" lines
 *   vkfs snapshot --config FILE --out DIR [--tmpfs]
 *       write the whole view as plain files (the no-FUSE fallback); rewrites files in
 *       place, because containers bind-mount the files themselves
 *   vkfs umount DIR                     lazy-unmount everything stacked on DIR
 *   vkfs readbench [--rounds R] [--count N] FILE...
 *       open+read+close timings (median p10 p90 samples, microseconds) per file; the
 *       files take turns each round so load changes hit them alike (bench/vkernel-files.ts)
 *   vkfs probe                          "fuse ok" when /dev/fuse can be opened
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "vkfs.h"

static int usage(void)
{
	fprintf(stderr, "usage: vkfs serve --config FILE --mount DIR [--pidfile FILE] [--ready-fd N]\n"
			"       vkfs cat --config FILE VPATH...\n"
			"       vkfs ls --config FILE VPATH\n"
			"       vkfs snapshot --config FILE --out DIR [--tmpfs]\n"
			"       vkfs umount DIR\n"
			"       vkfs readbench [--rounds R] [--count N] FILE...\n"
			"       vkfs probe\n");
	return 2;
}

static int init_local(const char *config)
{
	int r = conf_load(config);
	if (r < 0) {
		fprintf(stderr, "vkfs: config %s: %s\n", config, strerror(-r));
		return -1;
	}
	if (!shared_create()) {
		perror("vkfs: mmap");
		return -1;
	}
	facts_reset();
	return 0;
}

static double mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Generation cost alone (no FUSE): median microseconds over `repeat` runs, on stderr. */
static void time_generate(const char *vp, int repeat)
{
	static double t[10000];
	struct buf b = { 0 };
	struct ventry e;
	if (repeat > 10000)
		repeat = 10000;
	for (int i = 0; i < repeat; i++) {
		double s = mono_us();
		facts_reset();
		conf_maybe_reload();
		if (classify(vp, &e) == 0)
			generate(&e, &b);
		t[i] = mono_us() - s;
	}
	for (int i = 1; i < repeat; i++) /* insertion sort: small n */
		for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
			double x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	fprintf(stderr, "%s: generate median %.1f us\n", vp, t[repeat / 2]);
	buf_free(&b);
}

static int cmd_cat(const char *config, char **paths, int n, int repeat)
{
	if (init_local(config) < 0)
		return 1;
	loadavg_tick(); /* one sample, as a worker has after its first 5 s */
	struct buf b = { 0 };
	struct ventry e;
	int rc = 0;
	for (int i = 0; i < n; i++) {
		int r = classify(paths[i], &e);
		if (r == 0 && e.kind != VK_FILE)
			r = -EISDIR;
		if (r == 0)
			r = generate(&e, &b);
		if (r < 0) {
			fprintf(stderr, "vkfs: %s: %s\n", paths[i], strerror(-r));
			rc = 1;
			continue;
		}
		if (repeat > 1)
			time_generate(paths[i], repeat);
		else
			fwrite(b.p, 1, b.len, stdout);
	}
	return rc;
}

static void print_entry(void *ctx, const char *name, const struct ventry *e)
{
	(void)ctx;
	printf("%c %s\n", e->kind == VK_DIR ? 'd' : e->kind == VK_LINK ? 'l' : 'f', name);
}

static int cmd_ls(const char *config, const char *vp)
{
	if (init_local(config) < 0)
		return 1;
	struct ventry e;
	if (classify(vp, &e) < 0 || e.kind != VK_DIR) {
		fprintf(stderr, "vkfs: %s: not a directory\n", vp);
		return 1;
	}
	int r = list_dir(vp, &e, print_entry, NULL);
	if (r < 0) {
		fprintf(stderr, "vkfs: %s: %s\n", vp, strerror(-r));
		return 1;
	}
	return 0;
}

/* ---- snapshot ---- */

struct names {
	struct buf b;
	int n;
	char kinds[4096];
};

static void collect_name(void *ctx, const char *name, const struct ventry *e)
{
	struct names *ns = ctx;
	if (ns->n >= (int)sizeof ns->kinds)
		return;
	ns->kinds[ns->n++] = (char)e->kind;
	buf_add(&ns->b, name, strlen(name) + 1);
}

static int rm_rf(const char *p)
{
	struct stat st;
	if (lstat(p, &st) < 0)
		return 0;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(p);
		if (d) {
			struct dirent *de;
			while ((de = readdir(d))) {
				if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
					continue;
				char c[PATH_MAX];
				snprintf(c, sizeof c, "%s/%s", p, de->d_name);
				rm_rf(c);
			}
			closedir(d);
		}
		return rmdir(p);
	}
	return unlink(p);
}

/* Overwrites in place: a container has this very inode bind-mounted. */
static int write_inplace(const char *p, const struct buf *b)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < b->len) {
		ssize_t n = pwrite(fd, b->p + off, b->len - off, off);
		if (n <= 0)
			break;
		off += n;
	}
	int r = ftruncate(fd, b->len);
	close(fd);
	return r < 0 ? -errno : 0;
}

static int snap_dir(const char *vp, const char *out, int depth)
{
	struct ventry e;
	struct names ns = { 0 };
	int errors = 0;
	if (classify(vp, &e) < 0 || e.kind != VK_DIR)
		return 1;
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "vkfs: mkdir %s: %s\n", out, strerror(errno));
		return 1;
	}
	list_dir(vp, &e, collect_name, &ns);
	static struct buf content;
	const char *name = ns.b.p;
	for (int i = 0; i < ns.n; i++, name += strlen(name) + 1) {
		char cvp[PATH_MAX], cout[PATH_MAX];
		snprintf(cvp, sizeof cvp, "%s%s%s", vp, *vp ? "/" : "", name);
		snprintf(cout, sizeof cout, "%s/%s", out, name);
		struct stat st;
		int have = lstat(cout, &st) == 0;
		switch (ns.kinds[i]) {
		case VK_DIR:
			if (have && !S_ISDIR(st.st_mode))
				rm_rf(cout);
			if (depth < 12)
				errors += snap_dir(cvp, cout, depth + 1);
			break;
		case VK_FILE:
			if (have && !S_ISREG(st.st_mode))
				rm_rf(cout);
			if (classify(cvp, &e) < 0 || generate(&e, &content) < 0)
				content.len = 0; /* unreadable host file (write-only knobs): empty */
			errors += write_inplace(cout, &content) < 0;
			break;
		case VK_LINK: {
			char target[PATH_MAX], cur[PATH_MAX];
			if (classify(cvp, &e) < 0)
				break;
			if (e.link[0]) {
				snprintf(target, sizeof target, "%s", e.link);
			} else {
				ssize_t n = readlink(e.host, target, sizeof target - 1);
				if (n < 0)
					break;
				target[n] = '\0';
			}
			ssize_t n = have ? readlink(cout, cur, sizeof cur - 1) : -1;
			if (n >= 0 && (cur[n] = '\0', !strcmp(cur, target)))
				break;
			if (have)
				rm_rf(cout);
			errors += symlink(target, cout) < 0;
			break;
		}
		}
	}
	/* Drop what the view no longer has (CPUs that left the cpuset). */
	DIR *d = opendir(out);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			int keep = 0;
			name = ns.b.p;
			for (int i = 0; i < ns.n && !keep; i++, name += strlen(name) + 1)
				keep = !strcmp(name, de->d_name);
			if (!keep) {
				char c[PATH_MAX];
				snprintf(c, sizeof c, "%s/%s", out, de->d_name);
				rm_rf(c);
			}
		}
		closedir(d);
	}
	buf_free(&ns.b);
	return errors;
}

static int cmd_snapshot(const char *config, const char *out, int tmpfs)
{
	if (init_local(config) < 0)
		return 1;
	loadavg_tick();
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "vkfs: mkdir %s: %s\n", out, strerror(errno));
		return 1;
	}
	struct statfs sf;
	if (tmpfs && statfs(out, &sf) == 0 && sf.f_type != TMPFS_MAGIC &&
	    mount("tmpfs", out, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=16m") < 0)
		fprintf(stderr, "vkfs: tmpfs on %s: %s (writing plain files)\n", out, strerror(errno));
	int errors = snap_dir("", out, 0);
	if (errors)
		fprintf(stderr, "vkfs: snapshot: %d entries could not be written\n", errors);
	return 0;
}

/* ---- readbench: open+read+close timings, files interleaved round by round ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmd_readbench(char **files, int n, int rounds, int count)
{
	static char buf[1 << 17];
	double *t = calloc((size_t)n * rounds * count, sizeof *t);
	if (!t)
		return 1;
	for (int r = 0; r < rounds; r++)
		for (int f = 0; f < n; f++)
			for (int i = 0; i < count; i++) {
				double s = mono_us();
				int fd = open(files[f], O_RDONLY | O_CLOEXEC);
				if (fd < 0) {
					fprintf(stderr, "vkfs: open %s: %s\n", files[f], strerror(errno));
					return 1;
				}
				ssize_t k;
				while ((k = read(fd, buf, sizeof buf)) > 0)
					;
				close(fd);
				if (k < 0) {
					fprintf(stderr, "vkfs: read %s: %s\n", files[f], strerror(errno));
					return 1;
				}
				t[((size_t)f * rounds + r) * count + i] = mono_us() - s;
			}
	for (int f = 0; f < n; f++) {
		double *x = t + (size_t)f * rounds * count;
		size_t m = (size_t)rounds * count;
		qsort(x, m, sizeof *x, cmp_double);
		printf("%s %.1f %.1f %.1f %zu\n", files[f], x[m / 2], x[m / 10], x[m * 9 / 10], m);
	}
	free(t);
	return 0;
}

static int cmd_umount(const char *dir)
{
	int n = 0;
	while (n < 16 && umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
		n++;
	if (n == 0 && errno != EINVAL && errno != ENOENT) {
		fprintf(stderr, "vkfs: umount %s: %s\n", dir, strerror(errno));
		return 1;
	}
	return 0;
}

static int cmd_probe(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("fuse unavailable: %s\n", strerror(errno));
		return 1;
	}
	close(fd);
	printf("fuse ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1], *config = NULL, *mount = NULL, *pidfile = NULL, *out = NULL;
	int ready_fd = -1, tmpfs = 0, npos = 0, repeat = 0, rounds = 0;
	char *pos[64];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(a, "--mount") && i + 1 < argc)
			mount = argv[++i];
		else if (!strcmp(a, "--pidfile") && i + 1 < argc)
			pidfile = argv[++i];
		else if (!strcmp(a, "--ready-fd") && i + 1 < argc)
			ready_fd = atoi(argv[++i]);
		else if (!strcmp(a, "--out") && i + 1 < argc)
			out = argv[++i];
		else if ((!strcmp(a, "--repeat") || !strcmp(a, "--count")) && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (!strcmp(a, "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(a, "--tmpfs"))
			tmpfs = 1;
		else if (npos < 64)
			pos[npos++] = argv[i];
	}
	if (!strcmp(cmd, "serve") && config && mount)
		return serve_main(config, mount, pidfile, ready_fd);
	if (!strcmp(cmd, "cat") && config && npos)
		return cmd_cat(config, pos, npos, repeat);
	if (!strcmp(cmd, "ls") && config && npos == 1)
		return cmd_ls(config, pos[0]);
	if (!strcmp(cmd, "snapshot") && config && out)
		return cmd_snapshot(config, out, tmpfs);
	if (!strcmp(cmd, "umount") && npos == 1)
		return cmd_umount(pos[0]);
	if (!strcmp(cmd, "probe"))
		return cmd_probe();
	if (!strcmp(cmd, "readbench") && npos)
		return cmd_readbench(pos, npos, rounds > 0 ? rounds : 10, repeat > 0 ? repeat : 200);
	return usage();
}
