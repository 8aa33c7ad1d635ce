// The cgroup driver interface and its factory. The driver is chosen at runtime from
// /proc/self/mountinfo:
//   unified (cgroup2 mounted at the root)   → v2 driver
//   legacy  (only v1 hierarchies)           → v1 driver
//   hybrid  (v1 hierarchies + a cgroup2 tree, e.g. /sys/fs/cgroup/unified)
//           → v1 driver, which also creates and joins the container's cgroup in the
//             unified tree (runc does the same), freezes/kills through it when the v1
//             freezer is missing, and puts linux.resources.hugepageLimits there when
//             hugetlb is not a v1 controller (runc 1.1 fails instead: "cannot set hugetlb
//             limit: container could not join or create cgroup").

import { FailedPreconditionError, InvalidArgumentError } from '../errors';
import type { LinuxResources } from '../spec/types';
import { nodeCgroupFs, type CgroupFs } from './fs';
import { parseCgroupMounts, realHost, type Host } from './host';
import type { OomEvent, OomEventOptions } from './oom';
import type { CgroupStats } from './stats';
import { V1Manager } from './v1/manager';
import { V2Manager } from './v2/manager';
import { BpfDeviceLoader, nativeBpf, type BpfSyscalls, type DeviceProgramLoader } from './v2/devices';

export type { CgroupStats } from './stats';
export type { OomEvent, OomEventOptions } from './oom';
export type { BpfSyscalls, DeviceProgramLoader } from './v2/devices';
export type { Host } from './host';
export type { CgroupFs } from './fs';

export type FreezerState = 'frozen' | 'thawed' | 'freezing';

/**
 * What a manager needs to be reloaded by another process (store it in the container state).
 * Keys of `paths`/`mounts`: v1 controller names ("memory", "cpu", "name=systemd"), and ""
 * for the unified directory (v2 mode, or the hybrid unified tree) — runc's cgroup_paths.
 */
export interface CgroupDescription {
  version: 1;
  mode: 'v1' | 'v2';
  id: string;
  /** The hierarchy root, e.g. /sys/fs/cgroup. */
  root: string;
  /** The resolved cgroupsPath: absolute (from each hierarchy root) or relative (to our own). */
  cgroupsPath: string;
  paths: Record<string, string>;
  /** Mountpoint of the hierarchy holding each entry of `paths`. */
  mounts: Record<string, string>;
  /** Directories this manager created (leaves and parents); destroy removes only these parents. */
  created: string[];
  /** runc SkipDevices: device rules are not applied. */
  skipDevices?: boolean;
}

export interface CgroupManager {
  readonly mode: 'v1' | 'v2';
  /** Persistable description (paths per controller) so another process can reload it. */
  describe(): CgroupDescription;
  /** mkdir the cgroup(s) and apply resources; idempotent. Fails cleanly (removes what it made) on error. */
  create(resources?: LinuxResources): Promise<void>;
  /** cgroup.procs files for the C init helper to write the child pid into. */
  procsFiles(): string[];
  addProcess(pid: number): Promise<void>;
  update(resources: LinuxResources): Promise<void>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** A cgroup that no longer exists reads as thawed. */
  freezerState(): Promise<FreezerState>;
  /** All pids in the cgroup tree (the cgroup and its descendants). */
  pids(): Promise<number[]>;
  stats(): Promise<CgroupStats>;
  /** Signal every process; SIGKILL uses cgroup.kill where the kernel has it. */
  killAll(signal: number): Promise<void>;
  /** Kills nothing; thaws if frozen, rmdirs with retries, tolerates already-gone; removes parents only if it created them. */
  destroy(): Promise<void>;
  exists(): Promise<boolean>;
  /** OOM kills so far (v1 memory.oom_control oom_kill, v2 memory.events oom_kill). */
  oomKillCount(): Promise<number>;
  /** OOM notifications (v1 eventfd, v2 inotify, polled only as a fallback; see oom.ts); end when the cgroup goes away or `signal` aborts. */
  oomEvents(opts?: OomEventOptions): AsyncIterable<OomEvent>;
}

