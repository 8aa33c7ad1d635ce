/* The rootfs: mounts resolved safely inside it, pivot_root, and the after-pivot steps
 * (sysctl, read-only root, readonly and masked paths). */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

/* Resolve `path` with the rootfs as "/": absolute symlinks and ".." stay inside, and
 * /proc magic links in the rootfs are refused. */
int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	/* EAGAIN: a concurrent rename or mount was seen; the kernel asks to retry. */
	for (int i = 0; i < 16; i++) {
		fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return (int)fd;
}

/* `comp` (in `parent`, ending the prefix `buf`) is a symlink whose target is missing: the
 * path to create instead, the target in place of the link and `rest` after it. Relative
 * targets count from the link's directory; absolute ones and ".." stay in the rootfs,
 * since every later lookup is RESOLVE_IN_ROOT. NULL when it is no symlink. */
static char *through_link(int parent, const char *buf, const char *comp, const char *rest)
{
	char target[4096];
	ssize_t n = readlinkat(parent, comp, target, sizeof target - 1);
	int dirlen = (int)(comp - buf);
	char *out;

	if (n <= 0)
		return NULL;
	target[n] = '\0';
	if (asprintf(&out, "%.*s/%s/%s", target[0] == '/' ? 0 : dirlen, buf, target, rest) < 0)
		return NULL;
	return out;
}

/* Open `path` in the root, creating missing components (directories, and the last one
 * as an empty file when `file`). Each component is created inside its parent as
 * resolved in-root, so a symlink in the way cannot lead the creation outside; a dangling
 * one gets its target created (inside the rootfs), as runc's securejoin + MkdirAll. */
int mkpath_in_root(int rootfd, const char *path, bool file, const char *step,
		   struct vk_error *err)
{
	cleanup_free char *buf = NULL;
	cleanup_close int parent = -1;
	int links = 0;
	char *comp;
	int fd;

	fd = open_in_root(rootfd, path, O_PATH);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : vk_fail(err, step, errno, "open \"%s\" in the rootfs", path);
	buf = strdup(path);
	if (!buf)
		return vk_fail(err, step, ENOMEM, "strdup");
restart:
	if (parent >= 0)
		close(parent);
	parent = open_in_root(rootfd, "/", O_PATH);
	if (parent < 0)
		return vk_fail(err, step, errno, "open the rootfs");
	comp = buf;
	for (;;) {
		char *end, *next, saved;
		bool last;
		int cur;

		while (*comp == '/')
			comp++;
		if (!*comp)
			break;
		end = strchrnul(comp, '/');
		for (next = end; *next == '/'; next++)
			;
		last = !*next;
		saved = *end;
		*end = '\0';
		/* buf now holds the prefix up to and including comp. */
		cur = open_in_root(rootfd, buf, O_PATH);
		if (cur < 0 && errno == ENOENT) {
			int r = last && file ? mknodat(parent, comp, S_IFREG | 0644, 0)
					     : mkdirat(parent, comp, 0755);
			if (r < 0 && errno != EEXIST)
				return vk_fail(err, step, errno, "create \"%s\" in the rootfs", buf);
			cur = open_in_root(rootfd, buf, O_PATH);
			if (cur < 0 && errno == ENOENT && r < 0) {
				char *redirected = through_link(parent, buf, comp, next);
				if (redirected) {
					free(buf);
					buf = redirected;
					if (++links > 40)
						return vk_fail(err, step, ELOOP,
							       "create \"%s\" in the rootfs", path);
					goto restart;
				}
				errno = ENOENT;
			}
		}
		if (cur < 0)
			return vk_fail(err, step, errno, "open \"%s\" in the rootfs", buf);
		close(parent);
		parent = cur;
		*end = saved;
		comp = end;
	}
	return take_fd(&parent);
}

