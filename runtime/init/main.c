/* vkinit <sync-fd>: read the plan frame, then run the parent stage (parent.c), which
 * clones the container process (child.c). */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>

extern char **environ;

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3: say the memfd is meant to be executed */
#endif

#define SELF_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* CVE-2019-5736: vkinit runs inside the container (the child until execve; in exec mode
 * among the container's processes), so the container can reach its /proc/PID/exe. Were
 * that the host's build/vkinit, a process there could open it (O_PATH, or as the
 * interpreter of a `#!/proc/self/exe` script) and reopen it for writing once we have
 * exec'd, overwriting the runtime on the host. As runc: run from a sealed memfd copy
 * instead. The container can then reach only the copy, which the seals make
 * unwritable, and the copy goes away with its last user. Returns only on failure. */
static int reexec_from_sealed_copy(char **argv)
{
	cleanup_close int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	cleanup_close int copy = -1;
	struct stat st;

	if (self < 0 || fstat(self, &st) < 0)
		return -1;
	copy = memfd_create("vkinit", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (copy < 0 && errno == EINVAL) /* before 6.3 */
		copy = memfd_create("vkinit", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (copy < 0)
		return -1;
	for (off_t done = 0; done < st.st_size;) {
		ssize_t n = sendfile(copy, self, NULL, (size_t)(st.st_size - done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (errno = EIO, -1);
		done += n;
	}
	if (fcntl(copy, F_ADD_SEALS, SELF_SEALS) < 0)
		return -1;
	/* The fd is close-on-exec: after the exec nothing holds it but /proc/self/exe. */
	fexecve(copy, argv, environ);
	return -1;
}

static bool running_from_sealed_copy(void)
{
	cleanup_close int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int seals = self >= 0 ? fcntl(self, F_GET_SEALS) : -1;

	/* F_GET_SEALS fails (EINVAL) on anything but a memfd/shmem file. */
	return seals >= 0 && (seals & SELF_SEALS) == SELF_SEALS;
}

int main(int argc, char **argv)
{
	struct vk_error err = { 0 };
	struct vk_plan plan = { 0 };
	struct vk_reader in = { 0 };
	uint64_t fd;
	char *data;
	size_t len;
	int flags;

	if (argc != 2 || parse_u64(argv[1], 10, &fd) < 0 || fd < 3 || fd > 65535 ||
	    fcntl((int)fd, F_GETFD) < 0) {
		fprintf(stderr, "usage: vkinit <sync-fd> (see runtime/init/PROTOCOL.md)\n");
		return 2;
	}
	/* Before the plan is read (it waits on the socket, which survives the exec) and
	 * before any work. Failing closed: vkinit never runs from the host file. */
	if (!running_from_sealed_copy()) {
		reexec_from_sealed_copy(argv);
		vk_fail(&err, "init", errno, "re-exec from a sealed copy of /proc/self/exe");
		send_error((int)fd, &err);
		return 1;
	}
	/* fexecve named us after the fd ("3"); ps, tests and people look for "vkinit". */
	prctl(PR_SET_NAME, "vkinit", 0, 0, 0);
	/* Node may hand us a non-blocking end; the protocol code below expects blocking reads. */
	flags = fcntl((int)fd, F_GETFL);
	if (flags >= 0 && (flags & O_NONBLOCK))
		fcntl((int)fd, F_SETFL, flags & ~O_NONBLOCK);
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	/* A write to a closed socket must be an error we report, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	/* Modes in the plan are exact (mkfifo 0622, device modes); the child sets the
	 * workload's umask itself. */
	umask(0);

	in.fd = (int)fd;
	if (read_frame(&in, &data, &len, &err) < 0 || plan_parse(&plan, data, len, &err) < 0) {
		send_error((int)fd, &err);
		return 1;
	}
	if (in.len) {
		vk_fail(&err, "plan", EINVAL, "unexpected data after the plan frame");
		send_error((int)fd, &err);
		return 1;
	}
	free(in.buf);
	/* Whatever else Node inherited (fds of its own parent) reaches neither hooks nor the
	 * workload; process_exec repeats this with a fallback. */
	syscall(SYS_close_range, 3 + plan.preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC);
	return parent_main(&plan, (int)fd);
}
