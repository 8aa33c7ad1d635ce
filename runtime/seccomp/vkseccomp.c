/*
 * vkseccomp: compiles a flat seccomp plan (made by runtime/seccomp/plan.ts) into a kernel
 * BPF program (an array of struct sock_filter) with libseccomp.
 *
 *   vkseccomp [-o FILE]   plan on stdin, BPF to stdout (or FILE)
 *   vkseccomp --pfc       plan on stdin, libseccomp's pseudo filter code to stdout (debug)
 *   vkseccomp --probe     what the running kernel supports:
 *                           flags <mask>        SECCOMP_FILTER_FLAG_* seccomp(2) accepts
 *                           actions <n>,<n>...  SECCOMP_RET_* values it knows (decimal)
 *                           libseccomp <major>.<minor>.<micro> <api level>
 *
 * The plan is pre-validated text; the format is documented in plan.ts. All policy (which
 * action, which errno, how comparisons group) is decided in TypeScript; this tool resolves
 * syscall names for the architectures and calls libseccomp. It does not load the filter:
 * the init helper does that with seccomp(2) and the flags TypeScript computed.
 *
 * stderr, one line each:
 *   warning unknown-syscall <idx> <name>   libseccomp does not know the name: rule skipped
 *   error <text>                           exit 1: the profile cannot be compiled
 *   usage/plan errors                      exit 2: a bug on the TypeScript side
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PLAN_VERSION "1"
#define MAX_PLAN (16u << 20)
#define MAX_TOKENS (5 + 4 * 6 + 1)

static void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int code, const char *fmt, ...)
{
	va_list ap;
	fputs(code == 1 ? "error " : "vkseccomp: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static char *read_all(int fd, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		die(2, "out of memory");
	for (;;) {
		if (n == cap) {
			if (cap >= MAX_PLAN)
				die(2, "plan too large");
			cap *= 2;
			buf = realloc(buf, cap + 1);
			if (!buf)
				die(2, "out of memory");
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die(2, "read plan: %s", strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static uint64_t num(const char *s, uint64_t max)
{
	char *end;
	if (!s || !*s || *s == '-')
		die(2, "plan: bad number \"%s\"", s ? s : "");
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		die(2, "plan: bad number \"%s\"", s);
	return v;
}

/* Splits a line at single spaces; returns the token count. */
static int split(char *line, char **tok)
{
	int n = 0;
	for (char *p = line; p && *p; n++) {
		if (n == MAX_TOKENS)
			die(2, "plan: too many tokens");
		tok[n] = p;
		p = strchr(p, ' ');
		if (p)
			*p++ = '\0';
	}
	return n;
}

