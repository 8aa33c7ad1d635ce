// v2 devices. cgroup v2 has no devices.allow/deny: device access is decided by an eBPF
// program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup directory, as runc does it.
// devicefilter.ts turns the container's effective rules (user rules, then runc's defaults,
// in order — the same list the v1 driver writes) into the program; BpfDeviceLoader loads it
// with bpf(BPF_PROG_LOAD), attaches it to the directory fd with BPF_F_ALLOW_MULTI, and then
// detaches the programs that were attached before (found with BPF_PROG_QUERY), so there is
// never a moment without a program (while both are attached, an access needs both to allow
// it). The kernel detaches and frees the programs when the cgroup is removed.
//
// The kernel calls go through the BpfSyscalls seam: nativeBpf() (runtime/native) on a real
// host, FakeBpf (testing.ts) in unit tests. The manager uses a BpfDeviceLoader on the real
// file system by default; with another CgroupFs (the file-tree fake) it needs a loader or a
// BpfSyscalls given explicitly, and without one device rules fail with NotImplementedError
// (or are skipped entirely with the manager's skipDevices option, like runc's SkipDevices).

import * as fs from 'node:fs';
import { FailedPreconditionError, NotImplementedError, type VkernelError } from '../../errors';
import { native } from '../../native';
import type { DeviceRule } from '../device-rules';
import { BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, BPF_PROG_TYPE_CGROUP_DEVICE, compileDeviceFilter, encodeInsns } from './devicefilter';

export interface DeviceProgramLoader {
  /**
   * Enforce `rules` on the cgroup at `dir`: generate the program (runc devicefilter
   * semantics: rules evaluated last-match-wins over a deny-all or allow-all default, as
   * DeviceEmulator models), BPF_PROG_LOAD it, BPF_PROG_ATTACH it to the directory fd with
   * BPF_F_ALLOW_MULTI, then detach the programs that were there before (BPF_PROG_QUERY), so
   * there is never a moment without a program.
   */
  apply(dir: string, rules: DeviceRule[]): Promise<void>;
}

/** The kernel calls of the loader; errors carry `errno` (a number) like runtime/native's. */
export interface BpfSyscalls {
  /** An O_RDONLY|O_DIRECTORY fd of the cgroup directory. */
  openDir(dir: string): number;
  close(fd: number): void;
  /** BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program → prog fd. */
  progLoad(insns: Buffer, license: string): number;
  /** BPF_PROG_ATTACH(BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI). */
  attach(cgroupFd: number, progFd: number): void;
  /** BPF_PROG_DETACH(BPF_CGROUP_DEVICE) of one program. */
  detach(cgroupFd: number, progFd: number): void;
  /** BPF_PROG_QUERY(BPF_CGROUP_DEVICE): ids of the programs attached to this cgroup. */
  query(cgroupFd: number): number[];
  /** BPF_PROG_GET_FD_BY_ID; ENOENT once the program is gone. */
  progFdById(id: number): number;
}

export const ENOENT = 2;

export function errnoOf(err: unknown): number | undefined {
  const e = (err as { errno?: unknown } | null)?.errno;
  if (typeof e !== 'number') return undefined;
  // Node's fs errors carry a negative errno.
  return Math.abs(e);
}

/** The real kernel, through runtime/native (loaded on first use). */
export function nativeBpf(): BpfSyscalls {
  return {
    openDir: (dir) => fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY),
    close: (fd) => fs.closeSync(fd),
    progLoad: (insns, license) => native().bpfProgLoad(BPF_PROG_TYPE_CGROUP_DEVICE, insns, license),
    attach: (cgroupFd, progFd) => native().bpfProgAttach(cgroupFd, progFd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI),
    detach: (cgroupFd, progFd) => native().bpfProgDetach(cgroupFd, progFd, BPF_CGROUP_DEVICE),
    query: (cgroupFd) => native().bpfProgQuery(cgroupFd, BPF_CGROUP_DEVICE).ids,
    progFdById: (id) => native().bpfProgGetFdById(id),
  };
}

const FIELD = 'linux.resources.devices';

function bpfError(what: string, dir: string, err: unknown): VkernelError {
  // One line: the verifier log's lines are joined (the raw log stays on the cause's `log`).
  const msg = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, '; ');
  return new FailedPreconditionError(`${FIELD}: cgroup v2: ${what} (${dir}): ${msg}`, { cause: err });
}

/** Loads, attaches and replaces device programs through a BpfSyscalls seam. */
export class BpfDeviceLoader implements DeviceProgramLoader {
  constructor(private readonly bpf: BpfSyscalls = nativeBpf()) {}

  async apply(dir: string, rules: DeviceRule[]): Promise<void> {
    // Bad rule sets are refused before any kernel call (InvalidArgumentError).
    const program = compileDeviceFilter(rules);
    const { bpf } = this;
    let dirFd: number;
    try {
      dirFd = bpf.openDir(dir);
    } catch (err) {
      throw bpfError('open the cgroup directory', dir, err);
    }
    try {
      let old: number[];
      try {
        old = bpf.query(dirFd);
      } catch (err) {
        throw bpfError('query the attached device programs', dir, err);
      }
      let progFd: number;
      try {
        progFd = bpf.progLoad(encodeInsns(program.insns), program.license);
      } catch (err) {
        throw bpfError('load the device program', dir, err);
      }
      try {
        bpf.attach(dirFd, progFd);
      } catch (err) {
        throw bpfError('attach the device program', dir, err);
      } finally {
        bpf.close(progFd); // the attachment holds the program from here on
      }
      for (const id of old) this.detachById(dirFd, id, dir);
    } finally {
      bpf.close(dirFd);
    }
  }

  private detachById(dirFd: number, id: number, dir: string): void {
    let fd: number;
    try {
      fd = this.bpf.progFdById(id);
    } catch (err) {
      if (errnoOf(err) === ENOENT) return; // gone meanwhile
      throw bpfError(`find the old device program ${id}`, dir, err);
    }
    try {
      this.bpf.detach(dirFd, fd);
    } catch (err) {
      if (errnoOf(err) !== ENOENT) throw bpfError(`detach the old device program ${id}`, dir, err);
    } finally {
      this.bpf.close(fd);
    }
  }
}

export const V2_DEVICES_MISSING =
  'linux.resources.devices: cgroup v2 device rules need an eBPF device program loader, and this cgroup file system ' +
  '(not the kernel\'s) has none: pass deviceLoader or bpf to the manager, or run with skipDevices to start without device confinement';

export async function applyDevicesV2(dir: string, rules: DeviceRule[], loader: DeviceProgramLoader | undefined): Promise<void> {
  if (!loader) throw new NotImplementedError(V2_DEVICES_MISSING);
  await loader.apply(dir, rules);
}
