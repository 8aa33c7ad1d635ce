/* The workload's process attributes (cwd, rlimits, identity, capabilities, umask,
 * no_new_privs, seccomp), the executable lookup, and execve. */
#include "vkinit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static int mkdir_p(const char *path)
{
	cleanup_free char *buf = strdup(path);

	if (!buf)
		return -1;
	for (char *s = buf + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* A cwd that resolves outside the root (a leaked host fd as in CVE-2024-21626) shows up
 * in getcwd as "(unreachable)/..." or fails with ENOENT. */
static int setup_cwd(struct vk_plan *p, bool create_mode, struct vk_error *err)
{
	char buf[4096];

	if (chdir(p->cwd) < 0) {
		/* Like runc, create a missing cwd in a new container (we are root here). */
		if (errno != ENOENT || !create_mode || mkdir_p(p->cwd) < 0 || chdir(p->cwd) < 0)
			return vk_fail(err, "cwd", errno, "chdir \"%s\"", p->cwd);
	}
	errno = 0;
	if (!getcwd(buf, sizeof buf) || buf[0] != '/')
		return vk_fail(err, "cwd", errno ? errno : EPERM,
			       "cwd \"%s\" is outside the container root", p->cwd);
	return 0;
}

static int setup_rlimits(struct vk_plan *p, struct vk_error *err)
{
	for (size_t i = 0; i < p->nrlimits; i++) {
		struct rlimit rl = { .rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard };
		if (setrlimit((__rlimit_resource_t)p->rlimits[i].resource, &rl) < 0)
			return vk_fail(err, "rlimit", errno, "setrlimit %d (soft %llu, hard %llu)",
				       p->rlimits[i].resource, (unsigned long long)rl.rlim_cur,
				       (unsigned long long)rl.rlim_max);
	}
	return 0;
}

static int load_seccomp(struct vk_plan *p, struct vk_error *err)
{
	struct sock_fprog prog = {
		.len = (unsigned short)(p->seccomp_len / sizeof(struct sock_filter)),
		.filter = p->seccomp_prog,
	};

	long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &prog);

	if (listener < 0)
		return vk_fail(err, "seccomp", errno, "load \"%s\" (flags 0x%x)", p->seccomp_path,
			       p->seccomp_flags);
	if (!p->seccomp_listener)
		return 0;
	/* The filter is live, so every syscall from here may be trapped: one sendmsg hands
	 * the agent its message and the listener (validation refuses NOTIFY for sendmsg,
	 * which would wait for an agent that has no fd yet), then execve. Both fds are
	 * close-on-exec; they are not closed here to spare the syscalls. */
	if (send_fd(p->agent_fd, (int)listener, p->agent_msg) < 0)
		return vk_fail(err, "seccomp", errno, "send the listener fd to the agent \"%s\"",
			       p->seccomp_listener);
	return 0;
}

/* The vkernel syscall filter: the last filter, loaded right before execve (or right after
 * the container's own one while still privileged when there is no no_new_privs). Never
 * fatal: EBUSY means another listener already exists in this task's filter chain (the
 * container's profile uses SCMP_ACT_NOTIFY); the runtime then picks its ptrace or
 * LD_PRELOAD fallback instead (runtime/vkernel/syscalls.ts) and does not send this record.
 * Flags without NEW_LISTENER load the filter and hand nothing to the agent. */
static void load_vkernel_filter(struct vk_plan *p)
{
	if (!p->vk_filter_prog || p->vk_agent_fd < 0)
		return;
	struct sock_fprog prog = {
		.len = (unsigned short)(p->vk_filter_len / sizeof(struct sock_filter)),
		.filter = p->vk_filter_prog,
	};
	unsigned int flags = p->vk_filter_flags;
	long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
#ifdef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	if (listener < 0 && errno == EINVAL && (flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)) {
		flags &= ~SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV; /* before 5.19 */
		listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	}
#endif
	if (listener < 0) {
		fprintf(stderr, "vkinit: vkernel: notify filter not loaded (%s%s): syscall view off\n",
			strerror(errno), errno == EBUSY ? ", the container already has a seccomp listener" : "");
		p->vk_filter_prog = NULL;
		return;
	}
	if (!(flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)) {
		/* A filter without a listener (seccomp returned 0, not an fd): nothing to hand
		 * over, and closing "the listener" would close our stdin. */
		close(p->vk_agent_fd);
		p->vk_agent_fd = -1;
		p->vk_filter_prog = NULL;
		return;
	}
	/* The OCI agent message, with the pid unknown here (the agent uses the caller's). */
	char msg[8192];
	size_t o = 0;
	o += (size_t)snprintf(msg, sizeof msg, "{\"ociVersion\":\"1.0.2\",\"fds\":[\"seccompFd\"],\"pid\":0,\"metadata\":\"");
	for (const char *s = p->vk_metadata; *s && o + 8 < sizeof msg; s++) {
		if (*s == '"' || *s == '\\')
			msg[o++] = '\\';
		msg[o++] = *s;
	}
	snprintf(msg + o, sizeof msg - o, "\"}");
	if (send_fd(p->vk_agent_fd, (int)listener, msg) < 0) {
		/* Nobody will answer: the trapped calls would get ENOSYS once the fd closes at exec. */
		fprintf(stderr, "vkinit: vkernel: send the listener to the agent: %s\n", strerror(errno));
	}
	close((int)listener);
	close(p->vk_agent_fd);
	p->vk_agent_fd = -1;
	p->vk_filter_prog = NULL;
}