/* pivot_root refuses a shared parent mount; like runc, make just that mount private. */
static int make_parent_private(const char *rootfs, struct vk_error *err)
{
	cleanup_free char *info = NULL;
	char best[4096] = "", best_opt[512] = "";
	size_t len, bestlen = 0;

	if (read_file("/proc/self/mountinfo", &info, &len) < 0)
		return vk_fail(err, "rootfs", errno, "read /proc/self/mountinfo");
	for (char *line = info, *nl; line < info + len; line = nl + 1) {
		char mp[4096], opt[512];
		size_t n, i, j;

		nl = memchr(line, '\n', (size_t)(info + len - line));
		if (!nl)
			break;
		*nl = '\0';
		/* id parent maj:min root mountpoint options optional... - */
		opt[0] = '\0';
		if (sscanf(line, "%*s %*s %*s %*s %4095s %*s %511[^-]", mp, opt) < 1)
			continue;
		/* Undo mountinfo's octal escapes (\040 for a space, ...). */
		for (i = j = 0; mp[i]; j++) {
			if (mp[i] == '\\' && mp[i + 1] && mp[i + 2] && mp[i + 3]) {
				mp[j] = (char)((mp[i + 1] - '0') * 64 + (mp[i + 2] - '0') * 8 +
					       (mp[i + 3] - '0'));
				i += 4;
			} else {
				mp[j] = mp[i++];
			}
		}
		mp[j] = '\0';
		n = strlen(mp);
		if (strncmp(rootfs, mp, n) ||
		    (n > 1 && rootfs[n] != '/' && rootfs[n] != '\0') || n < bestlen)
			continue;
		bestlen = n;
		strcpy(best, mp);
		strcpy(best_opt, opt);
	}
	if (!bestlen || !strstr(best_opt, "shared:"))
		return 0;
	if (mount(NULL, best, NULL, MS_PRIVATE, NULL) < 0)
		return vk_fail(err, "rootfs", errno, "make \"%s\" private", best);
	return 0;
}

int rootfs_prepare(struct vk_plan *p, int *rootfd, struct vk_error *err)
{
	char real[4096];

	if (!realpath(p->rootfs, real))
		return vk_fail(err, "rootfs", errno, "rootfs \"%s\"", p->rootfs);
	if (mount(NULL, "/", NULL, p->root_propagation, NULL) < 0)
		return vk_fail(err, "rootfs", errno, "set propagation 0x%lx on /",
			       p->root_propagation);
	if (make_parent_private(real, err) < 0)
		return -1;
	/* pivot_root needs a mount point; the fd below refers to this bind mount. */
	if (mount(real, real, NULL, MS_BIND | MS_REC, NULL) < 0)
		return vk_fail(err, "rootfs", errno, "bind \"%s\" onto itself", real);
	*rootfd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*rootfd < 0)
		return vk_fail(err, "rootfs", errno, "open \"%s\"", real);
	return 0;
}

/* Flags a mount in a user namespace cannot drop (MNT_LOCK_*): keep what the source has. */
static unsigned long locked_flags(const char *path, unsigned long requested)
{
	const unsigned long atime = MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
	unsigned long flags = 0;
	struct statvfs sv;

	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	if (sv.f_flag & ST_RDONLY)
		flags |= MS_RDONLY;
	if (!(requested & atime)) {
		if (sv.f_flag & ST_NOATIME)
			flags |= MS_NOATIME;
		if (sv.f_flag & ST_NODIRATIME)
			flags |= MS_NODIRATIME;
		if (sv.f_flag & ST_RELATIME)
			flags |= MS_RELATIME;
	}
	return flags;
}

