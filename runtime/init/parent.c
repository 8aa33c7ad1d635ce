/* Parent stage: everything that needs the host's view (open host paths, join
 * namespaces, clone, id maps, cgroups), then relaying between Node and the child, and in
 * `wait` mode staying around to report the exit status. */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

struct parent {
	struct vk_plan *p;
	int node; /* sync socket to Node */
	struct vk_reader node_in;
	int chan; /* our end of the socketpair with the child; -1 once closed */
	struct vk_reader chan_in;
	int proc; /* host /proc, opened before any setns changes what "/proc" means */
	int *cgroups;
	int *nsfds;
	int console; /* the child's console socket (connected, or the proxy pair's far end) */
	int console_recv; /* proxy: our end, where the pty master arrives */
	int sigfd;
	pid_t pid;
	bool reaped;
	int status;
	bool fifo_made;
	bool proxy;
	struct vk_proxy px;
};

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

/* The host-path work happens first: after joining a mount namespace (exec mode) these
 * paths would resolve inside the container. */
static int open_host(struct parent *pa, struct vk_error *err)
{
	struct vk_plan *p = pa->p;

	pa->proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pa->proc < 0)
		return vk_fail(err, "init", errno, "open /proc");
	pa->cgroups = calloc(p->ncgroup_procs + 1, sizeof(int));
	pa->nsfds = calloc(p->njoins + 1, sizeof(int));
	if (!pa->cgroups || !pa->nsfds)
		return vk_fail(err, "init", ENOMEM, "alloc");
	for (size_t i = 0; i < p->ncgroup_procs; i++) {
		pa->cgroups[i] = open(p->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
		if (pa->cgroups[i] < 0)
			return vk_fail(err, "cgroup", errno, "open \"%s\"", p->cgroup_procs[i]);
	}
	for (size_t i = 0; i < p->njoins; i++) {
		pa->nsfds[i] = open(p->joins[i].path, O_RDONLY | O_CLOEXEC);
		if (pa->nsfds[i] < 0)
			return vk_fail(err, "setns", errno, "open \"%s\"", p->joins[i].path);
	}
	if (p->seccomp_path) {
		if (read_file(p->seccomp_path, (char **)&p->seccomp_prog, &p->seccomp_len) < 0)
			return vk_fail(err, "seccomp", errno, "read \"%s\"", p->seccomp_path);
		if (p->seccomp_len == 0 || p->seccomp_len % 8 || p->seccomp_len > 4096 * 8)
			return vk_fail(err, "seccomp", EINVAL, "\"%s\": %zu bytes is not a BPF program",
				       p->seccomp_path, p->seccomp_len);
	}
	/* The seccomp agent's socket is a host path too. The child inherits the connection
	 * and hands over the listener itself, right after loading the filter: in create
	 * mode that is after `start`, when this process is long gone. */
	if (p->seccomp_listener) {
		p->agent_fd = connect_unix(p->seccomp_listener);
		if (p->agent_fd < 0)
			return vk_fail(err, "seccomp", errno, "connect to the seccomp agent \"%s\"",
				       p->seccomp_listener);
	}
	/* vkernel_filter: same hand-off as seccomp_listener. Failing to reach the vkernel
	 * agent only loses the syscall view: warn and run without the filter (fail open). */
	if (p->vk_filter_path) {
		if (read_file(p->vk_filter_path, (char **)&p->vk_filter_prog, &p->vk_filter_len) < 0 ||
		    p->vk_filter_len == 0 || p->vk_filter_len % 8 || p->vk_filter_len > 4096 * 8) {
			fprintf(stderr, "vkinit: vkernel: cannot read the filter \"%s\": syscall view off\n",
				p->vk_filter_path);
			p->vk_filter_prog = NULL;
		} else {
			p->vk_agent_fd = connect_unix(p->vk_agent);
			if (p->vk_agent_fd < 0) {
				fprintf(stderr, "vkinit: vkernel: connect to the agent \"%s\": %s: syscall view off\n",
					p->vk_agent, strerror(errno));
				p->vk_filter_prog = NULL;
			}
		}
	}
	if (p->exec_fifo) {
		if (mkfifo(p->exec_fifo, 0622) < 0)
			return vk_fail(err, "exec_fifo", errno, "mkfifo \"%s\"", p->exec_fifo);
		pa->fifo_made = true;
		/* The child inherits this O_PATH fd and reopens it through /proc/self/fd:
		 * no lookup of a host path from inside the container (whose root may not
		 * even be allowed to search the state directory). */
		p->exec_fifo_fd = open(p->exec_fifo, O_PATH | O_CLOEXEC);
		if (p->exec_fifo_fd < 0)
			return vk_fail(err, "exec_fifo", errno, "open \"%s\"", p->exec_fifo);
	}
	if (p->console_socket) {
		pa->console = connect_unix(p->console_socket);
		if (pa->console < 0)
			return vk_fail(err, "console", errno, "connect \"%s\"", p->console_socket);
	} else if (p->terminal) {
		/* `run -t` in the foreground: we receive the master ourselves and proxy it. */
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return vk_fail(err, "console", errno, "socketpair");
		pa->console_recv = sv[0];
		pa->console = sv[1];
		pa->proxy = true;
	}
	return 0;
}

