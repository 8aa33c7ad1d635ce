/* Terminals: the child creates the pty inside the container (its devpts) and hands the
 * master out; in foreground `wait` mode the parent is the receiver and proxies it. */
#include "vkinit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>

/* runc binds the pty onto /dev/console so programs that open it reach the terminal. */
static int bind_console(const char *pts, struct vk_error *err)
{
	if (mknod("/dev/console", S_IFREG | 0666, 0) < 0 && errno != EEXIST) {
		if (errno == ENOENT)
			return 0; /* no /dev in this container */
		return vk_fail(err, "console", errno, "create /dev/console");
	}
	if (mount(pts, "/dev/console", NULL, MS_BIND, NULL) < 0)
		return vk_fail(err, "console", errno, "bind \"%s\" to /dev/console", pts);
	return 0;
}

int console_setup(struct vk_plan *p, int sock, bool create_mode, struct vk_error *err)
{
	cleanup_close int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	cleanup_close int slave = -1;
	char name[64];
	int unlock = 0, n;

	if (master < 0)
		return vk_fail(err, "console", errno, "open /dev/ptmx");
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &n) < 0)
		return vk_fail(err, "console", errno, "unlock pty");
	snprintf(name, sizeof name, "/dev/pts/%d", n);
	/* TIOCGPTPEER opens the peer of this very master, no path lookup to race with. */
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return vk_fail(err, "console", errno, "open \"%s\"", name);
	if (p->has_console_size) {
		struct winsize ws = { .ws_row = p->rows, .ws_col = p->cols };
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
			return vk_fail(err, "console", errno, "set the terminal size");
	}
	/* The user must be able to use its terminal (runc chowns stdio the same way). */
	if (p->has_user && p->uid != 0 && fchown(slave, p->uid, (gid_t)-1) < 0)
		return vk_fail(err, "console", errno, "chown \"%s\"", name);
	if (create_mode && bind_console(name, err) < 0)
		return -1;
	if (send_fd(sock, master, name) < 0)
		return vk_fail(err, "console", errno, "send the pty master");
	close(sock);
	for (int fd = 0; fd < 3; fd++)
		if (dup2(slave, fd) < 0)
			return vk_fail(err, "console", errno, "dup2 the pty slave");
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		return vk_fail(err, "console", errno, "set the controlling terminal");
	return 0;
}

/* ---- parent-side proxy -------------------------------------------------------------- */

void proxy_init(struct vk_proxy *px)
{
	memset(px, 0, sizeof *px);
	px->master = -1;
}

void proxy_resize(struct vk_proxy *px)
{
	struct winsize ws;

	if (px->master >= 0 && isatty(0) && ioctl(0, TIOCGWINSZ, &ws) == 0)
		ioctl(px->master, TIOCSWINSZ, &ws);
}

void proxy_attach(struct vk_proxy *px, int master)
{
	px->master = master;
	px->stdin_open = true;
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	if (isatty(0) && tcgetattr(0, &px->saved) == 0) {
		struct termios raw = px->saved;
		cfmakeraw(&raw);
		/* The container's terminal does the line editing and echo now. */
		if (tcsetattr(0, TCSANOW, &raw) == 0)
			px->raw = true;
	}
	proxy_resize(px);
}

static void flush_pending(struct vk_proxy *px)
{
	while (px->poff < px->plen) {
		ssize_t n = write(px->master, px->pending + px->poff, px->plen - px->poff);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			px->poff = px->plen; /* the terminal is gone: drop the input */
			break;
		}
		px->poff += (size_t)n;
	}
	px->plen = px->poff = 0;
}

int proxy_stdin(struct vk_proxy *px)
{
	ssize_t n = read(0, px->pending, sizeof px->pending);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		/* Piped stdin ended: send the terminal's EOF character so a reader sees it. */
		struct termios t;
		px->stdin_open = false;
		if (n == 0 && !isatty(0) && tcgetattr(px->master, &t) == 0) {
			px->pending[0] = (char)t.c_cc[VEOF];
			px->plen = 1;
			flush_pending(px);
		}
		return n < 0 ? -1 : 0;
	}
	px->plen = (size_t)n;
	px->poff = 0;
	flush_pending(px);
	return 0;
}

int proxy_master_out(struct vk_proxy *px, short revents)
{
	char buf[8192];
	ssize_t n;

	if (revents & POLLOUT)
		flush_pending(px);
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return 0;
	n = read(px->master, buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		/* EIO: every slave fd is closed. */
		close(px->master);
		px->master = -1;
		return n < 0 && errno != EIO ? -1 : 0;
	}
	return write_all(1, buf, (size_t)n);
}

/* After the child exits, output may still sit in the tty layer; read until the pty
 * reports that no slave is open, or it has been quiet for a moment. */
void proxy_drain(struct vk_proxy *px)
{
	while (px->master >= 0) {
		struct pollfd pfd = { .fd = px->master, .events = POLLIN };
		if (poll(&pfd, 1, 200) <= 0)
			break;
		proxy_master_out(px, pfd.revents);
	}
	if (px->master >= 0)
		close(px->master);
	px->master = -1;
}

void proxy_restore(struct vk_proxy *px)
{
	if (px->raw)
		tcsetattr(0, TCSANOW, &px->saved);
	px->raw = false;
}
