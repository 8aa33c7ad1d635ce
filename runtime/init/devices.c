/* Device nodes in the rootfs: mknod, or (inside user namespaces, where mknod is refused)
 * a bind mount of the host's node onto an empty file. */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static mode_t type_bits(char type)
{
	switch (type) {
	case 'b':
		return S_IFBLK;
	case 'p':
		return S_IFIFO;
	default: /* 'c' and 'u' (unbuffered character device) */
		return S_IFCHR;
	}
}

static int device_mknod(int dir, const char *name, const struct vk_device *d,
			struct vk_error *err)
{
	dev_t dev = d->type == 'p' ? 0 : makedev(d->major, d->minor);

	/* Replace whatever the image put there: the plan's node is authoritative. */
	if (unlinkat(dir, name, 0) < 0 && errno != ENOENT)
		return vk_fail(err, "device", errno, "remove \"%s\"", d->path);
	if (mknodat(dir, name, type_bits(d->type) | d->mode, dev) < 0)
		return vk_fail(err, "device", errno, "mknod \"%s\"", d->path);
	if (fchownat(dir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return vk_fail(err, "device", errno, "chown \"%s\"", d->path);
	return 0;
}

static int device_bind(int rootfd, int dir, const char *name, const struct vk_device *d,
		       struct vk_error *err)
{
	cleanup_close int fd = -1;
	char target[32];

	if (mknodat(dir, name, S_IFREG | 0000, 0) < 0 && errno != EEXIST)
		return vk_fail(err, "device", errno, "create \"%s\"", d->path);
	fd = open_in_root(rootfd, d->path, O_PATH);
	if (fd < 0)
		return vk_fail(err, "device", errno, "open \"%s\" in the rootfs", d->path);
	if (mount(d->path, fd_path(fd, target), NULL, MS_BIND, NULL) < 0)
		return vk_fail(err, "device", errno, "bind host \"%s\"", d->path);
	return 0;
}

int devices_create(struct vk_plan *p, int rootfd, struct vk_error *err)
{
	for (size_t i = 0; i < p->ndevices; i++) {
		const struct vk_device *d = &p->devices[i];
		cleanup_free char *dirpath = strdup(d->path);
		cleanup_close int dir = -1;
		char *slash = dirpath ? strrchr(dirpath, '/') : NULL;
		const char *name;

		if (!slash || !slash[1])
			return vk_fail(err, "device", EINVAL, "device path \"%s\"", d->path);
		name = d->path + (slash - dirpath) + 1;
		slash[slash == dirpath ? 1 : 0] = '\0';
		dir = mkpath_in_root(rootfd, dirpath, false, "device", err);
		if (dir < 0)
			return -1;
		if ((d->bind ? device_bind(rootfd, dir, name, d, err)
			     : device_mknod(dir, name, d, err)) < 0)
			return -1;
	}
	return 0;
}
