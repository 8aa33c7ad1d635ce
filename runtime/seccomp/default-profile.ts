// vkernel's default seccomp profile, in the spirit of Docker's: everything a normal
// program needs is allowed, the default answer is EPERM. Written from the kernel's
// syscall table, grouped by purpose.
//
// Always refused: the kernel keyring (add_key, keyctl, request_key), namespace creation
// with CLONE_NEWUSER (clone's flags argument is compared with SCMP_CMP_MASKED_EQ; unshare
// likewise), module loading, kexec, reboot, swap, clock setting, quotas, mount and the new
// mount API, bpf, perf, io_uring, userfaultfd and obsolete calls - unless the container
// holds the capability that makes the call meaningful (see CAPABILITY_SYSCALLS). clone3
// gets ENOSYS (its flags live in memory a filter cannot read), so libc falls back to clone.
//
// Names this libseccomp does not know are skipped by the compiler with a warning; names of
// other architectures cost nothing (they only apply to the architectures that have them).
import { Seccomp, SeccompSyscall } from '../spec/types';
import { ENOSYS, EPERM } from './constants';

const CLONE_NEWTIME = 0x00000080;
const CLONE_NEWNS = 0x00020000;
const CLONE_NEWCGROUP = 0x02000000;
const CLONE_NEWUTS = 0x04000000;
const CLONE_NEWIPC = 0x08000000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWPID = 0x20000000;
const CLONE_NEWNET = 0x40000000;
/** The namespace flags clone(2) takes (CLONE_NEWTIME only works with unshare/clone3). */
const CLONE_NS_FLAGS = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
const AF_VSOCK = 40;