static int join_namespaces(struct parent *pa, struct vk_error *err)
{
	/* Joining namespaces that already hold processes (exec mode, or a shared pid or
	 * net namespace): the child is cloned among them and must never be ptraceable nor
	 * have its /proc files (exe, fd/) opened by them, not even in the instant before
	 * it could drop dumpable itself (CVE-2016-9962). It inherits this at clone, and
	 * execve resets it for the workload. As runc's nsexec, only then: without joins a
	 * rootless parent still has to write the child's id maps. */
	if (pa->p->njoins && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return vk_fail(err, "init", errno, "prctl PR_SET_DUMPABLE");
	for (size_t i = 0; i < pa->p->njoins; i++) {
		if (setns(pa->nsfds[i], pa->p->joins[i].nstype) < 0)
			return vk_fail(err, "setns", errno, "setns \"%s\"", pa->p->joins[i].path);
		close(pa->nsfds[i]);
		pa->nsfds[i] = -1;
	}
	return 0;
}

/* clone3 when available: it is the only way to ask for CLONE_NEWTIME at clone time.
 * Both calls are used fork-style (no new stack). CLONE_NEWCGROUP is left to the child:
 * the cgroup namespace must be rooted at the container's cgroup, which the child joins
 * only when we write its pid to cgroup.procs. */
static pid_t clone_child(unsigned long flags)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	} args = { .flags = flags, .exit_signal = SIGCHLD };
	long pid = syscall(SYS_clone3, &args, sizeof args);

	if (pid < 0 && errno == ENOSYS)
		pid = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
	return (pid_t)pid;
}

static int spawn_child(struct parent *pa, struct vk_error *err)
{
	struct vk_plan *p = pa->p;
	sigset_t set;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return vk_fail(err, "init", errno, "socketpair");
	pa->chan = sv[0];
	pa->chan_in.fd = sv[0];
	/* Signals arrive through a signalfd so the poll loops see them; the child unblocks. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGWINCH);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	pa->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (pa->sigfd < 0)
		return vk_fail(err, "init", errno, "signalfd");

	pa->pid = clone_child(p->clone_flags & ~(unsigned long)CLONE_NEWCGROUP);
	if (pa->pid < 0)
		return vk_fail(err, "clone", errno, "clone (flags 0x%lx)", p->clone_flags);
	if (pa->pid == 0) {
		int close_fds[] = { pa->node, pa->proc, pa->sigfd, sv[0], pa->console_recv };
		/* The child keeps no host fds: cgroup files and /proc stay with us. */
		for (size_t i = 0; i < p->ncgroup_procs; i++)
			close(pa->cgroups[i]);
		child_main(p, sv[1], pa->console, close_fds,
			   sizeof close_fds / sizeof close_fds[0]);
	}
	close(sv[1]);
	if (pa->console >= 0)
		close(pa->console);
	pa->console = -1;
	if (p->exec_fifo_fd >= 0)
		close(p->exec_fifo_fd);
	p->exec_fifo_fd = -1;
	if (p->agent_fd >= 0)
		close(p->agent_fd);
	p->agent_fd = -1;
	if (p->vk_agent_fd >= 0)
		close(p->vk_agent_fd);
	p->vk_agent_fd = -1;
	return 0;
}

