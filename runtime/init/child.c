/* The container process from clone to execve, in the order of PROTOCOL.md. Until
 * `ready` every failure goes to the parent as an `error` line; after it (the parent may
 * be gone) failures go to stderr and the process exits non-zero. */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

struct child {
	struct vk_plan *p;
	int chan;
	struct vk_reader chan_in;
	int console;
	bool ready; /* `ready` was reported: errors now go to stderr */
};

static int wait_release(struct child *c, struct vk_error *err)
{
	cleanup_free char *frame = NULL;
	size_t len;

	/* With a seccomp agent the parent relays Node's message for it first. */
	if (c->p->seccomp_listener) {
		if (read_frame(&c->chan_in, &c->p->agent_msg, &len, err) < 0)
			return -1;
		if (strncmp(c->p->agent_msg, "seccomp\n", 8))
			return vk_fail(err, "sync", EINVAL, "expected the seccomp agent message");
		c->p->agent_msg += 8;
	}
	if (read_frame(&c->chan_in, &frame, &len, err) < 0)
		return -1;
	if (strcmp(frame, "release"))
		return vk_fail(err, "sync", EINVAL, "expected release");
	return 0;
}

/* In a new (or joined) user namespace we start as the overflow id; become the
 * namespace's root now that the maps exist, so later steps run with a mapped identity. */
static int become_root(struct vk_plan *p, struct vk_error *err)
{
	/* EPERM: setgroups is denied in this namespace (rootless); nothing to drop then. */
	if (!p->setgroups_deny && setgroups(0, NULL) < 0 && errno != EPERM)
		return vk_fail(err, "user", errno, "setgroups");
	if (setresgid(0, 0, 0) < 0)
		return vk_fail(err, "user", errno, "setresgid 0");
	if (setresuid(0, 0, 0) < 0)
		return vk_fail(err, "user", errno, "setresuid 0");
	return 0;
}

static bool in_user_ns(struct vk_plan *p)
{
	for (size_t i = 0; i < p->njoins; i++)
		if (p->joins[i].nstype == CLONE_NEWUSER)
			return true;
	return p->clone_flags & CLONE_NEWUSER;
}

static int enter(struct child *c, struct vk_error *err)
{
	struct vk_plan *p = c->p;
	sigset_t none;

	/* Signal state is inherited across execve: undo the parent's blocking and SIGPIPE. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (wait_release(c, err) < 0)
		return -1;
	if (in_user_ns(p) && become_root(p, err) < 0)
		return -1;
	if ((p->clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
		return vk_fail(err, "unshare", errno, "unshare cgroup namespace");
	if (setsid() < 0)
		return vk_fail(err, "setsid", errno, "setsid");
	/* Nothing in the container may ptrace us or open our /proc files while we hold
	 * host fds (CVE-2016-9962); execve resets it for the workload. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return vk_fail(err, "init", errno, "prctl PR_SET_DUMPABLE");
	/* In runc's order: keyring and network before the rootfs. */
	if (p->keyring && keyring_join(p, err) < 0)
		return -1;
	if (p->loopback_up && loopback_set_up(err) < 0)
		return -1;
	return 0;
}

/* The `hooks` point: wait for Node's `go` and keep the state JSON for our hooks. */
static int sync_hooks(struct child *c, struct vk_error *err)
{
	char *frame;
	size_t len;

	if (send_line(c->chan, "hooks") < 0)
		return vk_fail(err, "sync", errno, "send hooks");
	if (read_frame(&c->chan_in, &frame, &len, err) < 0)
		return -1;
	/* `go\n<createContainer state>[\n<startContainer state>]`: JSON has no raw newlines. */
	c->p->state = len > 3 ? frame + 3 : "";
	c->p->state_len = len > 3 ? len - 3 : 0;
	c->p->start_state = c->p->state;
	c->p->start_state_len = c->p->state_len;
	char *nl = memchr(c->p->state, '\n', c->p->state_len);
	if (nl) {
		c->p->start_state = nl + 1;
		c->p->start_state_len = c->p->state_len - (size_t)(nl + 1 - c->p->state);
		c->p->state_len = (size_t)(nl - c->p->state);
	}
	return 0;
}