/** Allowed for everyone. */
export const ALLOWED_SYSCALLS: readonly string[] = [
  // processes, threads, exec
  'arch_prctl', 'execve', 'execveat', 'exit', 'exit_group', 'fork', 'vfork', 'wait4', 'waitid', 'waitpid',
  'getpid', 'getppid', 'gettid', 'getpgid', 'getpgrp', 'setpgid', 'getsid', 'setsid', 'set_tid_address',
  'set_robust_list', 'get_robust_list', 'rseq', 'prctl', 'get_thread_area', 'set_thread_area', 'modify_ldt',
  'set_tls', 'membarrier', 'restart_syscall', 'pidfd_open', 'pidfd_send_signal', 'process_mrelease',
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'landlock_add_rule', 'landlock_create_ruleset',
  'landlock_restrict_self', 'seccomp',
  // credentials and capabilities
  'capget', 'capset', 'getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups',
  'setuid', 'setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid', 'setgroups', 'setfsuid', 'setfsgid',
  'getuid32', 'geteuid32', 'getgid32', 'getegid32', 'getresuid32', 'getresgid32', 'getgroups32',
  'setuid32', 'setgid32', 'setreuid32', 'setregid32', 'setresuid32', 'setresgid32', 'setgroups32',
  'setfsuid32', 'setfsgid32',
  // signals
  'kill', 'tkill', 'tgkill', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigpending',
  'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo',
  'sigaction', 'signal', 'sigprocmask', 'sigreturn', 'sigpending', 'sigsuspend', 'sigaltstack',
  'signalfd', 'signalfd4', 'pause', 'alarm', 'sgetmask', 'ssetmask',
  // memory
  'brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync', 'mlock', 'mlock2',
  'munlock', 'mlockall', 'munlockall', 'remap_file_pages', 'pkey_alloc', 'pkey_free', 'pkey_mprotect',
  'memfd_create', 'memfd_secret', 'map_shadow_stack', 'mseal', 'cachestat',
  // files and directories
  'open', 'openat', 'openat2', 'creat', 'close', 'close_range', 'read', 'readv', 'pread64', 'preadv',
  'preadv2', 'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2', 'lseek', '_llseek', 'dup', 'dup2', 'dup3',
  'fcntl', 'fcntl64', 'ioctl', 'flock', 'fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range',
  'sync_file_range2', 'arm_sync_file_range', 'fadvise64', 'fadvise64_64', 'arm_fadvise64_64', 'readahead',
  'fallocate', 'truncate', 'truncate64', 'ftruncate', 'ftruncate64', 'stat', 'stat64', 'lstat', 'lstat64',
  'fstat', 'fstat64', 'newfstatat', 'fstatat64', 'statx', 'statfs', 'statfs64', 'fstatfs', 'fstatfs64',
  'access', 'faccessat', 'faccessat2', 'getcwd', 'chdir', 'fchdir', 'mkdir', 'mkdirat', 'mknod', 'mknodat',
  'rmdir', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'symlink', 'symlinkat', 'unlink', 'unlinkat',
  'readlink', 'readlinkat', 'getdents', 'getdents64', 'readdir', 'chmod', 'fchmod', 'fchmodat', 'fchmodat2',
  'chown', 'fchown', 'lchown', 'fchownat', 'chown32', 'fchown32', 'lchown32', 'umask', 'utime', 'utimes',
  'futimesat', 'utimensat', 'utimensat_time64', 'copy_file_range', 'sendfile', 'sendfile64', 'splice', 'tee',
  'vmsplice', 'statmount', 'listmount', 'file_getattr', 'file_setattr',
  // extended attributes
  'getxattr', 'lgetxattr', 'fgetxattr', 'setxattr', 'lsetxattr', 'fsetxattr', 'listxattr', 'llistxattr',
  'flistxattr', 'removexattr', 'lremovexattr', 'fremovexattr', 'getxattrat', 'setxattrat', 'listxattrat',
  'removexattrat',
  // waiting and events
  'select', '_newselect', 'pselect6', 'pselect6_time64', 'poll', 'ppoll', 'ppoll_time64', 'epoll_create',
  'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_wait', 'epoll_wait_old', 'epoll_pwait',
  'epoll_pwait2', 'eventfd', 'eventfd2', 'inotify_init', 'inotify_init1', 'inotify_add_watch',
  'inotify_rm_watch', 'fanotify_mark', 'pipe', 'pipe2', 'futex', 'futex_time64', 'futex_waitv',
  'futex_wait', 'futex_wake', 'futex_requeue', 'io_setup', 'io_destroy', 'io_submit', 'io_cancel',
  'io_getevents', 'io_pgetevents', 'io_pgetevents_time64',
  // time
  'time', 'gettimeofday', 'clock_gettime', 'clock_gettime64', 'clock_getres', 'clock_getres_time64',
  'clock_nanosleep', 'clock_nanosleep_time64', 'nanosleep', 'adjtimex', 'clock_adjtime', 'clock_adjtime64',
  'getitimer', 'setitimer', 'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime',
  'timer_gettime64', 'timer_settime', 'timer_settime64', 'timerfd_create', 'timerfd_gettime',
  'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64', 'times',
  // scheduling and resources
  'sched_yield', 'sched_getaffinity', 'sched_setaffinity', 'sched_getattr', 'sched_setattr',
  'sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler',
  'sched_get_priority_max', 'sched_get_priority_min', 'sched_rr_get_interval',
  'sched_rr_get_interval_time64', 'getpriority', 'setpriority', 'nice', 'ioprio_get', 'ioprio_set',
  'getrlimit', 'setrlimit', 'ugetrlimit', 'prlimit64', 'getrusage', 'getcpu', 'sysinfo', 'uname',
  'olduname', 'oldolduname', 'sethostname', 'setdomainname', 'getrandom',
  // networking (socket is allowed below for every family but AF_VSOCK)
  'socketpair', 'bind', 'connect', 'listen', 'accept', 'accept4', 'getsockname', 'getpeername',
  'getsockopt', 'setsockopt', 'shutdown', 'send', 'sendto', 'sendmsg', 'sendmmsg', 'recv', 'recvfrom',
  'recvmsg', 'recvmmsg', 'recvmmsg_time64', 'socketcall',
  // System V and POSIX IPC
  'ipc', 'msgget', 'msgsnd', 'msgrcv', 'msgctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64',
  'semctl', 'shmget', 'shmat', 'shmdt', 'shmctl', 'mq_open', 'mq_unlink', 'mq_timedsend',
  'mq_timedsend_time64', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_notify', 'mq_getsetattr',
  // architecture specific
  'breakpoint', 'cacheflush', 'riscv_flush_icache', 'riscv_hwprobe', 's390_pci_mmio_read',
  's390_pci_mmio_write', 's390_runtime_instr', 's390_guarded_storage', 'switch_endian', 'subpage_prot',
];