static int drop_bounding(struct vk_plan *p, struct vk_error *err)
{
	for (int cap = 0; cap <= p->last_cap; cap++) {
		if (p->cap_bounding & (1ULL << cap))
			continue;
		/* EINVAL: the kernel does not know this cap, so nobody can hold it. */
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return vk_fail(err, "caps", errno, "drop capability %d from the bounding set",
				       cap);
	}
	return 0;
}

static int apply_caps(struct vk_plan *p, struct vk_error *err)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(p->cap_effective >> (32 * i));
		data[i].permitted = (uint32_t)(p->cap_permitted >> (32 * i));
		data[i].inheritable = (uint32_t)(p->cap_inheritable >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return vk_fail(err, "caps", errno, "capset (effective %llx, permitted %llx)",
			       (unsigned long long)p->cap_effective,
			       (unsigned long long)p->cap_permitted);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return vk_fail(err, "caps", errno, "clear ambient capabilities");
	for (int cap = 0; cap <= p->last_cap; cap++)
		if ((p->cap_ambient & (1ULL << cap)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return vk_fail(err, "caps", errno, "raise ambient capability %d", cap);
	return 0;
}

/* The bounding set needs CAP_SETPCAP, so it goes before the uid change; PR_SET_KEEPCAPS
 * keeps the permitted set across setuid so capset can then install the plan's sets. */
static int setup_user(struct vk_plan *p, struct vk_error *err)
{
	if (p->has_caps && drop_bounding(p, err) < 0)
		return -1;
	if (p->has_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return vk_fail(err, "caps", errno, "PR_SET_KEEPCAPS");
	if (p->has_groups && !(p->setgroups_deny && !p->ngroups) &&
	    setgroups(p->ngroups, p->groups) < 0)
		return vk_fail(err, "user", errno, "setgroups (%zu groups)", p->ngroups);
	if (p->has_user && setresgid(p->gid, p->gid, p->gid) < 0)
		return vk_fail(err, "user", errno, "setgid %u", p->gid);
	if (p->has_user && setresuid(p->uid, p->uid, p->uid) < 0)
		return vk_fail(err, "user", errno, "setuid %u", p->uid);
	if (p->has_caps && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return vk_fail(err, "caps", errno, "PR_SET_KEEPCAPS");
	return p->has_caps ? apply_caps(p, err) : 0;
}

int process_setup(struct vk_plan *p, bool create_mode, struct vk_error *err)
{
	if (setup_cwd(p, create_mode, err) < 0 || setup_rlimits(p, err) < 0)
		return -1;
	/* The AppArmor profile / SELinux label for execve, as runc does: while still privileged
	 * (changing them can need CAP_MAC_ADMIN) and before any seccomp filter (a profile that
	 * denies or notifies openat/write must not see these writes). They take effect only at
	 * execve, and a failure is still an `error` line before `ready` (PROTOCOL.md). */
	if (lsm_exec_attrs(p, err) < 0)
		return -1;
	/* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the workload's
	 * identity may not have: load it while still privileged (as runc does). */
	if (p->seccomp_prog && !p->no_new_privs && load_seccomp(p, err) < 0)
		return -1;
	if (!p->no_new_privs)
		load_vkernel_filter(p);
	if (setup_user(p, err) < 0)
		return -1;
	umask(p->has_umask ? p->umask : 022);
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return vk_fail(err, "no_new_privs", errno, "PR_SET_NO_NEW_PRIVS");
	return 0;
}

static const char *env_get(struct vk_plan *p, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < p->nenv; i++)
		if (!strncmp(p->env[i], name, n) && p->env[i][n] == '=')
			return p->env[i] + n + 1;
	return NULL;
}

/* 0 when runnable, else an errno like execve's. */
static int check_exec(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return EACCES;
	if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0)
		return errno;
	return 0;
}

/* args[0] as execvpe would find it, with the container's PATH (execvpe's default when
 * unset), so a missing binary fails `create`, not `start`. Messages follow runc. */
int process_lookup(struct vk_plan *p, char **out, struct vk_error *err)
{
	const char *name = p->args[0], *path = env_get(p, "PATH");
	bool denied = false;
	int e;

	if (!*name)
		return vk_fail(err, "exec", EINVAL, "empty args[0]");
	if (strchr(name, '/')) {
		if ((e = check_exec(name)) == ENOENT)
			return vk_fail(err, "exec", e, "\"%s\": stat %s", name, name);
		if (e)
			return vk_fail(err, "exec", e, "\"%s\"", name);
		*out = strdup(name);
		return *out ? 0 : vk_fail(err, "exec", ENOMEM, "strdup");
	}
	if (!path)
		path = "/bin:/usr/bin";
	for (const char *dir = path;; dir++) {
		const char *end = strchrnul(dir, ':');
		int len = (int)(end - dir);
		char *cand;

		/* An empty PATH element means the current directory. */
		if (asprintf(&cand, "%.*s%s%s", len, dir, len ? "/" : "", name) < 0)
			return vk_fail(err, "exec", ENOMEM, "asprintf");
		if ((e = check_exec(cand)) == 0) {
			*out = cand;
			return 0;
		}
		denied |= e == EACCES;
		free(cand);
		if (!*end)
			break;
		dir = end;
	}
	if (denied)
		return vk_fail(err, "exec", EACCES, "\"%s\"", name);
	vk_fail(err, "exec", 0, "\"%s\": executable file not found in $PATH", name);
	err->errnum = ENOENT;
	return -1;
}

/* Every fd we did not mean to pass must not reach the workload. */
static int mark_cloexec(int first, struct vk_error *err)
{
	DIR *d;
	struct dirent *e;

	if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	d = opendir("/proc/self/fd");
	if (!d)
		return vk_fail(err, "exec", errno, "list /proc/self/fd");
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (fd >= first && fd != dirfd(d))
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
	return 0;
}

int process_exec(struct vk_plan *p, const char *path, struct vk_error *err)
{
	if (mark_cloexec(3 + p->preserve_fds, err) < 0)
		return -1;
	if (p->seccomp_prog && p->no_new_privs && load_seccomp(p, err) < 0)
		return -1;
	load_vkernel_filter(p);
	execve(path, p->args, p->env);
	return vk_fail(err, "exec", errno, "exec \"%s\"", path);
}
