/*
 * seccomp-testload: loads a BPF file made by build/vkseccomp the way the init helper
 * does, for test/integration/seccomp-compile.test.ts. Test code only.
 *
 *   seccomp-testload load [--flags N] [--listener PATH --message JSON] BPF -- PROG ARGS...
 *       prctl(NO_NEW_PRIVS), seccomp(SET_MODE_FILTER, N, BPF), execv(PROG). With
 *       --listener: connect to PATH first, then send JSON + the listener fd (SCM_RIGHTS).
 *   seccomp-testload load [...] BPF -- @NAME ARG... [@NAME ARG...]...
 *       instead of exec, make each raw syscall (number from libseccomp) and print
 *       "NAME ret=R errno=E". ARG: a number (0x.. ok) or s:STRING (a pointer to it).
 *       A SIGSYS (SCMP_ACT_TRAP) prints "sigsys syscall=N errno=E" and exits 100.
 *   seccomp-testload agent PATH errno:N|value:N|continue
 *       a seccomp agent: accept one connection on PATH, print "message JSON", then
 *       answer notifications ("notify NAME") until the filter's last user is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "seccomp-testload: %s: %s\n", what, strerror(errno));
	exit(99);
}

static int unix_socket(const char *path, struct sockaddr_un *sa)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die("socket");
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		errno = ENAMETOOLONG;
		die(path);
	}
	strcpy(sa->sun_path, path);
	return s;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char buf[96];
	(void)sig;
	(void)uc;
	int n = snprintf(buf, sizeof(buf), "sigsys syscall=%d errno=%d\n", si->si_syscall, si->si_errno);
	if (write(1, buf, (size_t)n) < 0)
		_exit(101);
	_exit(100);
}

static long arg(const char *s)
{
	if (!strncmp(s, "s:", 2))
		return (long)(s + 2);
	return (long)strtoull(s, NULL, 0);
}

static int calls(char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	sigaction(SIGSYS, &sa, NULL);
	while (*argv) {
		const char *name = *argv++ + 1;
		long a[6] = { 0 };
		for (int i = 0; i < 6 && *argv && **argv != '@'; i++)
			a[i] = arg(*argv++);
		int nr = seccomp_syscall_resolve_name(name);
		if (nr < 0) {
			fprintf(stderr, "unknown syscall %s\n", name);
			return 2;
		}
		errno = 0;
		long ret = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		int err = ret < 0 ? errno : 0;
		int forked = !strcmp(name, "clone") || !strcmp(name, "fork") || !strcmp(name, "vfork");
		if (forked && ret == 0)
			_exit(0);
		if (forked && ret > 0)
			waitpid((pid_t)ret, NULL, 0);
		/* snprintf + write, not stdio: an allow-list profile may refuse mmap and lseek */
		char line[128];
		int len = snprintf(line, sizeof(line), "%s ret=%ld errno=%d\n", name, forked && ret > 0 ? 1 : ret, err);
		if (write(1, line, (size_t)len) != len)
			return 3;
	}
	return 0;
}

static int load(int argc, char **argv)
{
	unsigned flags = 0;
	const char *listener = NULL, *message = NULL;
	int i = 0;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i], "--"); i += 2) {
		if (i + 1 >= argc)
			return 2;
		if (!strcmp(argv[i], "--flags"))
			flags = (unsigned)strtoul(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--listener"))
			listener = argv[i + 1];
		else if (!strcmp(argv[i], "--message"))
			message = argv[i + 1];
		else
			return 2;
	}
	if (i + 2 >= argc || strcmp(argv[i + 1], "--"))
		return 2;
	const char *bpf = argv[i];
	char **cmd = argv + i + 2;

	static struct sock_filter insns[BPF_MAXINSNS];
	int fd = open(bpf, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(bpf);
	ssize_t n = read(fd, insns, sizeof(insns));
	if (n <= 0 || n % sizeof(insns[0]))
		die("read bpf");
	close(fd);
	struct sock_fprog prog = { .len = (unsigned short)(n / sizeof(insns[0])), .filter = insns };

	int sock = -1;
	if (listener) {
		struct sockaddr_un sa;
		sock = unix_socket(listener, &sa);
		if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("connect listener");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("prctl");
	int ret = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (ret < 0)
		die("seccomp");
	if (listener) {
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { .iov_base = (void *)message, .iov_len = message ? strlen(message) : 0 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &ret, sizeof(int));
		if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
			die("sendmsg");
		close(ret);
		close(sock);
	}
	if (cmd[0] && cmd[0][0] == '@')
		return calls(cmd);
	execv(cmd[0], cmd);
	die(cmd[0]);
	return 99;
}

static int agent(const char *path, const char *response)
{
	struct sockaddr_un sa;
	int s = unix_socket(path, &sa);
	unlink(path);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0)
		die("bind/listen");
	int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		die("accept");

	static char msg[65536];
	size_t len = 0;
	int nfd = -1;
	char cbuf[CMSG_SPACE(sizeof(int))];
	for (;;) {
		struct iovec iov = { .iov_base = msg + len, .iov_len = sizeof(msg) - 1 - len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		ssize_t r = recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
		if (r < 0)
			die("recvmsg");
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
				memcpy(&nfd, CMSG_DATA(cm), sizeof(int));
		if (r == 0 || len + (size_t)r >= sizeof(msg) - 1)
			break;
		len += (size_t)r;
	}
	msg[len] = '\0';
	close(c);
	printf("message %s\n", msg);
	fflush(stdout);
	if (nfd < 0) {
		fprintf(stderr, "seccomp-testload: no fd received\n");
		return 1;
	}

	for (;;) {
		struct pollfd p = { .fd = nfd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (!(p.revents & POLLIN))
			break; /* POLLHUP: no task uses the filter any more */
		struct seccomp_notif req;
		struct seccomp_notif_resp resp;
		memset(&req, 0, sizeof(req));
		if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			die("SECCOMP_IOCTL_NOTIF_RECV");
		}
		char *name = seccomp_syscall_resolve_num_arch(req.data.arch, req.data.nr);
		printf("notify %s\n", name ? name : "?");
		fflush(stdout);
		free(name);
		memset(&resp, 0, sizeof(resp));
		resp.id = req.id;
		if (!strncmp(response, "errno:", 6))
			resp.error = -atoi(response + 6);
		else if (!strncmp(response, "value:", 6))
			resp.val = atoll(response + 6);
		else
			resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
			die("SECCOMP_IOCTL_NOTIF_SEND");
	}
	unlink(path);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;
	if (argc >= 2 && !strcmp(argv[1], "load"))
		rc = load(argc - 2, argv + 2);
	else if (argc == 4 && !strcmp(argv[1], "agent"))
		rc = agent(argv[2], argv[3]);
	if (rc == 2)
		fprintf(stderr, "usage: seccomp-testload load [--flags N] [--listener PATH --message JSON] BPF -- CMD...\n"
				"       seccomp-testload agent PATH errno:N|value:N|continue\n");
	return rc;
}
