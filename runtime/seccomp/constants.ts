// Seccomp names from the OCI runtime-spec (config-linux.md "Seccomp") and the numbers
// they stand for. Actions and operators are translated to libseccomp's values here, in
// TypeScript, so the C compiler (vkseccomp.c) only ever sees numbers. Also the lists
// `vkernel features` reports (runtime-spec features-linux.md "seccomp").

/** libseccomp action values (seccomp.h, libseccomp 2.5). ERRNO/TRACE carry 16 data bits. */
export const SCMP_ACT_KILL_PROCESS = 0x80000000;
export const SCMP_ACT_KILL_THREAD = 0x00000000;
export const SCMP_ACT_TRAP = 0x00030000;
export const SCMP_ACT_ERRNO_BASE = 0x00050000;
export const SCMP_ACT_NOTIFY = 0x7fc00000;
export const SCMP_ACT_TRACE_BASE = 0x7ff00000;
export const SCMP_ACT_LOG = 0x7ffc0000;
export const SCMP_ACT_ALLOW = 0x7fff0000;

export type SeccompActionName =
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_LOG'
  | 'SCMP_ACT_NOTIFY';

/** Action name -> libseccomp base value. SCMP_ACT_KILL is KILL_THREAD, as in libseccomp and runc. */
export const ACTIONS: Readonly<Record<SeccompActionName, number>> = {
  SCMP_ACT_KILL: SCMP_ACT_KILL_THREAD,
  SCMP_ACT_KILL_PROCESS: SCMP_ACT_KILL_PROCESS,
  SCMP_ACT_KILL_THREAD: SCMP_ACT_KILL_THREAD,
  SCMP_ACT_TRAP: SCMP_ACT_TRAP,
  SCMP_ACT_ERRNO: SCMP_ACT_ERRNO_BASE,
  SCMP_ACT_TRACE: SCMP_ACT_TRACE_BASE,
  SCMP_ACT_ALLOW: SCMP_ACT_ALLOW,
  SCMP_ACT_LOG: SCMP_ACT_LOG,
  SCMP_ACT_NOTIFY: SCMP_ACT_NOTIFY,
};

/** Actions whose 16-bit data field is the errno (ERRNO) or the tracer's message (TRACE). */
export const ACTIONS_WITH_ERRNO: ReadonlySet<string> = new Set(['SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE']);

export const EPERM = 1;
export const ENOSYS = 38;

/**
 * The libseccomp action value for `name` with `errnoRet` (EPERM when absent, as runc).
 * `name` must be a known action; errnoRet only matters for ERRNO and TRACE.
 */
export function actionValue(name: SeccompActionName, errnoRet?: number): number {
  const base = ACTIONS[name];
  if (name === 'SCMP_ACT_ERRNO' || name === 'SCMP_ACT_TRACE') return (base | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
  return base >>> 0;
}

export type SeccompOperatorName =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

/** Operator name -> libseccomp `enum scmp_compare`. MASKED_EQ: (arg & value) == valueTwo. */
export const OPERATORS: Readonly<Record<SeccompOperatorName, number>> = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
};

/**
 * Architecture name -> libseccomp's own arch name (what seccomp_arch_resolve_name takes).
 * The list the runtime-spec gives "as of libseccomp v2.5.0"; vkseccomp is built against
 * libseccomp >= 2.5, which knows all of them.
 */
export const ARCHITECTURES: Readonly<Record<string, string>> = {
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_ARM: 'arm',
  SCMP_ARCH_AARCH64: 'aarch64',
  SCMP_ARCH_MIPS: 'mips',
  SCMP_ARCH_MIPS64: 'mips64',
  SCMP_ARCH_MIPS64N32: 'mips64n32',
  SCMP_ARCH_MIPSEL: 'mipsel',
  SCMP_ARCH_MIPSEL64: 'mipsel64',
  SCMP_ARCH_MIPSEL64N32: 'mipsel64n32',
  SCMP_ARCH_PPC: 'ppc',
  SCMP_ARCH_PPC64: 'ppc64',
  SCMP_ARCH_PPC64LE: 'ppc64le',
  SCMP_ARCH_S390: 's390',
  SCMP_ARCH_S390X: 's390x',
  SCMP_ARCH_PARISC: 'parisc',
  SCMP_ARCH_PARISC64: 'parisc64',
  SCMP_ARCH_RISCV64: 'riscv64',
};

/** Kernel seccomp(2) SECCOMP_SET_MODE_FILTER flags (linux/seccomp.h). */
export const SECCOMP_FILTER_FLAG_TSYNC = 1;
export const SECCOMP_FILTER_FLAG_LOG = 2;
export const SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4;
export const SECCOMP_FILTER_FLAG_NEW_LISTENER = 8;
export const SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 16;
export const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 32;

/** The flags a config.json may name (runtime-spec), with their kernel values. */
export const FLAGS: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: SECCOMP_FILTER_FLAG_TSYNC,
  SECCOMP_FILTER_FLAG_LOG: SECCOMP_FILTER_FLAG_LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: SECCOMP_FILTER_FLAG_SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
};

export const KNOWN_ACTIONS: readonly string[] = Object.keys(ACTIONS).sort();
export const KNOWN_OPERATORS: readonly string[] = Object.keys(OPERATORS).sort();
export const KNOWN_ARCHITECTURES: readonly string[] = Object.keys(ARCHITECTURES).sort();
export const KNOWN_FLAGS: readonly string[] = Object.keys(FLAGS);

/** Names of the flags whose bits are all in `mask` (e.g. the probed kernel support). */
export function flagNames(mask: number): string[] {
  return KNOWN_FLAGS.filter((name) => (mask & FLAGS[name]) === FLAGS[name]);
}

/**
 * The `linux.seccomp` object of `vkernel features` (runtime-spec features-linux.md).
 * `supportedFlagsMask` comes from probeSeccomp() (compile.ts); without it supportedFlags
 * is omitted.
 */
export function seccompFeatures(supportedFlagsMask?: number): Record<string, unknown> {
  const out: Record<string, unknown> = {
    enabled: true,
    actions: [...KNOWN_ACTIONS],
    operators: [...KNOWN_OPERATORS],
    archs: [...KNOWN_ARCHITECTURES],
    knownFlags: [...KNOWN_FLAGS],
  };
  if (supportedFlagsMask !== undefined) out.supportedFlags = flagNames(supportedFlagsMask);
  return out;
}
