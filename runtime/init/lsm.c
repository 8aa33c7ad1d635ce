/* AppArmor profile and SELinux labels for the workload, as runc applies them: written to
 * the task's /proc attr files so that they take effect at the next execve. vkinit only
 * writes what the plan says; TypeScript checked that the host has the LSM. */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

/* Writes `len` bytes of `value` to the first of `paths` that exists. Returns 0 or an
 * errno; *used names the file that was tried last. */
static int write_attr(const char *const *paths, const char *value, size_t len, const char **used)
{
	int e = ENOENT;

	for (; *paths; paths++) {
		int fd = open(*paths, O_WRONLY | O_CLOEXEC);

		*used = *paths;
		if (fd < 0) {
			e = errno;
			if (e == ENOENT)
				continue;
			return e;
		}
		/* One write: the kernel takes the attribute from a single call at offset 0. */
		ssize_t n = write(fd, value, len);
		e = n < 0 ? errno : (size_t)n != len ? EIO : 0;
		close(fd);
		return e;
	}
	return e;
}

/* attr/apparmor/exec since Linux 5.8 (several LSMs side by side); attr/exec before it,
 * and /proc/self when /proc/thread-self is missing (before 3.17). We are single-threaded,
 * so both name this task. */
static const char *const apparmor_exec[] = { "/proc/thread-self/attr/apparmor/exec",
					     "/proc/thread-self/attr/exec", "/proc/self/attr/exec",
					     NULL };
static const char *const selinux_exec[] = { "/proc/thread-self/attr/exec", "/proc/self/attr/exec",
					    NULL };
static const char *const selinux_keycreate[] = { "/proc/thread-self/attr/keycreate",
						 "/proc/self/attr/keycreate", NULL };

int lsm_exec_attrs(struct vk_plan *p, struct vk_error *err)
{
	const char *used = "";
	int e;

	if (p->apparmor_profile) {
		cleanup_free char *cmd = NULL;

		if (asprintf(&cmd, "exec %s", p->apparmor_profile) < 0)
			return vk_fail(err, "apparmor", ENOMEM, "asprintf");
		if ((e = write_attr(apparmor_exec, cmd, strlen(cmd), &used)))
			return vk_fail(err, "apparmor", e,
				       "process.apparmorProfile \"%s\": cannot apply the profile "
				       "(write \"%s\")",
				       p->apparmor_profile, used);
	}
	if (p->selinux_label &&
	    (e = write_attr(selinux_exec, p->selinux_label, strlen(p->selinux_label), &used)))
		return vk_fail(err, "selinux", e,
			       "process.selinuxLabel \"%s\": cannot set the exec label (write \"%s\")",
			       p->selinux_label, used);
	return 0;
}

int lsm_keycreate(struct vk_plan *p, bool set, struct vk_error *err)
{
	const char *used = "";
	int e;

	if (!p->selinux_label)
		return 0;
	/* Clearing is an empty write; like runc, a failure to clear is not an error. */
	if (!set) {
		(void)write_attr(selinux_keycreate, "", 0, &used);
		return 0;
	}
	e = write_attr(selinux_keycreate, p->selinux_label, strlen(p->selinux_label), &used);
	/* No keycreate file: nothing labels keys here (runc ignores it too). */
	if (e == ENOENT)
		return 0;
	if (e)
		return vk_fail(err, "selinux", e,
			       "process.selinuxLabel \"%s\": cannot label the session keyring "
			       "(write \"%s\")",
			       p->selinux_label, used);
	return 0;
}
