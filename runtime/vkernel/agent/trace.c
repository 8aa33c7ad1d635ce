/*
 * vkagent trace: the ptrace fallback of the syscall layer (when a seccomp listener cannot
 * be had: the container's own profile already has one (EBUSY), or the kernel lacks
 * user notification).
 *
 *   vkagent trace --pid PID --meta META --pidfile FILE [--ready-fd N]
 *
 * The container's filter returns SECCOMP_RET_TRACE|VK_TRACE_DATA for sysinfo and
 * sched_getaffinity (trace_filter below, or the container's own program with its ALLOW
 * returns rewritten, runtime/vkernel/syscalls.ts). The worker PTRACE_SEIZEs the container
 * init (held at the exec FIFO, before the workload runs) with TRACESECCOMP and
 * TRACEFORK/VFORK/CLONE, so every task of the workload is traced from its birth; at each
 * seccomp stop it computes the answer with the same code as the notify path (vkagent.c),
 * writes it into the tracee (process_vm_writev) and skips the call (orig_rax = -1,
 * rax = result). Any failure leaves the call alone: it runs for real (fail open).
 *
 * No PTRACE_O_EXITKILL: the workload survives the tracer. A tracee whose tracer is gone is
 * detached by the kernel; a call stopped at that moment runs for real, later traced calls
 * fail with ENOSYS (no tracer) until a tracer is back. The keeper (the worker's parent)
 * forks a new worker when the worker dies while the container lives; the new worker
 * seizes every task of the container's cgroup that has a seccomp filter, so the view
 * comes back after a short gap. Losing the keeper too leaves that ENOSYS state for good.
 * The worker exits when it has no tracee left (the container is gone); the keeper then.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../vkfs/vkfs.h"
#include "agent.h"

/* SECCOMP_RET_DATA of our traced calls: a container profile's own SCMP_ACT_TRACE(n) stops
 * are not ours and are resumed untouched. */
#define VK_TRACE_DATA 0x766b

static const struct sock_filter tfilter[] = COLD_FILTER(SECCOMP_RET_TRACE | VK_TRACE_DATA);
const void *const trace_filter = tfilter;
const size_t trace_filter_len = sizeof tfilter;

#define OPTS (PTRACE_O_TRACESECCOMP | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE)

static int init_pid;
static unsigned long long init_ticks;

static unsigned long long start_ticks(int pid)
{
	char p[64], st[1024];
	snprintf(p, sizeof p, "/proc/%d/stat", pid);
	if (read_small_once(p, st, sizeof st) <= 0)
		return 0;
	const char *s = strrchr(st, ')');
	for (int field = 3; field <= 22 && s; field++)
		s = strchr(s + 1, ' ');
	return s ? strtoull(s + 1, NULL, 10) : 0;
}

static int container_alive(void)
{
	return init_ticks && start_ticks(init_pid) == init_ticks;
}

/* One seccomp stop: answer it, or leave the call to run. */
static void on_seccomp(int tid)
{
	static unsigned char mask[MAXCPU / 8];
	struct user_regs_struct r;
	unsigned long msg = 0;
	long res;
	if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg) < 0 || msg != VK_TRACE_DATA)
		return;
	if (ptrace(PTRACE_GETREGS, tid, 0, &r) < 0 || select_container(0, tid) < 0)
		return;
	if (r.orig_rax == __NR_sysinfo) {
		struct sysinfo si;
		if (compute_sysinfo(&si) < 0 || write_mem(tid, r.rdi, &si, sizeof si) < 0)
			return;
		res = 0;
	} else if (r.orig_rax == __NR_sched_getaffinity) {
		res = compute_affinity(tid, r.rdi, r.rsi, mask, sizeof mask);
		if (res <= 0 || write_mem(tid, r.rdx, mask, (size_t)res) < 0)
			return;
	} else {
		return;
	}
	r.orig_rax = (unsigned long long)-1; /* skip the call; rax is what it returns */
	r.rax = (unsigned long long)res;
	if (ptrace(PTRACE_SETREGS, tid, 0, &r) == 0)
		ash->handled++;
}

static int has_filter(int tid)
{
	char p[64], st[4096];
	snprintf(p, sizeof p, "/proc/%d/status", tid);
	if (read_small_once(p, st, sizeof st) <= 0)
		return 0;
	const char *s = strstr(st, "\nSeccomp:");
	return s && atoi(s + 9) == 2;
}

/* After a worker death: seize every filtered task of the container (a few passes, for
 * threads born meanwhile of tasks not yet seized). Returns how many were seized. */