/** Extra syscalls a capability makes meaningful (the kernel checks the capability too). */
export const CAPABILITY_SYSCALLS: Readonly<Record<string, readonly string[]>> = {
  CAP_SYS_ADMIN: [
    'bpf', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie', 'mount',
    'mount_setattr', 'move_mount', 'name_to_handle_at', 'open_tree', 'open_tree_attr', 'perf_event_open',
    'quotactl', 'quotactl_fd', 'setns', 'syslog', 'umount', 'umount2',
  ],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_SYS_MODULE: ['delete_module', 'init_module', 'finit_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_PTRACE: ['kcmp', 'pidfd_getfd', 'process_madvise', 'userfaultfd'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node', 'migrate_pages', 'move_pages'],
  CAP_SYSLOG: ['syslog'],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
};

/** Never allowed by the default profile, whatever the capabilities (documentation and tests). */
export const DENIED_SYSCALLS: readonly string[] = ['add_key', 'keyctl', 'request_key'];

/** personality(2) values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** SCMP_ARCH_* lists per Node `process.arch`: the native one plus its compat ABIs. */
function architectures(arch: string): string[] {
  switch (arch) {
    case 'x64': return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'ia32': return ['SCMP_ARCH_X86'];
    case 'arm64': return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    case 'arm': return ['SCMP_ARCH_ARM'];
    case 'ppc64': return ['SCMP_ARCH_PPC64LE'];
    case 's390x': return ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'];
    case 'riscv64': return ['SCMP_ARCH_RISCV64'];
    case 'mips64el': return ['SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_MIPSEL'];
    case 'mipsel': return ['SCMP_ARCH_MIPSEL'];
    default: return [];
  }
}

export interface DefaultProfileOptions {
  /** Node-style architecture (process.arch); default the running one. */
  arch?: string;
  /** The container's capabilities (process.capabilities.bounding): each unlocks CAPABILITY_SYSCALLS. */
  capabilities?: string[];
}

/** The default profile as an OCI `linux.seccomp` object. */
export function defaultSeccompProfile(opts: DefaultProfileOptions = {}): Seccomp {
  const arch = opts.arch ?? process.arch;
  const caps = new Set(opts.capabilities ?? []);
  const sysAdmin = caps.has('CAP_SYS_ADMIN');
  const allowed = new Set(ALLOWED_SYSCALLS);
  for (const cap of caps) for (const name of CAPABILITY_SYSCALLS[cap] ?? []) allowed.add(name);
  for (const name of DENIED_SYSCALLS) allowed.delete(name);

  // s390 passes clone's flags second (clone(stack, flags, ...)).
  const cloneFlagsArg = arch === 's390x' ? 1 : 0;
  // Without CAP_SYS_ADMIN no namespace may be created; with it, all but a user namespace.
  const cloneMask = sysAdmin ? CLONE_NEWUSER : CLONE_NS_FLAGS;
  const unshareMask = sysAdmin ? CLONE_NEWUSER : CLONE_NS_FLAGS | CLONE_NEWTIME;

  const syscalls: SeccompSyscall[] = [
    { names: [...allowed].sort(), action: 'SCMP_ACT_ALLOW' },
    ...PERSONALITIES.map((value) => ({
      names: ['personality'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
    })),
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] },
    {
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: cloneFlagsArg, value: cloneMask, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    },
    {
      names: ['unshare'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: unshareMask, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
  ];
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: architectures(arch),
    syscalls,
  };
}
