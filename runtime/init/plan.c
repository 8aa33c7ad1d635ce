/* Plan decoding: records `op NUL argc NUL arg1 NUL ... argN NUL` (PROTOCOL.md). Every op
 * is checked here, so later stages never see a malformed value. */
#include "vkinit.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/mount.h>

struct rec {
	const char *op;
	size_t argc;
	char **argv;
};

typedef int (*rec_fn)(struct vk_plan *p, struct rec *r);

#define BAD (errno = EINVAL, -1)

static int num_u(const char *s, uint64_t max, uint64_t *out)
{
	if (parse_u64(s, 10, out) < 0 || *out > max)
		return BAD;
	return 0;
}

static int num_ul(const char *s, unsigned long *out)
{
	uint64_t v;

	if (num_u(s, ~0UL, &v) < 0)
		return -1;
	*out = (unsigned long)v;
	return 0;
}

static int num_id(const char *s, uint32_t *out)
{
	uint64_t v;

	if (num_u(s, UINT32_MAX, &v) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Copies argv[from..to) into a fresh NULL-terminated array (pointers into the frame). */
static char **str_array(char **argv, size_t from, size_t to)
{
	char **a = calloc(to - from + 1, sizeof *a);

	if (a)
		for (size_t i = from; i < to; i++)
			a[i - from] = argv[i];
	return a;
}

static int push_str(const char ***arr, size_t *n, const char *s)
{
	const char **e = vec_push(arr, n, sizeof *e);

	if (!e)
		return -1;
	*e = s;
	return 0;
}

static int push_pair(struct vk_pair **arr, size_t *n, const char *a, const char *b)
{
	struct vk_pair *e = vec_push(arr, n, sizeof *e);

	if (!e)
		return -1;
	e->a = a;
	e->b = b;
	return 0;
}

static int op_mode(struct vk_plan *p, struct rec *r)
{
	if (strcmp(r->argv[0], "create") && strcmp(r->argv[0], "exec"))
		return BAD;
	p->exec_mode = !strcmp(r->argv[0], "exec");
	return 0;
}

static int op_clone_flags(struct vk_plan *p, struct rec *r)
{
	return num_ul(r->argv[0], &p->clone_flags);
}

static int op_join(struct vk_plan *p, struct rec *r)
{
	struct vk_join *j = vec_push(&p->joins, &p->njoins, sizeof *j);
	uint64_t t;

	if (!j || num_u(r->argv[0], INT32_MAX, &t) < 0)
		return -1;
	j->nstype = (int)t;
	j->path = r->argv[1];
	return 0;
}

static int op_uid_map(struct vk_plan *p, struct rec *r)
{
	p->uid_map = r->argv[0];
	return 0;
}

static int op_gid_map(struct vk_plan *p, struct rec *r)
{
	p->gid_map = r->argv[0];
	return 0;
}

static int op_setgroups_deny(struct vk_plan *p, struct rec *r)
{
	(void)r;
	p->setgroups_deny = true;
	return 0;
}

static int op_cgroup_procs(struct vk_plan *p, struct rec *r)
{
	return push_str(&p->cgroup_procs, &p->ncgroup_procs, r->argv[0]);
}

static int op_exec_fifo(struct vk_plan *p, struct rec *r)
{
	p->exec_fifo = r->argv[0];
	return 0;
}

static int op_console_socket(struct vk_plan *p, struct rec *r)
{
	p->console_socket = r->argv[0];
	return 0;
}

static int op_wait(struct vk_plan *p, struct rec *r)
{
	(void)r;
	p->wait = true;
	return 0;
}

static int op_sync_hooks(struct vk_plan *p, struct rec *r)
{
	(void)r;
	p->sync_hooks = true;
	return 0;
}

static int op_preserve_fds(struct vk_plan *p, struct rec *r)
{
	uint64_t n;

	if (num_u(r->argv[0], 65536, &n) < 0)
		return -1;
	p->preserve_fds = (int)n;
	return 0;
}

static int op_session_keyring(struct vk_plan *p, struct rec *r)
{
	uint32_t perm;

	if (!*r->argv[0] || num_id(r->argv[1], &perm) < 0)
		return BAD;
	p->keyring = r->argv[0];
	p->keyring_perm = perm;
	return 0;
}

static int op_loopback_up(struct vk_plan *p, struct rec *r)
{
	(void)r;
	p->loopback_up = true;
	return 0;
}

static int op_rootfs(struct vk_plan *p, struct rec *r)
{
	if (r->argv[0][0] != '/')
		return BAD;
	p->rootfs = r->argv[0];
	return 0;
}

static int op_root_readonly(struct vk_plan *p, struct rec *r)
{
	(void)r;
	p->root_readonly = true;
	return 0;
}

static int op_no_pivot(struct vk_plan *p, struct rec *r)
{
	(void)r;
	p->no_pivot = true;
	return 0;
}

static int op_root_propagation(struct vk_plan *p, struct rec *r)
{
	return num_ul(r->argv[0], &p->root_propagation);
}

static int op_mount(struct vk_plan *p, struct rec *r)
{
	struct vk_mount *m = vec_push(&p->mounts, &p->nmounts, sizeof *m);
	char *csv = r->argv[4];

	if (!m)
		return -1;
	m->source = r->argv[0];
	m->dest = r->argv[1];
	m->fstype = r->argv[2];
	m->data = r->argv[5];
	if (num_ul(r->argv[3], &m->flags) < 0)
		return -1;
	if (strcmp(r->argv[6], "dir") && strcmp(r->argv[6], "file"))
		return BAD;
	m->file = !strcmp(r->argv[6], "file");
	/* The csv is parsed in place into numbers; the string itself is not needed later. */
	while (*csv) {
		char *comma = strchr(csv, ',');
		unsigned long *e = vec_push(&m->prop, &m->nprop, sizeof *e);
		if (!e)
			return -1;
		if (comma)
			*comma = '\0';
		if (num_ul(csv, e) < 0)
			return -1;
		if (!comma)
			break;
		csv = comma + 1;
	}
	return 0;
}

static int op_device(struct vk_plan *p, struct rec *r)
{
	struct vk_device *d = vec_push(&p->devices, &p->ndevices, sizeof *d);
	uint64_t mode;

	if (!d)
		return -1;
	d->path = r->argv[0];
	if (strlen(r->argv[1]) != 1 || !strchr("cbpu", r->argv[1][0]))
		return BAD;
	d->type = r->argv[1][0];
	if (num_id(r->argv[2], &d->major) < 0 || num_id(r->argv[3], &d->minor) < 0 ||
	    num_u(r->argv[4], 07777, &mode) < 0 || num_id(r->argv[5], &d->uid) < 0 ||
	    num_id(r->argv[6], &d->gid) < 0)
		return -1;
	d->mode = (mode_t)mode;
	if (strcmp(r->argv[7], "bind") && strcmp(r->argv[7], "mknod"))
		return BAD;
	d->bind = !strcmp(r->argv[7], "bind");
	return 0;
}

static int op_symlink(struct vk_plan *p, struct rec *r)
{
	return push_pair(&p->symlinks, &p->nsymlinks, r->argv[0], r->argv[1]);
}

static int op_masked(struct vk_plan *p, struct rec *r)
{
	return push_str(&p->masked, &p->nmasked, r->argv[0]);
}

static int op_readonly(struct vk_plan *p, struct rec *r)
{
	return push_str(&p->readonly, &p->nreadonly, r->argv[0]);
}

static int op_sysctl(struct vk_plan *p, struct rec *r)
{
	return push_pair(&p->sysctls, &p->nsysctls, r->argv[0], r->argv[1]);
}

static int op_hostname(struct vk_plan *p, struct rec *r)
{
	p->hostname = r->argv[0];
	return 0;
}

static int op_domainname(struct vk_plan *p, struct rec *r)
{
	p->domainname = r->argv[0];
	return 0;
}

static int op_terminal(struct vk_plan *p, struct rec *r)
{
	(void)r;
	p->terminal = true;
	return 0;
}

static int op_console_size(struct vk_plan *p, struct rec *r)
{
	uint64_t rows, cols;

	if (num_u(r->argv[0], 0xffff, &rows) < 0 || num_u(r->argv[1], 0xffff, &cols) < 0)
		return -1;
	p->has_console_size = true;
	p->rows = (unsigned short)rows;
	p->cols = (unsigned short)cols;
	return 0;
}

static int op_cwd(struct vk_plan *p, struct rec *r)
{
	p->cwd = r->argv[0];
	return 0;
}

static int op_arg(struct vk_plan *p, struct rec *r)
{
	char **e = vec_push(&p->args, &p->nargs, sizeof *e);

	if (!e)
		return -1;
	*e = r->argv[0];
	return 0;
}

static int op_env(struct vk_plan *p, struct rec *r)
{
	char **e = vec_push(&p->env, &p->nenv, sizeof *e);

	if (!e)
		return -1;
	*e = r->argv[0];
	return 0;
}

static int op_rlimit(struct vk_plan *p, struct rec *r)
{
	struct vk_rlimit *l = vec_push(&p->rlimits, &p->nrlimits, sizeof *l);
	uint64_t res, soft, hard;

	if (!l || num_u(r->argv[0], 64, &res) < 0 || parse_u64(r->argv[1], 10, &soft) < 0 ||
	    parse_u64(r->argv[2], 10, &hard) < 0)
		return BAD;
	l->resource = (int)res;
	l->soft = (rlim_t)soft;
	l->hard = (rlim_t)hard;
	return 0;
}

static int op_oom_score_adj(struct vk_plan *p, struct rec *r)
{
	int64_t v;

	if (parse_i64(r->argv[0], &v) < 0 || v < -1000 || v > 1000)
		return BAD;
	p->has_oom = true;
	p->oom_score_adj = (int)v;
	return 0;
}

static int op_user(struct vk_plan *p, struct rec *r)
{
	p->has_user = true;
	return num_id(r->argv[0], &p->uid) < 0 ? -1 : num_id(r->argv[1], &p->gid);
}

static int op_groups(struct vk_plan *p, struct rec *r)
{
	p->has_groups = true;
	for (size_t i = 0; i < r->argc; i++) {
		gid_t *g = vec_push(&p->groups, &p->ngroups, sizeof *g);
		if (!g || num_id(r->argv[i], g) < 0)
			return -1;
	}
	return 0;
}

static int op_umask(struct vk_plan *p, struct rec *r)
{
	uint64_t v;

	if (num_u(r->argv[0], 0777, &v) < 0)
		return -1;
	p->has_umask = true;
	p->umask = (mode_t)v;
	return 0;
}

static int op_caps(struct vk_plan *p, struct rec *r)
{
	uint64_t *masks[] = { &p->cap_bounding, &p->cap_effective, &p->cap_inheritable,
			      &p->cap_permitted, &p->cap_ambient };
	uint64_t last;

	for (size_t i = 0; i < 5; i++)
		if (parse_u64(r->argv[i], 16, masks[i]) < 0)
			return BAD;
	if (num_u(r->argv[5], 63, &last) < 0)
		return -1;
	p->has_caps = true;
	p->last_cap = (int)last;
	return 0;
}

static int op_no_new_privs(struct vk_plan *p, struct rec *r)
{
	(void)r;
	p->no_new_privs = true;
	return 0;
}

static int op_hook(struct vk_plan *p, struct rec *r)
{
	struct vk_hook *h = vec_push(&p->hooks, &p->nhooks, sizeof *h);
	uint64_t timeout, nargs;

	if (!h)
		return -1;
	if (!strcmp(r->argv[0], "startContainer"))
		h->start = true;
	else if (strcmp(r->argv[0], "createContainer"))
		return BAD;
	if (num_u(r->argv[1], UINT32_MAX, &timeout) < 0 ||
	    num_u(r->argv[3], r->argc - 4, &nargs) < 0)
		return -1;
	h->timeout = (unsigned int)timeout;
	h->path = r->argv[2];
	h->argv = nargs ? str_array(r->argv, 4, 4 + nargs) : str_array(&r->argv[2], 0, 1);
	h->envp = str_array(r->argv, 4 + nargs, r->argc);
	return h->argv && h->envp ? 0 : -1;
}

static int op_seccomp(struct vk_plan *p, struct rec *r)
{
	uint64_t flags;

	if (num_u(r->argv[1], UINT32_MAX, &flags) < 0)
		return -1;
	p->seccomp_path = r->argv[0];
	p->seccomp_flags = (unsigned int)flags;
	return 0;
}

static int op_seccomp_listener(struct vk_plan *p, struct rec *r)
{
	if (r->argv[0][0] != '/')
		return BAD;
	p->seccomp_listener = r->argv[0];
	return 0;
}

/* A record whose one argument is a non-empty string (an LSM profile or label). */
static int nonempty(const char **dst, struct rec *r)
{
	if (!r->argv[0][0])
		return BAD;
	*dst = r->argv[0];
	return 0;
}

static int op_apparmor_profile(struct vk_plan *p, struct rec *r) { return nonempty(&p->apparmor_profile, r); }
static int op_selinux_label(struct vk_plan *p, struct rec *r) { return nonempty(&p->selinux_label, r); }
static int op_mount_label(struct vk_plan *p, struct rec *r) { return nonempty(&p->mount_label, r); }

/* vkernel_filter <bpf path> <flags> <agent socket> [metadata] */
static int op_vkernel_filter(struct vk_plan *p, struct rec *r)
{
	uint64_t flags;

	if (num_u(r->argv[1], UINT32_MAX, &flags) < 0)
		return -1;
	if (r->argv[0][0] != '/' || r->argv[2][0] != '/')
		return BAD;
	p->vk_filter_path = r->argv[0];
	p->vk_filter_flags = (unsigned int)flags;
	p->vk_agent = r->argv[2];
	p->vk_metadata = r->argc > 3 ? r->argv[3] : "";
	return 0;
}

static const struct {
	const char *op;
	size_t min, max; /* argc bounds */
	rec_fn fn;
} ops[] = {
	{ "mode", 1, 1, op_mode },
	{ "clone_flags", 1, 1, op_clone_flags },
	{ "join", 2, 2, op_join },
	{ "uid_map", 1, 1, op_uid_map },
	{ "gid_map", 1, 1, op_gid_map },
	{ "setgroups_deny", 0, 0, op_setgroups_deny },
	{ "cgroup_procs", 1, 1, op_cgroup_procs },
	{ "exec_fifo", 1, 1, op_exec_fifo },
	{ "console_socket", 1, 1, op_console_socket },
	{ "wait", 0, 0, op_wait },
	{ "sync_hooks", 0, 0, op_sync_hooks },
	{ "preserve_fds", 1, 1, op_preserve_fds },
	{ "session_keyring", 2, 2, op_session_keyring },
	{ "loopback_up", 0, 0, op_loopback_up },
	{ "rootfs", 1, 1, op_rootfs },
	{ "root_readonly", 0, 0, op_root_readonly },
	{ "no_pivot", 0, 0, op_no_pivot },
	{ "root_propagation", 1, 1, op_root_propagation },
	{ "mount", 7, 7, op_mount },
	{ "device", 8, 8, op_device },
	{ "symlink", 2, 2, op_symlink },
	{ "masked", 1, 1, op_masked },
	{ "readonly", 1, 1, op_readonly },
	{ "sysctl", 2, 2, op_sysctl },
	{ "hostname", 1, 1, op_hostname },
	{ "domainname", 1, 1, op_domainname },
	{ "terminal", 0, 0, op_terminal },
	{ "console_size", 2, 2, op_console_size },
	{ "cwd", 1, 1, op_cwd },
	{ "arg", 1, 1, op_arg },
	{ "env", 1, 1, op_env },
	{ "rlimit", 3, 3, op_rlimit },
	{ "oom_score_adj", 1, 1, op_oom_score_adj },
	{ "user", 2, 2, op_user },
	{ "groups", 0, 65536, op_groups },
	{ "umask", 1, 1, op_umask },
	{ "caps", 6, 6, op_caps },
	{ "no_new_privs", 0, 0, op_no_new_privs },
	{ "apparmor_profile", 1, 1, op_apparmor_profile },
	{ "selinux_label", 1, 1, op_selinux_label },
	{ "mount_label", 1, 1, op_mount_label },
	{ "hook", 4, 1u << 20, op_hook },
	{ "seccomp", 2, 2, op_seccomp },
	{ "seccomp_listener", 1, 1, op_seccomp_listener },
	{ "vkernel_filter", 3, 4, op_vkernel_filter },
};

/* Next NUL-terminated string at *pos, or NULL when the buffer ends first. */
static char *next_str(char *data, size_t len, size_t *pos)
{
	char *s = data + *pos;
	char *nul = *pos < len ? memchr(s, '\0', len - *pos) : NULL;

	if (!nul)
		return NULL;
	*pos = (size_t)(nul - data) + 1;
	return s;
}

static int apply_record(struct vk_plan *p, struct rec *r, struct vk_error *err)
{
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if (strcmp(ops[i].op, r->op))
			continue;
		if (r->argc < ops[i].min || r->argc > ops[i].max)
			return vk_fail(err, "plan", EINVAL, "record \"%s\": %zu arguments", r->op,
				       r->argc);
		if (ops[i].fn(p, r) < 0)
			return vk_fail(err, "plan", errno ? errno : EINVAL, "record \"%s\"", r->op);
		return 0;
	}
	return vk_fail(err, "plan", EINVAL, "unknown record \"%s\"", r->op);
}

static int plan_check(struct vk_plan *p, struct vk_error *err)
{
	if (!p->nargs)
		return vk_fail(err, "plan", EINVAL, "no \"arg\" records");
	if (p->terminal && !p->console_socket && !p->wait)
		return vk_fail(err, "plan", EINVAL, "terminal needs console_socket or wait");
	if ((p->rootfs || p->exec_fifo) && p->exec_mode)
		return vk_fail(err, "plan", EINVAL, "rootfs or exec_fifo in exec mode");
	if (p->rootfs && !(p->clone_flags & CLONE_NEWNS)) {
		bool joined = false;
		for (size_t i = 0; i < p->njoins; i++)
			joined |= p->joins[i].nstype == CLONE_NEWNS;
		if (!joined)
			return vk_fail(err, "plan", EINVAL, "rootfs needs a mount namespace");
	}
	if ((p->nmasked || p->nreadonly || p->root_readonly || p->nmounts || p->ndevices ||
	     p->nsymlinks) &&
	    !p->rootfs)
		return vk_fail(err, "plan", EINVAL, "mount steps without rootfs");
	/* Only a namespace of our own: never the host's (or a joined) lo. */
	if (p->loopback_up && !(p->clone_flags & CLONE_NEWNET))
		return vk_fail(err, "plan", EINVAL, "loopback_up needs a new network namespace");
	/* A listener fd nobody receives would leave notifying syscalls hanging for good. */
	if (!!(p->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) != !!p->seccomp_listener ||
	    (p->seccomp_listener && !p->seccomp_path))
		return vk_fail(err, "plan", EINVAL,
			       "seccomp NEW_LISTENER and seccomp_listener go together");
	return 0;
}

int plan_parse(struct vk_plan *p, char *data, size_t len, struct vk_error *err)
{
	size_t pos = 0;

	p->data = data;
	p->len = len;
	p->root_propagation = MS_SLAVE | MS_REC;
	p->cwd = "/";
	p->exec_fifo_fd = -1;
	p->agent_fd = -1;
	p->vk_agent_fd = -1;
	while (pos < len) {
		struct rec r = { 0 };
		cleanup_free char **argv = NULL;
		const char *s;
		uint64_t argc;

		r.op = next_str(data, len, &pos);
		s = r.op ? next_str(data, len, &pos) : NULL;
		if (!s || parse_u64(s, 10, &argc) < 0 || argc > len)
			return vk_fail(err, "plan", EINVAL, "bad record header at byte %zu", pos);
		r.argc = (size_t)argc;
		argv = calloc(r.argc + 1, sizeof *argv);
		if (!argv)
			return vk_fail(err, "plan", ENOMEM, "record \"%s\"", r.op);
		for (size_t i = 0; i < r.argc; i++)
			if (!(argv[i] = next_str(data, len, &pos)))
				return vk_fail(err, "plan", EINVAL, "record \"%s\" is truncated",
					       r.op);
		r.argv = argv;
		errno = 0;
		if (apply_record(p, &r, err) < 0)
			return -1;
	}
	/* execve wants NULL-terminated vectors; vec_push zeroes nothing beyond n. */
	if (!vec_push(&p->args, &p->nargs, sizeof(char *)) ||
	    !vec_push(&p->env, &p->nenv, sizeof(char *)))
		return vk_fail(err, "plan", ENOMEM, "argv");
	p->nargs--;
	p->nenv--;
	return plan_check(p, err);
}