static int write_proc(struct parent *pa, const char *file, const char *data,
		      struct vk_error *err)
{
	char path[64];

	snprintf(path, sizeof path, "%d/%s", pa->pid, file);
	if (write_file_at(pa->proc, path, data) < 0)
		return vk_fail(err, !strcmp(file, "oom_score_adj") ? "oom_score_adj" : "userns",
			       errno, "write /proc/%s", path);
	return 0;
}

enum { READY = 0, FAILED = -1, CHILD_ERROR = -2, ABORTED = -3 };

/* seccomp_listener: Node answers our `pid` with `seccomp\n<agent message JSON>` (it
 * needs the pid for it) or `abort`; the child gets the frame before its release. */
static int relay_agent_message(struct parent *pa, struct vk_error *err)
{
	cleanup_free char *frame = NULL;
	size_t len;

	if (read_frame(&pa->node_in, &frame, &len, err) < 0)
		return FAILED;
	if (!strcmp(frame, "abort"))
		return ABORTED;
	if (strncmp(frame, "seccomp\n", 8))
		return vk_fail(err, "sync", EINVAL, "expected the seccomp agent message");
	if (send_frame(pa->chan, frame, len) < 0)
		return vk_fail(err, "sync", errno, "relay the seccomp agent message");
	return 0;
}

/* While the child waits: id maps, oom_score_adj (lowering it needs host privileges, so
 * the parent writes it; it is inherited across fork and exec), cgroups, then release. */
static int setup_child(struct parent *pa, struct vk_error *err)
{
	struct vk_plan *p = pa->p;
	char buf[32];

	if (p->clone_flags & CLONE_NEWUSER) {
		if (p->setgroups_deny && write_proc(pa, "setgroups", "deny", err) < 0)
			return -1;
		if (p->uid_map && write_proc(pa, "uid_map", p->uid_map, err) < 0)
			return -1;
		if (p->gid_map && write_proc(pa, "gid_map", p->gid_map, err) < 0)
			return -1;
	}
	if (p->has_oom) {
		snprintf(buf, sizeof buf, "%d", p->oom_score_adj);
		if (write_proc(pa, "oom_score_adj", buf, err) < 0)
			return -1;
	}
	snprintf(buf, sizeof buf, "%d", pa->pid);
	for (size_t i = 0; i < p->ncgroup_procs; i++)
		if (write_all(pa->cgroups[i], buf, strlen(buf)) < 0)
			return vk_fail(err, "cgroup", errno, "write pid %d to \"%s\"", pa->pid,
				       p->cgroup_procs[i]);
	if (send_line(pa->node, "pid %d", pa->pid) < 0)
		return vk_fail(err, "sync", errno, "send pid");
	if (p->seccomp_listener) {
		int r = relay_agent_message(pa, err);
		if (r < 0)
			return r;
	}
	if (send_frame(pa->chan, "release", 7) < 0)
		return vk_fail(err, "sync", errno, "release the child");
	return 0;
}

static void reap(struct parent *pa, bool block)
{
	pid_t r;

	if (pa->pid <= 0 || pa->reaped)
		return;
	do
		r = waitpid(pa->pid, &pa->status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == pa->pid || (r < 0 && errno == ECHILD))
		pa->reaped = true;
}

