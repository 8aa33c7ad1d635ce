/* vkinit <sync-fd>: read the plan frame, then run the parent stage (parent.c), which
 * clones the container process (child.c). */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/syscall.h>

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