export interface CgroupManagerDeps {
  /** Host facts (mountinfo, own cgroups, online cpus, …); tests pass a fake. */
  host?: Host;
  /** File-system seam; tests may wrap it to record writes. */
  fs?: CgroupFs;
  /** Where warnings go (ignored settings); default: stderr "vkernel: warning: …". */
  warn?: (message: string) => void;
  /**
   * v2 only: loads the eBPF device program. Default: a BpfDeviceLoader over `bpf`, or over
   * the real bpf(2) when `fs` is the real file system; with another `fs` and neither given,
   * device rules are NotImplemented.
   */
  deviceLoader?: DeviceProgramLoader;
  /** v2 only: the bpf(2) seam of the default device loader (tests pass FakeBpf). */
  bpf?: BpfSyscalls;
}

export interface CgroupManagerOptions extends CgroupManagerDeps {
  id: string;
  /** linux.cgroupsPath. */
  cgroupsPath?: string;
  /** The --systemd-cgroup flag. */
  systemd?: boolean;
  /** Hierarchy root, default /sys/fs/cgroup (for tests). */
  root?: string;
  /** Do not apply device rules at all (runc SkipDevices). */
  skipDevices?: boolean;
}

export interface CgroupLoadOptions extends CgroupManagerDeps {
  root?: string;
}

export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';

export function defaultWarn(message: string): void {
  process.stderr.write(`vkernel: warning: ${message}\n`);
}

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

function isBelow(p: string, root: string): boolean {
  return p === root || p.startsWith(root === '/' ? '/' : `${root}/`);
}

/**
 * Which cgroup layout is mounted under `root`, from mountinfo (the text of
 * /proc/self/mountinfo unless given).
 */
export function detectCgroupSetup(root = DEFAULT_CGROUP_ROOT, mountinfo?: string): 'legacy' | 'hybrid' | 'unified' {
  const r = trimSlash(root);
  const mounts = parseCgroupMounts(mountinfo ?? realHost.mountinfo());
  if (mounts.some((m) => m.fstype === 'cgroup2' && m.mountpoint === r)) return 'unified';
  const below = mounts.filter((m) => isBelow(m.mountpoint, r) && m.mountpoint !== r);
  const v1 = below.some((m) => m.fstype === 'cgroup');
  const v2 = below.some((m) => m.fstype === 'cgroup2');
  if (v1) return v2 ? 'hybrid' : 'legacy';
  throw new FailedPreconditionError(`cgroup: no cgroup file system is mounted at or below ${r}`);
}

function defaultDeviceLoader(d: CgroupManagerDeps): DeviceProgramLoader | undefined {
  if (d.deviceLoader) return d.deviceLoader;
  if (d.bpf) return new BpfDeviceLoader(d.bpf);
  // Only the kernel's cgroup directories can take a program (nativeBpf loads the addon lazily).
  if (d.fs === undefined || d.fs === nodeCgroupFs) return new BpfDeviceLoader(nativeBpf());
  return undefined;
}

function deps(d: CgroupManagerDeps) {
  return {
    host: d.host ?? realHost,
    fs: d.fs ?? nodeCgroupFs,
    warn: d.warn ?? defaultWarn,
    deviceLoader: defaultDeviceLoader(d),
  };
}

export function createCgroupManager(opts: CgroupManagerOptions): CgroupManager {
  const root = trimSlash(opts.root ?? DEFAULT_CGROUP_ROOT);
  const d = deps(opts);
  const setup = detectCgroupSetup(root, d.host.mountinfo());
  const base = {
    id: opts.id,
    cgroupsPath: opts.cgroupsPath,
    systemd: opts.systemd ?? false,
    root,
    skipDevices: opts.skipDevices ?? false,
  };
  if (setup === 'unified') return V2Manager.fromOptions(base, d);
  return V1Manager.fromOptions(base, d);
}

export function loadCgroupManager(desc: CgroupDescription, rootOrOptions?: string | CgroupLoadOptions): CgroupManager {
  const o: CgroupLoadOptions = typeof rootOrOptions === 'string' ? { root: rootOrOptions } : rootOrOptions ?? {};
  if (!desc || desc.version !== 1 || (desc.mode !== 'v1' && desc.mode !== 'v2') || typeof desc.paths !== 'object') {
    throw new InvalidArgumentError('cgroup: invalid cgroup description (unknown version or mode)', 'cgroup');
  }
  const d = deps(o);
  const fixed: CgroupDescription = { ...desc, root: o.root ? trimSlash(o.root) : desc.root };
  return desc.mode === 'v2' ? V2Manager.fromDescription(fixed, d) : V1Manager.fromDescription(fixed, d);
}