static int mount_one(int rootfd, const struct vk_mount *m, const char *mount_label, struct vk_error *err)
{
	const unsigned long bind_only = MS_BIND | MS_REC;
	const unsigned long propagation = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE;
	bool bind = m->flags & MS_BIND;
	unsigned long flags = m->flags & ~propagation;
	cleanup_close int fd = mkpath_in_root(rootfd, m->dest, m->file, "mount", err);
	cleanup_close int top = -1;
	char target[32];

	if (fd < 0)
		return -1;
	/* A bind ignores every flag but MS_REC; the rest needs the remount below. */
	if (mount(m->source, fd_path(fd, target), bind ? NULL : m->fstype,
		  bind ? flags & bind_only : flags, bind || !*m->data ? NULL : m->data) < 0)
		return vk_fail(err, "mount", errno, "mount \"%s\" on \"%s\"", m->source, m->dest);
	/* The fd still names the covered directory: reopen to reach the new mount. */
	top = open_in_root(rootfd, m->dest, O_PATH);
	if (top < 0)
		return vk_fail(err, "mount", errno, "reopen \"%s\"", m->dest);
	fd_path(top, target);
	/* mqueue takes no context= (its superblock came with the IPC namespace): label its root
	 * instead, as runc does. setxattr follows the /proc/self/fd link to the mount. */
	if (mount_label && !bind && !strcmp(m->fstype, "mqueue") &&
	    setxattr(target, "security.selinux", mount_label, strlen(mount_label), 0) < 0)
		return vk_fail(err, "mount", errno, "linux.mountLabel \"%s\": cannot label \"%s\"", mount_label, m->dest);
	if (bind && (flags & ~bind_only)) {
		unsigned long rflags = flags | MS_REMOUNT | MS_BIND;
		int r = mount(NULL, target, NULL, rflags, NULL);
		/* EPERM: a locked flag of the source was dropped (user namespace); runc keeps
		 * those and retries. */
		if (r < 0 && errno == EPERM)
			r = mount(NULL, target, NULL, rflags | locked_flags(m->source, flags), NULL);
		if (r < 0)
			return vk_fail(err, "mount", errno, "remount \"%s\" on \"%s\" (flags 0x%lx)",
				       m->source, m->dest, flags);
	}
	for (size_t i = 0; i < m->nprop; i++)
		if (mount(NULL, target, NULL, m->prop[i], NULL) < 0)
			return vk_fail(err, "mount", errno, "set propagation 0x%lx on \"%s\"",
				       m->prop[i], m->dest);
	return 0;
}

int rootfs_mounts(struct vk_plan *p, int rootfd, struct vk_error *err)
{
	for (size_t i = 0; i < p->nmounts; i++)
		if (mount_one(rootfd, &p->mounts[i], p->mount_label, err) < 0)
			return -1;
	return 0;
}

/* Split "/a/b/name" into a copy of the directory and a pointer to the name. */
static char *split_path(const char *path, const char **name)
{
	char *dir = strdup(path);
	char *slash;

	if (!dir)
		return NULL;
	slash = strrchr(dir, '/');
	if (!slash) {
		*name = path;
		strcpy(dir, "/");
		return dir;
	}
	*name = path + (slash - dir) + 1;
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return dir;
}

int rootfs_symlinks(struct vk_plan *p, int rootfd, struct vk_error *err)
{
	for (size_t i = 0; i < p->nsymlinks; i++) {
		const char *target = p->symlinks[i].a, *link = p->symlinks[i].b, *name;
		cleanup_free char *dir = split_path(link, &name);
		cleanup_close int dfd = -1;

		if (!dir)
			return vk_fail(err, "symlink", ENOMEM, "strdup");
		dfd = mkpath_in_root(rootfd, dir, false, "symlink", err);
		if (dfd < 0)
			return -1;
		if (symlinkat(target, dfd, name) < 0 && errno != EEXIST)
			return vk_fail(err, "symlink", errno, "symlink \"%s\" -> \"%s\"", link, target);
	}
	return 0;
}

/* pivot_root(".", ".") stacks the old root on the new one; detaching it (after making it
 * a slave so the unmount cannot propagate to the host) leaves only the container. */
static int do_pivot(struct vk_error *err)
{
	/* After pivot_root(".", ".") the old root is stacked under the new one, and "."
	 * names the new root: go back to the old root through an fd taken before, so
	 * MS_SLAVE and the detach apply to it and not to the container's own mounts
	 * (whose propagation, e.g. "shared", must survive). */
	cleanup_close int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);

	if (oldroot < 0)
		return vk_fail(err, "pivot_root", errno, "open the old root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return vk_fail(err, "pivot_root", errno, "pivot_root");
	if (fchdir(oldroot) < 0)
		return vk_fail(err, "pivot_root", errno, "chdir to the old root");
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return vk_fail(err, "pivot_root", errno, "make the old root a slave");
	if (umount2(".", MNT_DETACH) < 0)
		return vk_fail(err, "pivot_root", errno, "detach the old root");
	return 0;
}