static int attach_all(void)
{
	static struct buf b;
	int total = 0;
	if (select_container(0, init_pid) < 0)
		return ptrace(PTRACE_SEIZE, init_pid, 0, OPTS) == 0;
	for (int pass = 0; pass < 4; pass++) {
		int n = 0;
		if (read_tasks(&b) < 0)
			break;
		for (char *p = b.p; p && *p;) {
			int tid = atoi(p);
			if (tid > 0 && has_filter(tid) && ptrace(PTRACE_SEIZE, tid, 0, OPTS) == 0)
				n++;
			p = strchr(p, '\n');
			if (p)
				p++;
		}
		total += n;
		if (!n)
			break;
	}
	return total;
}

static void ready_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ready_line(int fd, const char *fmt, ...)
{
	char m[256];
	va_list ap;
	if (fd < 0)
		return;
	va_start(ap, fmt);
	int l = vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	if (write(fd, m, (size_t)l) < 0) {
	}
	close(fd);
}

static void worker_main(int ready_fd, int again)
{
	signal(SIGTERM, SIG_DFL);
	if (!again) {
		if (ptrace(PTRACE_SEIZE, init_pid, 0, OPTS) < 0) {
			ready_line(ready_fd, "error PTRACE_SEIZE %d: %s\n", init_pid, strerror(errno));
			_exit(3);
		}
		ready_line(ready_fd, "ok %d\n", (int)getppid());
	} else {
		logf_("tracer restarted: %d task(s) seized again", attach_all());
	}
	for (;;) {
		int st;
		pid_t t = waitpid(-1, &st, __WALL);
		if (t < 0) {
			if (errno == EINTR)
				continue;
			_exit(0); /* ECHILD: no tracee left */
		}
		if (!WIFSTOPPED(st))
			continue; /* exited */
		int sig = WSTOPSIG(st), ev = st >> 16, inject = 0;
		if (ev == PTRACE_EVENT_SECCOMP) {
			on_seccomp(t);
		} else if (ev == PTRACE_EVENT_STOP) {
			/* group-stop: stay stopped until SIGCONT; else (new child, LISTEN woken) go on */
			if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
				ptrace(PTRACE_LISTEN, t, 0, 0);
				continue;
			}
		} else if (ev == 0) {
			inject = sig; /* signal-delivery-stop: deliver it */
		}
		ptrace(PTRACE_CONT, t, 0, inject);
	}
}

static void write_pids(const char *pidfile, pid_t worker)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", pidfile);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "%d %d\n", (int)getpid(), (int)worker);
	fclose(f);
	rename(tmp, pidfile);
}

/* Called by main with the arguments checked and stray fds closed. */
int trace_main(int pid, const char *meta, const char *pidfile, int ready_fd)
{
	init_pid = pid;
	init_ticks = start_ticks(init_pid);
	ash = mmap(NULL, sizeof *ash, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ash == MAP_FAILED || !init_ticks) {
		ready_line(ready_fd, "error no process %d\n", init_pid);
		return 1;
	}
	ash->slots[0].used = 1;
	ash->slots[0].pid = init_pid;
	snprintf(ash->slots[0].meta, sizeof ash->slots[0].meta, "%s", meta);
	sock_path = pidfile; /* a derived config (no conf= in META) goes to <pidfile>.d/0.conf */
	char dir[PATH_MAX + 4];
	snprintf(dir, sizeof dir, "%s.d", pidfile);
	mkdir(dir, 0700);

	double last_fork = 0;
	int again = 0;
	for (;;) {
		pid_t w = fork();
		if (w == 0) {
			worker_main(ready_fd, again);
			_exit(0);
		}
		if (ready_fd >= 0)
			close(ready_fd);
		ready_fd = -1;
		if (w < 0)
			break;
		last_fork = mono_now();
		write_pids(pidfile, w);
		int st;
		while (waitpid(w, &st, 0) < 0 && errno == EINTR)
			;
		/* A worker that ended by itself has no tracee left (or could not seize at all). */
		if (WIFEXITED(st) || !container_alive())
			break;
		logf_("tracer worker %d died (signal %d): seizing the container again", (int)w, WTERMSIG(st));
		if (mono_now() - last_fork < 0.05)
			usleep(50000); /* a crash loop must not spin the CPU */
		again = 1;
	}
	char p[PATH_MAX + 16];
	snprintf(p, sizeof p, "%s.d/0.conf", pidfile);
	unlink(p);
	rmdir(dir);
	unlink(pidfile);
	return 0;
}