/* Returns the FIFO opened for writing, after the `0` that releases `start`. It stays open
 * (close-on-exec) until execve: `start` reads on to EOF, which means the workload runs,
 * while a failed startContainer hook writes `h` first (see run_create). */
static int exec_fifo_wait(int fifo, struct vk_error *err)
{
	char path[32];
	int fd;

	/* Reopening the O_PATH fd for writing blocks until `start` opens the read side. */
	do
		fd = open(fd_path(fifo, path), O_WRONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return vk_fail(err, "exec_fifo", errno, "open exec fifo for writing");
	if (write_all(fd, "0", 1) < 0) {
		close(fd);
		return vk_fail(err, "exec_fifo", errno, "write exec fifo");
	}
	return fd;
}

static int run_create(struct child *c, struct vk_error *err)
{
	struct vk_plan *p = c->p;
	cleanup_close int rootfd = -1;
	cleanup_close int fifo = take_fd(&p->exec_fifo_fd);
	cleanup_free char *path = NULL;

	if (p->rootfs) {
		if (rootfs_prepare(p, &rootfd, err) < 0 || rootfs_mounts(p, rootfd, err) < 0 ||
		    devices_create(p, rootfd, err) < 0 || rootfs_symlinks(p, rootfd, err) < 0)
			return -1;
	}
	if (p->sync_hooks && sync_hooks(c, err) < 0)
		return -1;
	if (hooks_run(p, false, err) < 0)
		return -1;
	if (p->rootfs && rootfs_pivot(p, rootfd, err) < 0)
		return -1;
	if (p->terminal && console_setup(p, c->console, true, err) < 0)
		return -1;
	if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) < 0)
		return vk_fail(err, "hostname", errno, "sethostname \"%s\"", p->hostname);
	if (p->domainname && setdomainname(p->domainname, strlen(p->domainname)) < 0)
		return vk_fail(err, "domainname", errno, "setdomainname \"%s\"", p->domainname);
	if (rootfs_sysctl(p, err) < 0)
		return -1;
	if (p->rootfs && rootfs_finalize(p, err) < 0)
		return -1;
	if (process_setup(p, true, err) < 0 || process_lookup(p, &path, err) < 0)
		return -1;

	if (send_line(c->chan, "ready") < 0)
		return vk_fail(err, "sync", errno, "send ready");
	c->ready = true;
	close(c->chan);
	c->chan = -1;
	cleanup_close int started = -1;
	if (fifo >= 0 && (started = exec_fifo_wait(fifo, err)) < 0)
		return -1;
	if (hooks_run(p, true, err) < 0) {
		if (started >= 0)
			(void)!write(started, "h", 1);
		return -1;
	}
	return process_exec(p, path, err);
}

/* exec mode: the parent joined the container's namespaces; no mounts, no pivot. The
 * `exec` line tells the parent that EOF on the socket now means execve succeeded. */
static int run_exec(struct child *c, struct vk_error *err)
{
	struct vk_plan *p = c->p;
	cleanup_free char *path = NULL;

	if (p->terminal && console_setup(p, c->console, false, err) < 0)
		return -1;
	if (process_setup(p, false, err) < 0 || process_lookup(p, &path, err) < 0)
		return -1;
	if (send_line(c->chan, "exec") < 0)
		return vk_fail(err, "sync", errno, "send exec");
	return process_exec(p, path, err);
}

void child_main(struct vk_plan *p, int chan, int console, const int *close_fds, size_t nclose)
{
	struct child c = { .p = p, .chan = chan, .chan_in = { .fd = chan }, .console = console };
	struct vk_error err = { 0 };

	for (size_t i = 0; i < nclose; i++)
		if (close_fds[i] >= 0)
			close(close_fds[i]);
	if (enter(&c, &err) == 0)
		(p->exec_mode ? run_exec : run_create)(&c, &err);
	/* Only failures get here. */
	if (!c.ready) {
		send_error(chan, &err);
		_exit(1);
	}
	fprintf(stderr, "vkinit: %s: %s\n", err.step, err.msg);
	_exit(strcmp(err.step, "exec") ? 1 : 127);
}