/* no_pivot (e.g. a rootfs on ramfs): move the rootfs over / and chroot. */
static int do_move_root(struct vk_plan *p, struct vk_error *err)
{
	char real[4096];

	if (!realpath(p->rootfs, real))
		return vk_fail(err, "pivot_root", errno, "rootfs \"%s\"", p->rootfs);
	if (mount(real, "/", NULL, MS_MOVE, NULL) < 0)
		return vk_fail(err, "pivot_root", errno, "move \"%s\" to /", real);
	if (chroot(".") < 0)
		return vk_fail(err, "pivot_root", errno, "chroot");
	return 0;
}

int rootfs_pivot(struct vk_plan *p, int rootfd, struct vk_error *err)
{
	if (fchdir(rootfd) < 0)
		return vk_fail(err, "pivot_root", errno, "chdir to the rootfs");
	if ((p->no_pivot ? do_move_root(p, err) : do_pivot(err)) < 0)
		return -1;
	if (chdir("/") < 0)
		return vk_fail(err, "pivot_root", errno, "chdir /");
	return 0;
}

int rootfs_sysctl(struct vk_plan *p, struct vk_error *err)
{
	cleanup_close int dir = -1;

	if (!p->nsysctls)
		return 0;
	dir = open("/proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return vk_fail(err, "sysctl", errno, "open /proc/sys");
	for (size_t i = 0; i < p->nsysctls; i++) {
		struct open_how how = {
			.flags = O_WRONLY | O_CLOEXEC | O_TRUNC,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
		};
		const char *key = p->sysctls[i].a, *val = p->sysctls[i].b;
		cleanup_close int fd = (int)syscall(SYS_openat2, dir, key, &how, sizeof how);

		if (fd < 0 || write_all(fd, val, strlen(val)) < 0)
			return vk_fail(err, "sysctl", errno, "write \"%s\" to /proc/sys/%s", val, key);
	}
	return 0;
}

static int remount_ro(const char *path, struct vk_error *err, const char *step)
{
	unsigned long flags = locked_flags(path, 0) | MS_BIND | MS_REMOUNT | MS_RDONLY;

	if (mount(NULL, path, NULL, flags, NULL) < 0)
		return vk_fail(err, step, errno, "remount \"%s\" read-only", path);
	return 0;
}

/* After pivot_root "/" is the container, so plain paths cannot leave it. */
static int readonly_path(const char *path, struct vk_error *err)
{
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
		if (errno == ENOENT)
			return 0;
		return vk_fail(err, "readonly", errno, "bind \"%s\"", path);
	}
	return remount_ro(path, err, "readonly");
}

static int mask_path(const char *path, struct vk_error *err)
{
	struct stat st;
	int r;

	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : vk_fail(err, "masked", errno, "stat \"%s\"", path);
	if (S_ISDIR(st.st_mode))
		r = mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL);
	else
		r = mount("/dev/null", path, NULL, MS_BIND, NULL);
	if (r < 0)
		return vk_fail(err, "masked", errno, "mask \"%s\"", path);
	return 0;
}

/* Root read-only, then readonly paths, then masked paths (runc's order: a masked path
 * under a readonly one stays masked). */
int rootfs_finalize(struct vk_plan *p, struct vk_error *err)
{
	if (p->root_readonly && remount_ro("/", err, "root_readonly") < 0)
		return -1;
	for (size_t i = 0; i < p->nreadonly; i++)
		if (readonly_path(p->readonly[i], err) < 0)
			return -1;
	for (size_t i = 0; i < p->nmasked; i++)
		if (mask_path(p->masked[i], err) < 0)
			return -1;
	return 0;
}
