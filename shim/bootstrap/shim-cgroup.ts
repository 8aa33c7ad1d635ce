// ShimCgroup (containerd.runc.v1.Options shim_cgroup, or [shim] shim_cgroup in the TOML config
// for CRI, which passes no other options to a non-runc shim): the cgroup a new group daemon
// joins, so its memory and CPU are charged where the operator wants (e.g. the pod's overhead).
// As containerd's runc shim does: the cgroup must exist (it is not created), and a daemon that
// cannot join it fails `start`. A path is joined in every hierarchy mounted on the host: each
// v1 controller and the unified one, where the directory exists; it must exist in at least one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from '../../runtime/errors';
import { parseCgroupMounts } from '../../runtime/cgroups/host';

/** The cgroup.procs files `cgroupPath` names on this host (mountinfo text), deduplicated. */
export function shimCgroupProcsFiles(cgroupPath: string, mountinfo: string): string[] {
  if (!path.isAbsolute(cgroupPath) || cgroupPath.split('/').includes('..')) {
    throw new InvalidArgumentError(`shim_cgroup ${JSON.stringify(cgroupPath)}: must be an absolute cgroup path without ".."`, 'shim_cgroup');
  }
  const files = new Set<string>();
  for (const m of parseCgroupMounts(mountinfo)) {
    // A hierarchy mounted from below its root (a cgroup namespace) holds only paths under it.
    const rel = path.relative(m.root, cgroupPath);
    if (rel.startsWith('..')) continue;
    files.add(path.join(m.mountpoint, rel, 'cgroup.procs'));
  }
  return [...files];
}

/** Moves `pid` into `cgroupPath` in every hierarchy that has it; throws when none has it or a write fails. */
export function joinShimCgroup(pid: number, cgroupPath: string, mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): number {
  let joined = 0;
  for (const file of shimCgroupProcsFiles(cgroupPath, mountinfo)) {
    if (!fs.existsSync(path.dirname(file))) continue;
    try {
      fs.writeFileSync(file, String(pid));
      joined++;
    } catch (err) {
      throw new InvalidArgumentError(`shim_cgroup ${cgroupPath}: cannot move the shim (pid ${pid}) into ${path.dirname(file)}: ${(err as Error).message}`, 'shim_cgroup', { cause: err });
    }
  }
  if (joined === 0) throw new InvalidArgumentError(`shim_cgroup ${cgroupPath}: no such cgroup on this host (create it first)`, 'shim_cgroup');
  return joined;
}