static void kill_child(struct parent *pa)
{
	if (pa->pid > 0 && !pa->reaped) {
		kill(pa->pid, SIGKILL);
		reap(pa, true);
	}
}

/* Next pending signal, 0 when none. */
static int next_signal(struct parent *pa)
{
	struct signalfd_siginfo si;
	ssize_t n = read(pa->sigfd, &si, sizeof si);

	return n == sizeof si ? (int)si.ssi_signo : 0;
}

static int exit_code(int status)
{
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* The `hooks` point: Node runs its hooks and answers `go\n<state>` or `abort`. */
static int relay_hooks(struct parent *pa, struct vk_error *err)
{
	cleanup_free char *frame = NULL;
	size_t len;

	if (send_line(pa->node, "hooks") < 0)
		return vk_fail(err, "sync", errno, "send hooks");
	if (read_frame(&pa->node_in, &frame, &len, err) < 0)
		return FAILED;
	if (!strcmp(frame, "abort"))
		return ABORTED;
	if (strncmp(frame, "go\n", 3) && strcmp(frame, "go"))
		return vk_fail(err, "sync", EINVAL, "unexpected frame from the runtime");
	if (send_frame(pa->chan, frame, len) < 0)
		return vk_fail(err, "sync", errno, "relay go");
	return 1;
}

/* Returns READY, FAILED (err set), CHILD_ERROR (*child_err holds the child's line) or
 * ABORTED. */
static int until_ready(struct parent *pa, char **child_err, struct vk_error *err)
{
	bool execed = false;

	for (;;) {
		struct pollfd fds[3] = {
			{ .fd = pa->chan, .events = POLLIN },
			{ .fd = pa->node, .events = POLLIN },
			{ .fd = pa->sigfd, .events = POLLIN },
		};
		char *line;
		ssize_t n;
		int sig;

		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return vk_fail(err, "init", errno, "poll");
		}
		while (fds[2].revents && (sig = next_signal(pa)) > 0) {
			/* Detached: a workload that already exited stays a zombie for the
			 * caller's subreaper, which reports its status (we would lose it). */
			if (sig == SIGCHLD && pa->p->wait)
				reap(pa, false);
			else if (sig != SIGWINCH && sig != SIGCHLD)
				return vk_fail(err, "init", EINTR, "interrupted by signal %d", sig);
		}
		if (fds[1].revents) {
			n = reader_fill(&pa->node_in);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				return vk_fail(err, "sync", EPIPE, "the runtime closed the sync socket");
		}
		if (!fds[0].revents)
			continue;
		n = reader_fill(&pa->chan_in);
		while (reader_take_line(&pa->chan_in, &line) > 0) {
			if (!strncmp(line, "error ", 6)) {
				*child_err = line;
				return CHILD_ERROR;
			}
			if (!strcmp(line, "hooks") && pa->p->sync_hooks) {
				int r = relay_hooks(pa, err);
				free(line);
				if (r <= 0)
					return r;
				continue;
			}
			if (!strcmp(line, "ready") && !pa->p->exec_mode) {
				free(line);
				return READY;
			}
			if (!strcmp(line, "exec") && pa->p->exec_mode) {
				free(line);
				execed = true;
				continue;
			}
			vk_fail(err, "sync", EINVAL, "unexpected message from the child: %s", line);
			free(line);
			return FAILED;
		}
		if (n == 0 && execed)
			return READY; /* exec mode: execve closed the close-on-exec socket */
		if (n == 0) {
			reap(pa, true);
			return vk_fail(err, "init", ECHILD,
				       "container process exited before it was ready (status %d)",
				       exit_code(pa->status));
		}
		if (n < 0 && errno != EAGAIN)
			return vk_fail(err, "sync", errno, "read from the child");
	}
}

