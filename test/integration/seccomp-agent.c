/*
 * seccomp-agent: the smallest seccomp notify agent, for seccomp-notify.test.ts (built
 * there with gcc).
 *
 * Usage: seccomp-agent SOCKET LOG SECONDS
 *
 * Listens on SOCKET (AF_UNIX stream), as linux.seccomp.listenerPath. Each connection
 * carries the runtime's ContainerProcessState JSON and, in the SCM_RIGHTS of its first
 * message, a seccomp listener fd; the JSON is logged as `msg <json>` when the
 * connection ends. Notifications are answered by syscall: mkdir/mkdirat get a fake
 * success (nothing is created), rmdir fails with EXDEV, anything else continues; each is
 * logged as `notify <syscall nr> <pid>`. `ready` is logged once listening. Exits after
 * SECONDS or on SIGTERM.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 64

enum kind { LISTEN, CONN, NOTIFY };

struct slot {
	enum kind kind;
	char *buf; /* CONN: the message so far */
	size_t len;
};

static struct pollfd pfds[MAX_FDS];
static struct slot slots[MAX_FDS];
static int nfds;
static FILE *logf;

static void add(int fd, enum kind kind)
{
	if (nfds == MAX_FDS) {
		close(fd);
		return;
	}
	pfds[nfds] = (struct pollfd){ .fd = fd, .events = POLLIN };
	slots[nfds] = (struct slot){ .kind = kind };
	nfds++;
}

static void drop(int i)
{
	close(pfds[i].fd);
	free(slots[i].buf);
	pfds[i] = pfds[nfds - 1];
	slots[i] = slots[nfds - 1];
	nfds--;
}

/* Read what the runtime sends; the first message also brings the listener fd. */
static void on_conn(int i)
{
	char data[65536], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof cbuf };
	struct cmsghdr *c;
	ssize_t n = recvmsg(pfds[i].fd, &msg, MSG_CMSG_CLOEXEC);

	if (n > 0) {
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int fd;
				memcpy(&fd, CMSG_DATA(c), sizeof fd);
				add(fd, NOTIFY);
			}
		}
		slots[i].buf = realloc(slots[i].buf, slots[i].len + (size_t)n + 1);
		memcpy(slots[i].buf + slots[i].len, data, (size_t)n);
		slots[i].len += (size_t)n;
		slots[i].buf[slots[i].len] = '\0';
		return;
	}
	if (n < 0 && errno == EINTR)
		return;
	fprintf(logf, "msg %s\n", slots[i].buf ? slots[i].buf : "");
	drop(i);
}

static void on_notify(int i, short rev)
{
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;

	if (!(rev & POLLIN)) {
		drop(i); /* every process using the filter is gone */
		return;
	}
	memset(&req, 0, sizeof req);
	if (ioctl(pfds[i].fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
		return; /* ENOENT: the caller died meanwhile */
	memset(&resp, 0, sizeof resp);
	resp.id = req.id;
	switch (req.data.nr) {
	case SYS_mkdir:
	case SYS_mkdirat:
		break; /* val 0, error 0: success */
	case SYS_rmdir:
		resp.error = -EXDEV;
		break;
	default:
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	}
	fprintf(logf, "notify %d %u\n", req.data.nr, req.pid);
	ioctl(pfds[i].fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int lfd;

	if (argc != 4 || strlen(argv[1]) >= sizeof addr.sun_path) {
		fprintf(stderr, "usage: seccomp-agent SOCKET LOG SECONDS\n");
		return 2;
	}
	logf = fopen(argv[2], "a");
	if (!logf)
		return 1;
	setvbuf(logf, NULL, _IOLBF, 0);
	alarm((unsigned)atoi(argv[3])); /* bounded: never outlives the test by much */
	strcpy(addr.sun_path, argv[1]);
	unlink(argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 16) < 0) {
		perror("seccomp-agent: listen");
		return 1;
	}
	add(lfd, LISTEN);
	fprintf(logf, "ready\n");
	for (;;) {
		if (poll(pfds, (nfds_t)nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		/* Downwards, each revents cleared when handled: drop() moves the last
		 * (already handled) entry into the hole, add() appends with none. */
		for (int i = nfds - 1; i >= 0; i--) {
			short rev = pfds[i].revents;

			pfds[i].revents = 0;
			if (!rev)
				continue;
			if (slots[i].kind == LISTEN) {
				int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				if (c >= 0)
					add(c, CONN);
			} else if (slots[i].kind == CONN) {
				on_conn(i);
			} else {
				on_notify(i, rev);
			}
		}
	}
}
