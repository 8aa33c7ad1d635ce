/* In-container OCI hooks (createContainer, startContainer): fork+exec with the state JSON
 * on stdin, output captured for the error message, killed after the timeout. */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

struct hook_run {
	pid_t pid;
	int pidfd, in, out;
	const char *state;
	size_t state_left;
	char output[512]; /* the last bytes the hook printed */
	size_t outlen;
};

static __attribute__((noreturn)) void hook_exec(const struct vk_hook *h, const char *cwd, int in, int out)
{
	sigset_t none;

	/* Never outlive init (without a pid namespace nothing else would kill us). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(127);
	/* runc runs createContainer hooks in the rootfs (startContainer: the container's /). */
	if (cwd && chdir(cwd) < 0)
		_exit(127);
	execve(h->path, h->argv, h->envp);
	dprintf(2, "exec: %s", strerror(errno));
	_exit(127);
}

static void keep_output(struct hook_run *r, const char *buf, size_t n)
{
	if (n >= sizeof r->output) {
		buf += n - (sizeof r->output - 1);
		n = sizeof r->output - 1;
	}
	if (r->outlen + n >= sizeof r->output) {
		size_t drop = r->outlen + n - (sizeof r->output - 1);
		memmove(r->output, r->output + drop, r->outlen - drop);
		r->outlen -= drop;
	}
	memcpy(r->output + r->outlen, buf, n);
	r->outlen += n;
	r->output[r->outlen] = '\0';
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Feed stdin, collect output, until the process exits. 1 exited, 0 timed out. */
static int hook_wait(struct hook_run *r, unsigned int timeout)
{
	long deadline = timeout ? now_ms() + (long)timeout * 1000 : 0;

	for (;;) {
		/* poll ignores negative fds: closed pipes simply drop out. */
		struct pollfd fds[3] = {
			{ .fd = r->pidfd, .events = POLLIN },
			{ .fd = r->out, .events = POLLIN },
			{ .fd = r->in, .events = POLLOUT },
		};
		int wait_ms = deadline ? (int)(deadline - now_ms()) : -1;
		char buf[4096];
		ssize_t n;

		if (deadline && wait_ms <= 0)
			return 0;
		if (poll(fds, 3, wait_ms) < 0 && errno != EINTR)
			return 0;
		if (fds[1].revents) {
			n = read(r->out, buf, sizeof buf);
			if (n > 0)
				keep_output(r, buf, (size_t)n);
			else if (n == 0 || errno != EAGAIN) {
				close(r->out);
				r->out = -1;
			}
		}
		if (fds[2].revents) {
			n = r->state_left ? write(r->in, r->state, r->state_left) : 0;
			if (n > 0) {
				r->state += n;
				r->state_left -= (size_t)n;
			}
			/* All written (or the hook closed stdin): EOF tells the hook it has it all. */
			if (!r->state_left || (n < 0 && errno != EAGAIN)) {
				close(r->in);
				r->in = -1;
			}
		}
		if (fds[0].revents)
			return 1;
	}
}

static int hook_run(struct vk_plan *p, const struct vk_hook *h, struct vk_error *err)
{
	const char *stage = h->start ? "startContainer" : "createContainer";
	struct hook_run r = h->start ? (struct hook_run){ .state = p->start_state ? p->start_state : "", .state_left = p->start_state_len }
				     : (struct hook_run){ .state = p->state ? p->state : "", .state_left = p->state_len };
	int in[2], out[2], status = 0, exited;

	if (pipe2(in, O_CLOEXEC) < 0)
		return vk_fail(err, "hook", errno, "pipe");
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return vk_fail(err, "hook", errno, "pipe");
	}
	r.pid = fork();
	if (r.pid == 0)
		hook_exec(h, h->start ? NULL : p->rootfs, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	r.in = in[1];
	r.out = out[0];
	if (r.pid < 0) {
		close(r.in);
		close(r.out);
		return vk_fail(err, "hook", errno, "fork %s hook \"%s\"", stage, h->path);
	}
	fcntl(r.in, F_SETFL, O_NONBLOCK);
	fcntl(r.out, F_SETFL, O_NONBLOCK);
	r.pidfd = (int)syscall(SYS_pidfd_open, r.pid, 0);
	exited = r.pidfd >= 0 ? hook_wait(&r, h->timeout) : 1;
	if (!exited)
		kill(r.pid, SIGKILL);
	while (waitpid(r.pid, &status, 0) < 0 && errno == EINTR)
		;
	if (exited && r.out >= 0) {
		/* What the hook printed right before exiting. */
		char buf[4096];
		ssize_t n;
		while ((n = read(r.out, buf, sizeof buf)) > 0)
			keep_output(&r, buf, (size_t)n);
	}
	if (r.pidfd >= 0)
		close(r.pidfd);
	if (r.in >= 0)
		close(r.in);
	if (r.out >= 0)
		close(r.out);
	if (!exited)
		return vk_fail(err, "hook", ETIMEDOUT, "%s hook \"%s\" timed out after %us", stage,
			       h->path, h->timeout);
	if (WIFSIGNALED(status))
		return vk_fail(err, "hook", 0, "%s hook \"%s\" killed by signal %d: %s", stage,
			       h->path, WTERMSIG(status), r.output);
	if (WEXITSTATUS(status))
		return vk_fail(err, "hook", 0, "%s hook \"%s\" exit status %d: %s", stage, h->path,
			       WEXITSTATUS(status), r.output);
	return 0;
}

int hooks_run(struct vk_plan *p, bool start, struct vk_error *err)
{
	for (size_t i = 0; i < p->nhooks; i++)
		if (p->hooks[i].start == start && hook_run(p, &p->hooks[i], err) < 0)
			return -1;
	return 0;
}
