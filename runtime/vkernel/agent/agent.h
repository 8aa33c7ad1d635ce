/* Shared between vkagent.c (seccomp user notification) and trace.c (SECCOMP_RET_TRACE +
 * ptrace): the per-container slots and the computation of the answers. */
#ifndef VKAGENT_AGENT_H
#define VKAGENT_AGENT_H
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/sysinfo.h>

/* The cold-list filter (x86_64): sysinfo and sched_getaffinity -> RET, all else (other
 * arches, x32) ALLOW. Same bytes as notifyFilter() / traceFilter() in syscalls.ts. */
#define COLD_FILTER(RET)                                                                   \
	{                                                                                  \
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),   \
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),              \
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),     \
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sysinfo, 2, 0),                   \
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sched_getaffinity, 1, 0),         \
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),                              \
		BPF_STMT(BPF_RET | BPF_K, RET),                                            \
	}

#define MAXC 1024
#define META_MAX 4096

struct slot {
	int32_t used;
	int32_t fd;        /* the keeper's fd number (inherited by a freshly forked worker) */
	uint32_t gen;
	int32_t pid;       /* "pid" of the agent message (0: unknown) */
	/* The agent's own load sampler (used only when vkfs publishes none, vkfs.h struct
	 * loadpub): kept here so that a new worker carries on from the last sample. */
	uint64_t avenrun[3];
	double last_sample;
	char meta[META_MAX];
};

struct agent_shared {
	volatile int32_t inflight_slot; /* -1: none */
	volatile uint64_t inflight_id;
	volatile uint64_t handled, continued, restarts;
	/* The current worker (pid, start time in ticks): a standby that takes over adopts it. */
	volatile int32_t worker_pid;
	volatile uint64_t worker_ticks;
	struct seccomp_notif req; /* RECV target of the worker (see handle) */
	struct slot slots[MAXC];
};
extern struct agent_shared *ash;
/* Where derived configs go: <sock_path>.d/<slot>.conf */
extern const char *sock_path;

void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double mono_now(void);
const char *meta_get(const char *meta, const char *key, char *out, size_t cap);
/* Field 22 of /proc/<pid>/stat (start time in clock ticks); 0 when the process is gone or a zombie. */
unsigned long long proc_start_ticks(int pid);
/* Makes slot i the current container (conf, loadavg state); 0 or -1 (no view: pass through). */
int select_container(int i, int pid);
struct buf;
int read_tasks(struct buf *b);
int compute_sysinfo(struct sysinfo *out);
long compute_affinity(int tid, uint64_t pid, uint64_t len, unsigned char *mask, size_t cap);
int write_mem(int pid, uint64_t addr, const void *data, size_t len);

/* trace.c */
extern const void *const trace_filter;
extern const size_t trace_filter_len;
int trace_main(int pid, const char *meta, const char *pidfile, int ready_fd);
#endif
