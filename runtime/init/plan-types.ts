// The flat, pre-validated plan that TypeScript hands to the C init helper (vkinit).
// Everything here is already checked and resolved: numbers are final flag values, paths
// are absolute, names are mapped to numbers. The C side never parses JSON and never
// decides policy; it only performs these steps in order. Wire format: PROTOCOL.md.

export type InitMode = 'create' | 'exec';

/** One mount step, performed inside the new mount namespace before pivot_root. */
export interface PlanMount {
  /** Absolute host path for binds, or the fs source string ("proc", "tmpfs", ...). */
  source: string;
  /** Absolute path inside the container rootfs (resolved in-root by C, symlink-safe). */
  destination: string;
  /** Filesystem type; "" or "bind" for bind mounts (MS_BIND is in flags then). */
  fstype: string;
  /** mount(2) flags (MS_*), including MS_BIND/MS_REC for binds and MS_RDONLY etc. */
  flags: number;
  /** Propagation flags applied one after another after the mount (MS_SHARED|MS_REC ...). */
  propagation: number[];
  /** The data string (comma-joined fs options like "mode=755,size=65536k"). */
  data: string;
  /** What to create at the destination when missing: a directory or an empty file. */
  kind: 'dir' | 'file';
}

export interface PlanDevice {
  /** Absolute path inside the container (e.g. /dev/null). */
  path: string;
  type: 'c' | 'b' | 'p' | 'u';
  major: number;
  minor: number;
  /** Full st_mode permission bits (e.g. 0o666). */
  mode: number;
  uid: number;
  gid: number;
  /** Bind-mount the host's node instead of mknod (needed inside user namespaces). */
  bind: boolean;
}

export interface PlanHook {
  path: string;
  /** argv including argv[0]. */
  args: string[];
  env: string[];
  /** Seconds; 0 means no timeout. */
  timeout: number;
}

export interface PlanRlimit {
  /** RLIMIT_* number. */
  resource: number;
  /** Decimal strings so 2^64-1 (RLIM_INFINITY) survives. */
  soft: string;
  hard: string;
}

export interface PlanCaps {
  /** 64-bit masks as hex strings without 0x. */
  bounding: string;
  effective: string;
  inheritable: string;
  permitted: string;
  ambient: string;
  /** /proc/sys/kernel/cap_last_cap: C drops bounding caps 0..lastCap not in the mask. */
  lastCap: number;
}

export interface InitPlan {
  mode: InitMode;

  // ---- parent stage (before/around clone) ----
  /** CLONE_NEW* flags for namespaces to create. */
  cloneFlags: number;
  /** Namespaces to join (setns) before clone, in this order (user first). */
  joins: { nstype: number; path: string }[];
  /** Written to /proc/<pid>/uid_map, gid_map by the parent ("inside outside count\n"). */
  uidMap?: string;
  gidMap?: string;
  /** Write "deny" to /proc/<pid>/setgroups before gid_map (rootless only). */
  setgroupsDeny?: boolean;
  /** cgroup.procs files the parent writes the child pid into before releasing it. */
  cgroupProcs: string[];
  /** create mode: FIFO the parent creates (0622) and the child blocks on until start. */
  execFifo?: string;
  /** Console socket path; the parent connects to it before clone. */
  consoleSocket?: string;
  /** Parent stays, relays the child's exit ("exit" message) and exits with its code. */
  wait: boolean;
  /** Stop at the hooks point and wait for Node's go (prestart/createRuntime run in Node). */
  syncHooks: boolean;
  /** fds 3..3+preserveFds-1 are passed to the container as they are. */
  preserveFds: number;
  /**
   * Join this session keyring (KEYCTL_JOIN_SESSION_KEYRING: created when no keyring of
   * that name is searchable) instead of keeping the caller's, then OR `addPerm` into its
   * permissions (0 leaves them). runc: "_ses.<id>", + 0x80000 (user search), or 0x8
   * (other search) with a user namespace; exec joins it with 0. Absent: --no-new-keyring.
   */
  sessionKeyring?: { name: string; addPerm: number };
  /** Bring "lo" up in the network namespace the plan creates (runc's loopback network). */
  loopbackUp?: boolean;

  // ---- child stage (inside the namespaces) ----
  /** Absolute host path of the rootfs (create mode). */
  rootfs?: string;
  rootReadonly?: boolean;
  noPivot?: boolean;
  /** Propagation flags for "/" in the new mount ns (default MS_SLAVE|MS_REC). */
  rootPropagation: number;
  mounts: PlanMount[];
  devices: PlanDevice[];
  /** Symlinks to create inside the rootfs: [target, linkPath]. */
  symlinks: [string, string][];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** [path under /proc/sys, value], e.g. ["net/ipv4/ip_forward", "1"]. */
  sysctl: [string, string][];
  hostname?: string;
  domainname?: string;
  terminal: boolean;
  consoleSize?: { rows: number; cols: number };
  cwd: string;
  args: string[];
  env: string[];
  rlimits: PlanRlimit[];
  oomScoreAdj?: number;
  uid: number;
  gid: number;
  additionalGids: number[];
  umask?: number;
  caps?: PlanCaps;
  noNewPrivileges: boolean;
  /**
   * process.apparmorProfile: vkinit writes "exec <profile>" to the task's AppArmor exec
   * attribute after the privileged steps, so the profile applies at execve (as runc).
   */
  apparmorProfile?: string;
  /**
   * process.selinuxLabel: the exec label (attr/exec) armed the same way, and the label of
   * the session keyring vkinit creates (attr/keycreate), as runc.
   */
  selinuxLabel?: string;
  /**
   * linux.mountLabel when the plan mounts an mqueue: set as the security.selinux attribute of
   * each mqueue mount's root (it cannot take context=; runc labels it the same way).
   */
  mountLabel?: string;
  /** Run in the container mount ns before pivot_root (createContainer). */
  createContainerHooks: PlanHook[];
  /** Run in the container after start, before execve (startContainer). */
  startContainerHooks: PlanHook[];
  /** Path to a compiled seccomp BPF program file (sock_filter array), loaded last. */
  seccompBpf?: string;
  /** Kernel seccomp filter flags (SECCOMP_FILTER_FLAG_*). */
  seccompFlags?: number;
  /**
   * linux.seccomp.listenerPath, for a filter with SECCOMP_FILTER_FLAG_NEW_LISTENER (both or
   * neither). vkinit connects to it before any setns; the container process sends the
   * agent message (LaunchOptions.seccompAgentMessage) with the listener fd right after
   * loading the filter. PROTOCOL.md "Seccomp agent".
   */
  seccompListener?: string;
  /**
   * The vkernel syscall filter (runtime/vkernel/syscalls.ts): loaded after the container's
   * own filter, right before execve, with `flags` (NEW_LISTENER...); the listener goes to the
   * vkernel agent at `agent` with `metadata` as listenerMetadata. Never fatal (EBUSY when the
   * container's own filter has a listener: a warning, no syscall view). PROTOCOL.md.
   */
  vkernelFilter?: { bpf: string; flags: number; agent: string; metadata: string };
}