static void compile(int pfc, const char *out)
{
	size_t len;
	char *plan = read_all(0, &len), *save = NULL, *tok[MAX_TOKENS];
	scmp_filter_ctx ctx = NULL;
	int ended = 0, lineno = 0, rc;

	if (memchr(plan, '\0', len))
		die(2, "plan: NUL byte");
	for (char *line = strtok_r(plan, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int n = split(line, tok);
		lineno++;
		if (ended || n == 0)
			die(2, "plan: unexpected line %s", line);
		if (lineno == 1) {
			if (n != 2 || strcmp(tok[0], "vkseccomp") || strcmp(tok[1], PLAN_VERSION))
				die(2, "plan: expected header \"vkseccomp %s\"", PLAN_VERSION);
		} else if (lineno == 2) {
			if (n != 2 || strcmp(tok[0], "default"))
				die(2, "plan: expected \"default\" on line 2");
			ctx = seccomp_init((uint32_t)num(tok[1], UINT32_MAX));
			if (!ctx)
				die(1, "seccomp_init: invalid default action %s", tok[1]);
		} else if (!strcmp(tok[0], "arch") && n == 2) {
			uint32_t arch = seccomp_arch_resolve_name(tok[1]);
			if (arch == 0)
				die(1, "arch %s: not supported by this libseccomp", tok[1]);
			rc = seccomp_arch_add(ctx, arch);
			if (rc < 0 && rc != -EEXIST)
				die(1, "arch %s: %s", tok[1], strerror(-rc));
		} else if (!strcmp(tok[0], "optimize") && n == 2) {
			/* best effort, as runc: older libseccomp lacks it */
			seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, (uint32_t)num(tok[1], 2));
		} else if (!strcmp(tok[0], "rule") && n >= 5) {
			struct scmp_arg_cmp cmp[6];
			unsigned ncmp = (unsigned)num(tok[4], 6);
			uint32_t action = (uint32_t)num(tok[3], UINT32_MAX);
			if ((unsigned)n != 5 + 4 * ncmp)
				die(2, "plan: rule %s %s: wrong token count", tok[1], tok[2]);
			for (unsigned i = 0; i < ncmp; i++) {
				char **c = tok + 5 + 4 * i;
				cmp[i].arg = (unsigned)num(c[0], 5);
				cmp[i].op = (enum scmp_compare)num(c[1], SCMP_CMP_MASKED_EQ);
				cmp[i].datum_a = num(c[2], UINT64_MAX);
				cmp[i].datum_b = num(c[3], UINT64_MAX);
			}
			int nr = seccomp_syscall_resolve_name(tok[2]);
			if (nr == __NR_SCMP_ERROR) {
				fprintf(stderr, "warning unknown-syscall %s %s\n", tok[1], tok[2]);
				continue;
			}
			rc = seccomp_rule_add_array(ctx, action, nr, ncmp, cmp);
			if (rc < 0) {
				fprintf(stderr, "error rule %s %s: %s\n", tok[1], tok[2], strerror(-rc));
				exit(1);
			}
		} else if (!strcmp(tok[0], "end") && n == 1) {
			ended = 1;
		} else {
			die(2, "plan: unknown record \"%s\"", tok[0]);
		}
	}
	if (!ended)
		die(2, "plan: truncated (no \"end\")");

	int fd = 1;
	if (out) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die(2, "open %s: %s", out, strerror(errno));
	}
	rc = pfc ? seccomp_export_pfc(ctx, fd) : seccomp_export_bpf(ctx, fd);
	if (rc < 0)
		die(1, "export: %s", strerror(-rc));
	if (out && close(fd) < 0)
		die(2, "close %s: %s", out, strerror(errno));
	seccomp_release(ctx);
	free(plan);
}

/* seccomp(SET_MODE_FILTER, flags, NULL): EFAULT means the flags passed the kernel's check. */
static void probe(void)
{
	static const unsigned bits[] = { 1, 2, 4, 8, 16, 32 };
	static const uint32_t rets[] = { SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP,
					 SECCOMP_RET_ERRNO,	   SECCOMP_RET_USER_NOTIF,  SECCOMP_RET_TRACE,
					 SECCOMP_RET_LOG,	   SECCOMP_RET_ALLOW };
	unsigned mask = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		/* WAIT_KILLABLE_RECV is only accepted together with NEW_LISTENER */
		unsigned try = bits[i] == 32 ? (32 | 8) : bits[i];
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, try, NULL) < 0 && errno == EFAULT)
			mask |= bits[i];
	}
	printf("flags %u\nactions ", mask);
	const char *sep = "";
	for (size_t i = 0; i < sizeof(rets) / sizeof(rets[0]); i++) {
		uint32_t a = rets[i];
		if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &a) == 0) {
			printf("%s%u", sep, rets[i]);
			sep = ",";
		}
	}
	const struct scmp_version *v = seccomp_version();
	printf("\nlibseccomp %u.%u.%u %u\n", v->major, v->minor, v->micro, seccomp_api_get());
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--probe"))
		probe();
	else if (argc == 2 && !strcmp(argv[1], "--pfc"))
		compile(1, NULL);
	else if (argc == 3 && !strcmp(argv[1], "-o"))
		compile(0, argv[2]);
	else if (argc == 1)
		compile(0, NULL);
	else
		die(2, "usage: vkseccomp [-o FILE | --pfc | --probe] (plan on stdin)");
	return 0;
}
