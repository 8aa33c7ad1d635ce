/* vkinit: the helper that runs between clone and exec. Contract: PROTOCOL.md. */
#ifndef VKINIT_H
#define VKINIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <termios.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------------------ */

/* The single error struct (as crun's libcrun_error_t). `step` is the token reported to
 * Node in `error <step> <errno> <message>`; errnum is 0 when no errno applies. */
struct vk_error {
	int errnum;
	char step[32];
	char msg[1024];
};

/* Fill err; appends ": strerror(errnum)" when errnum != 0. Always returns -1. */
int vk_fail(struct vk_error *err, const char *step, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- cleanup attributes ------------------------------------------------------------ */

static inline void vk_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void vk_freep(void *p)
{
	free(*(void **)p);
}
#define cleanup_close __attribute__((cleanup(vk_closep)))
#define cleanup_free __attribute__((cleanup(vk_freep)))

/* Hand an fd out of a cleanup_close variable. */
static inline int take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

/* ---- the plan (see PROTOCOL.md "Plan encoding") --------------------------------------- */

struct vk_join {
	int nstype;
	const char *path;
};

struct vk_mount {
	const char *source, *dest, *fstype, *data;
	unsigned long flags;
	unsigned long *prop;
	size_t nprop;
	bool file;
};

struct vk_device {
	const char *path;
	char type; /* c b p u */
	unsigned int major, minor;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	bool bind;
};

struct vk_pair {
	const char *a, *b;
};

struct vk_rlimit {
	int resource;
	rlim_t soft, hard;
};

struct vk_hook {
	bool start; /* startContainer, else createContainer */
	unsigned int timeout;
	const char *path;
	char **argv, **envp; /* NULL-terminated */
};

struct vk_plan {
	char *data; /* the frame; every string below points into it */
	size_t len;

	bool exec_mode;
	unsigned long clone_flags;
	struct vk_join *joins;
	size_t njoins;
	const char *uid_map, *gid_map;
	bool setgroups_deny;
	const char **cgroup_procs;
	size_t ncgroup_procs;
	const char *exec_fifo, *console_socket;
	bool wait, sync_hooks;
	int preserve_fds;
	const char *keyring; /* session keyring to join; NULL: keep the caller's */
	uint32_t keyring_perm; /* bits OR'ed into its permissions; 0: leave them */
	bool loopback_up;

	const char *rootfs;
	bool root_readonly, no_pivot;
	unsigned long root_propagation;
	struct vk_mount *mounts;
	size_t nmounts;
	struct vk_device *devices;
	size_t ndevices;
	struct vk_pair *symlinks; /* a = target, b = link path */
	size_t nsymlinks;
	const char **masked;
	size_t nmasked;
	const char **readonly;
	size_t nreadonly;
	struct vk_pair *sysctls; /* a = path under /proc/sys, b = value */
	size_t nsysctls;
	const char *hostname, *domainname;

	bool terminal, has_console_size;
	unsigned short rows, cols;
	const char *cwd;
	char **args; /* NULL-terminated */
	size_t nargs;
	char **env; /* NULL-terminated */
	size_t nenv;
	struct vk_rlimit *rlimits;
	size_t nrlimits;
	bool has_oom;
	int oom_score_adj;
	bool has_user;
	uid_t uid;
	gid_t gid;
	bool has_groups;
	gid_t *groups;
	size_t ngroups;
	bool has_umask;
	mode_t umask;
	bool has_caps;
	uint64_t cap_bounding, cap_effective, cap_inheritable, cap_permitted, cap_ambient;
	int last_cap;
	bool no_new_privs;
	/* Armed for the workload's execve at the end of process_setup (lsm.c). */
	const char *apparmor_profile; /* written as "exec <profile>" */
	const char *selinux_label; /* exec label; also the session keyring's (keycreate) */
	const char *mount_label;   /* security.selinux of each mqueue mount's root */
	struct vk_hook *hooks;
	size_t nhooks;
	const char *seccomp_path;
	unsigned int seccomp_flags;
	const char *seccomp_listener; /* agent socket for the NEW_LISTENER fd */
	/* vkernel_filter: the vkernel syscall filter, loaded after the container's own one,
	 * right before execve; its listener goes to the vkernel agent (PROTOCOL.md). */
	const char *vk_filter_path;
	unsigned int vk_filter_flags;
	const char *vk_agent;
	const char *vk_metadata;

	/* Filled at run time. */
	int exec_fifo_fd; /* O_PATH, opened by the parent; -1 without exec_fifo */
	void *seccomp_prog; /* read by the parent while it still sees the host fs */
	size_t seccomp_len;
	char *state; /* OCI state JSON from Node's `go`, stdin of createContainer hooks */
	size_t state_len;
	char *start_state; /* ... and of startContainer hooks (status "created") */
	size_t start_state_len;
	int agent_fd; /* seccomp_listener, connected by the parent; -1 without */
	char *agent_msg; /* the JSON the agent gets with the listener fd (from Node) */
	void *vk_filter_prog;
	size_t vk_filter_len;
	int vk_agent_fd; /* vkernel_filter's agent, connected by the parent; -1 without */
};

int plan_parse(struct vk_plan *p, char *data, size_t len, struct vk_error *err);

/* ---- util.c ---------------------------------------------------------------------- */

int write_all(int fd, const void *buf, size_t len);
int read_file(const char *path, char **out, size_t *len);
int write_file_at(int dirfd, const char *path, const char *data);
void *vec_push(void *arr, size_t *n, size_t size);
int parse_u64(const char *s, int base, uint64_t *out);
int parse_i64(const char *s, int64_t *out);
/* "/proc/self/fd/N": mount(2) and friends act on what the fd points to. */
const char *fd_path(int fd, char buf[static 32]);

/* ---- sync.c: framing and messages ----------------------------------------------------- */

struct vk_reader {
	int fd;
	char *buf;
	size_t len, cap;
	bool eof;
};

/* One read(): >0 bytes, 0 at EOF, -1 with errno (EAGAIN passes through). */
ssize_t reader_fill(struct vk_reader *r);
/* 1 and a malloc'd NUL-terminated line/frame when complete, 0 when more input is
 * needed, -1 (EINVAL) when malformed. */
int reader_take_line(struct vk_reader *r, char **line);
int reader_take_frame(struct vk_reader *r, char **data, size_t *len);
/* Blocking versions. */
int read_frame(struct vk_reader *r, char **data, size_t *len, struct vk_error *err);
int read_line(struct vk_reader *r, char **line, struct vk_error *err);

int send_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int send_frame(int fd, const void *data, size_t len);
int send_error(int fd, const struct vk_error *err);
int send_fd(int sock, int fd, const char *name);
int connect_unix(const char *path);
int recv_fd(int sock);

/* ---- parent.c / child.c -------------------------------------------------------------- */

int parent_main(struct vk_plan *p, int node);
/* Never returns. close_fds: the parent's fds the child must not keep. */
__attribute__((noreturn)) void child_main(struct vk_plan *p, int chan, int console,
					   const int *close_fds, size_t nclose);

/* ---- mounts.c / devices.c (create mode, child) ------------------------------------------ */

int open_in_root(int rootfd, const char *path, int flags);
int mkpath_in_root(int rootfd, const char *path, bool file, const char *step,
		   struct vk_error *err);
int rootfs_prepare(struct vk_plan *p, int *rootfd, struct vk_error *err);
int rootfs_mounts(struct vk_plan *p, int rootfd, struct vk_error *err);
int rootfs_symlinks(struct vk_plan *p, int rootfd, struct vk_error *err);
int rootfs_pivot(struct vk_plan *p, int rootfd, struct vk_error *err);
int rootfs_finalize(struct vk_plan *p, struct vk_error *err);
int rootfs_sysctl(struct vk_plan *p, struct vk_error *err);
int devices_create(struct vk_plan *p, int rootfd, struct vk_error *err);

/* ---- console.c ---------------------------------------------------------------------- */

int console_setup(struct vk_plan *p, int sock, bool create_mode, struct vk_error *err);

/* Parent side of `wait` + `terminal` without a console socket. */
struct vk_proxy {
	int master;
	bool raw;
	bool stdin_open;
	size_t plen, poff;
	char pending[4096];
	struct termios saved;
};
void proxy_init(struct vk_proxy *px);
void proxy_attach(struct vk_proxy *px, int master);
void proxy_resize(struct vk_proxy *px);
/* Move bytes; return -1 on a fatal error. */
int proxy_stdin(struct vk_proxy *px);
int proxy_master_out(struct vk_proxy *px, short revents);
void proxy_drain(struct vk_proxy *px);
void proxy_restore(struct vk_proxy *px);

/* ---- process.c ---------------------------------------------------------------------- */

int process_setup(struct vk_plan *p, bool create_mode, struct vk_error *err);
int process_lookup(struct vk_plan *p, char **path, struct vk_error *err);
int process_exec(struct vk_plan *p, const char *path, struct vk_error *err);

/* ---- setup.c: session keyring, loopback ----------------------------------------------- */

int keyring_join(struct vk_plan *p, struct vk_error *err);
int loopback_set_up(struct vk_error *err);

/* ---- lsm.c: AppArmor / SELinux ------------------------------------------------------- */

/* Arm apparmor_profile / selinux_label for the next execve. */
int lsm_exec_attrs(struct vk_plan *p, struct vk_error *err);
/* selinux_label as the label of keys created from now (set), or clear it again. */
int lsm_keycreate(struct vk_plan *p, bool set, struct vk_error *err);

/* ---- hooks.c ------------------------------------------------------------------------ */

int hooks_run(struct vk_plan *p, bool start, struct vk_error *err);

#endif
