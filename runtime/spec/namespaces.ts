// OCI namespace types: CLONE_NEW* flags and /proc/<pid>/ns/<name> entries.
import type { NamespaceType } from './types';

export const CLONE_NEWTIME = 0x00000080;
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

export interface NamespaceInfo {
  /** CLONE_NEW* flag (also the setns nstype). */
  flag: number;
  /** Entry name under /proc/<pid>/ns/. */
  procName: string;
}

export const NAMESPACES: Readonly<Record<NamespaceType, NamespaceInfo>> = Object.freeze({
  pid: { flag: CLONE_NEWPID, procName: 'pid' },
  network: { flag: CLONE_NEWNET, procName: 'net' },
  mount: { flag: CLONE_NEWNS, procName: 'mnt' },
  ipc: { flag: CLONE_NEWIPC, procName: 'ipc' },
  uts: { flag: CLONE_NEWUTS, procName: 'uts' },
  user: { flag: CLONE_NEWUSER, procName: 'user' },
  cgroup: { flag: CLONE_NEWCGROUP, procName: 'cgroup' },
  time: { flag: CLONE_NEWTIME, procName: 'time' },
});

/**
 * The order namespaces are joined in: user first (the kernel needs it before the
 * others can be joined with the new credentials), mount last (so every other path is
 * opened before the mount table changes under it). Otherwise runc's order.
 */
export const JOIN_ORDER: readonly NamespaceType[] = ['user', 'ipc', 'uts', 'network', 'pid', 'cgroup', 'time', 'mount'];

export function isNamespaceType(t: unknown): t is NamespaceType {
  return typeof t === 'string' && Object.prototype.hasOwnProperty.call(NAMESPACES, t);
}

/** /proc/<pid>/ns/<name> for a namespace type ("self" for the calling process). */
export function nsProcPath(pid: number | 'self', type: NamespaceType): string {
  return `/proc/${pid}/ns/${NAMESPACES[type].procName}`;
}

/** The OCI type for a /proc/<pid>/ns entry name (net → network), or undefined. */
export function typeForProcName(procName: string): NamespaceType | undefined {
  for (const [t, info] of Object.entries(NAMESPACES) as [NamespaceType, NamespaceInfo][]) {
    if (info.procName === procName) return t;
  }
  return undefined;
}
