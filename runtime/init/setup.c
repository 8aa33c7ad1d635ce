/* Small pieces of the container's environment that runc sets up before the rootfs: the
 * session keyring and the loopback interface of a new network namespace. */
#include "vkinit.h"

#include <errno.h>
#include <linux/keyctl.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/* Without this the container would share the caller's session keyring (a shim's, a
 * login session's) and could read or plant keys in it. As runc: join a keyring named
 * after the container (created on first use, so `exec` processes join the same one) and
 * make it searchable by its owner (or by "other" in a user namespace). */
int keyring_join(struct vk_plan *p, struct vk_error *err)
{
	char desc[512], *perm_s, *end;
	uint64_t perm;
	long id, n;

	/* As runc: a new keyring gets the process's SELinux label; cleared right after. */
	if (lsm_keycreate(p, true, err) < 0)
		return -1;
	id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, p->keyring);
	int saved = errno;
	lsm_keycreate(p, false, err);
	errno = saved;
	/* A kernel without keyrings has none to leak: best effort, as runc. */
	if (id < 0 && errno == ENOSYS)
		return 0;
	/* EDQUOT is not ignored (runc neither): running on in the caller's keyring would
	 * silently drop the isolation. */
	if (id < 0)
		return vk_fail(err, "keyring", errno, "join session keyring \"%s\"%s", p->keyring,
			       errno == EDQUOT ? " (raise kernel.keys.maxkeys and maxbytes, or use "
						 "--no-new-keyring)"
					       : "");
	if (!p->keyring_perm)
		return 0;
	/* "type;uid;gid;perm;description", perm in hex; the description may be cut. */
	n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof desc);
	if (n < 0)
		return vk_fail(err, "keyring", errno, "describe session keyring \"%s\"", p->keyring);
	desc[sizeof desc - 1] = '\0';
	perm_s = desc;
	for (int i = 0; i < 3 && perm_s; i++)
		if ((perm_s = strchr(perm_s, ';')))
			perm_s++;
	end = perm_s ? strchr(perm_s, ';') : NULL;
	if (!end)
		return vk_fail(err, "keyring", EINVAL, "unexpected key description \"%s\"", desc);
	*end = '\0';
	if (parse_u64(perm_s, 16, &perm) < 0 || perm > UINT32_MAX)
		return vk_fail(err, "keyring", EINVAL, "unexpected key permissions \"%s\"", perm_s);
	if (syscall(SYS_keyctl, KEYCTL_SETPERM, id, (uint32_t)perm | p->keyring_perm) < 0)
		return vk_fail(err, "keyring", errno, "set permissions of session keyring \"%s\"",
			       p->keyring);
	return 0;
}

/* A new network namespace starts with "lo" down; runc brings it up (its "loopback"
 * network), so 127.0.0.1 works in every container. */
int loopback_set_up(struct vk_error *err)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return vk_fail(err, "network", errno, "socket for interface ioctls");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return vk_fail(err, "network", errno, "get the flags of \"lo\"");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return vk_fail(err, "network", errno, "bring \"lo\" up");
	return 0;
}