/* `wait`: forward signals, proxy the terminal, reap, report. */
static int wait_child(struct parent *pa)
{
	struct vk_proxy *px = &pa->px;
	int code;

	while (!pa->reaped) {
		struct pollfd fds[5];
		int nfds = 0, i_sig, i_chan = -1, i_recv = -1, i_in = -1, i_master = -1;
		int sig;

		i_sig = nfds;
		fds[nfds++] = (struct pollfd){ .fd = pa->sigfd, .events = POLLIN };
		if (pa->chan >= 0) {
			i_chan = nfds;
			fds[nfds++] = (struct pollfd){ .fd = pa->chan, .events = POLLIN };
		}
		if (pa->proxy && px->master < 0 && pa->console_recv >= 0) {
			i_recv = nfds;
			fds[nfds++] = (struct pollfd){ .fd = pa->console_recv, .events = POLLIN };
		}
		if (pa->proxy && px->master >= 0) {
			i_master = nfds;
			fds[nfds++] = (struct pollfd){
				.fd = px->master,
				.events = (short)(POLLIN | (px->plen ? POLLOUT : 0)),
			};
			if (px->stdin_open && !px->plen) {
				i_in = nfds;
				fds[nfds++] = (struct pollfd){ .fd = 0, .events = POLLIN };
			}
		}
		if (poll(fds, (nfds_t)nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		while (fds[i_sig].revents && (sig = next_signal(pa)) > 0) {
			if (sig == SIGCHLD)
				reap(pa, false);
			else if (sig == SIGWINCH)
				proxy_resize(px);
			else
				kill(pa->pid, sig);
		}
		if (i_chan >= 0 && fds[i_chan].revents) {
			/* Nothing more is expected; EOF means the workload was exec'd. */
			char drop[512];
			if (read(pa->chan, drop, sizeof drop) <= 0) {
				close(pa->chan);
				pa->chan = -1;
			}
		}
		if (i_recv >= 0 && fds[i_recv].revents) {
			int master = recv_fd(pa->console_recv);
			close(pa->console_recv);
			pa->console_recv = -1;
			if (master >= 0)
				proxy_attach(px, master);
		}
		if (i_in >= 0 && fds[i_in].revents)
			proxy_stdin(px);
		if (i_master >= 0 && fds[i_master].revents)
			proxy_master_out(px, fds[i_master].revents);
	}
	reap(pa, true);
	proxy_drain(px);
	proxy_restore(px);
	code = exit_code(pa->status);
	send_line(pa->node, "exit %d", code);
	return code;
}

static int fail(struct parent *pa, struct vk_error *err, char *child_err)
{
	kill_child(pa);
	if (pa->fifo_made)
		unlink(pa->p->exec_fifo);
	proxy_restore(&pa->px);
	if (child_err)
		send_line(pa->node, "%s", child_err);
	else if (err)
		send_error(pa->node, err);
	return 1;
}

int parent_main(struct vk_plan *p, int node)
{
	struct parent pa = {
		.p = p,
		.node = node,
		.node_in = { .fd = node },
		.chan = -1,
		.proc = -1,
		.console = -1,
		.console_recv = -1,
		.sigfd = -1,
	};
	struct vk_error err = { 0 };
	char *child_err = NULL;
	int r;

	proxy_init(&pa.px);
	if (open_host(&pa, &err) < 0 || join_namespaces(&pa, &err) < 0 ||
	    spawn_child(&pa, &err) < 0)
		return fail(&pa, &err, NULL);
	r = setup_child(&pa, &err);
	if (r == READY)
		r = until_ready(&pa, &child_err, &err);
	if (r == ABORTED)
		return fail(&pa, NULL, NULL);
	if (r != READY)
		return fail(&pa, &err, child_err);
	if (send_line(node, "ready") < 0 && !p->wait) {
		/* Nobody will ever start or reap this container. */
		vk_fail(&err, "sync", errno, "send ready");
		return fail(&pa, &err, NULL);
	}
	if (!p->wait)
		return 0; /* the container is reparented to the caller's subreaper */
	return wait_child(&pa);
}
