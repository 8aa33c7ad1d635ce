// Pays the kernel's cgroup-migration wait off the create path.
//
// Every write to a cgroup.procs file takes cgroup_threadgroup_rwsem for writing, and the first
// such write after a quiet spell waits for an RCU grace period (the rwsem's rcu_sync moves
// out of its idle state): 7–20 ms on this 2-vCPU host, measured. Writes within about one
// more grace period of the last one return in microseconds. vkinit's write of the container's
// pid (runtime/init/parent.c) therefore costs a grace period on an idle host, after
// everything else in create is done. runc pays it at the same point.
//
// So while create does its other work (rootfs, spec, cgroup, seccomp, the view) a process
// "moves" itself into the cgroup it is already in, every few milliseconds: the kernel takes
// the lock, finds nothing to migrate, and keeps the rcu_sync warm, and the first wait overlaps
// the rest of create. Bounded in time; any error (not root, no cgroupfs) ends it quietly.
//
// Only for a process nobody else moves: the shim manager, on `start` (shim/manager). A write
// computed before someone else moved us would move us back (seen: a shim daemon that `start`
// had just put into its shim_cgroup), so the daemons and the runtime library do not use it.
// While it runs, forks and exits on the host take the rwsem's slower reader path, as during
// any migration. A host can get the same effect for good with the cgroup mount option
// `favordynmods` (Linux 6.0+); that is the operator's choice, not ours.
// (A write of a pid that does not exist would be neater, but 6.18 looks the task up before
// it takes the lock: measured, it returns ESRCH at once and warms nothing.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCgroupMounts, parseSelfCgroup } from './host';

/** Between the no-op writes: well inside one grace period, so the state never goes idle. */
const INTERVAL_MS = 4;
/** Default span of a warm-up: about one create path. */
const DEFAULT_MAX_MS = 150;

/**
 * Our own cgroup.procs in one hierarchy mounted from its root: the unified one if it is
 * mounted, else the first v1 hierarchy (any will do: the rwsem is shared by all). Exported
 * for the unit test.
 */
export function ownProcsFile(selfCgroup: string, mountinfo: string): string | undefined {
  const self = parseSelfCgroup(selfCgroup);
  const mounts = parseCgroupMounts(mountinfo).filter((m) => m.root === '/');
  const v2 = mounts.find((m) => m.fstype === 'cgroup2');
  if (v2 && self.unified !== undefined) return path.join(v2.mountpoint, self.unified, 'cgroup.procs');
  for (const m of mounts) {
    if (m.fstype !== 'cgroup') continue;
    const p = m.controllers.map((c) => self.v1.get(c)).find((x) => x !== undefined);
    if (p !== undefined) return path.join(m.mountpoint, p, 'cgroup.procs');
  }
  return undefined;
}

/** Read afresh for every write: a stale path would move us back to a cgroup we have left. */
function procsFile(): string | undefined {
  try {
    return ownProcsFile(fs.readFileSync('/proc/self/cgroup', 'utf8'), fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return undefined;
  }
}

let until = 0;
let running = false;

/**
 * Keeps cgroup migration warm for the next `ms` (the whole process shares one loop: a burst of
 * starts extends it rather than adding writers). Any process's warm-up serves all: the lock
 * is host-wide.
 */
export function warmCgroupMigration(ms = DEFAULT_MAX_MS): void {
  if (process.getuid?.() !== 0) return;
  until = Math.max(until, Date.now() + ms);
  if (running) return;
  running = true;
  const pid = String(process.pid);
  const loop = async (): Promise<void> => {
    try {
      while (Date.now() < until) {
        const file = procsFile();
        if (!file) return;
        // Off the main thread (libuv's pool): the first write blocks for the grace period.
        await fs.promises.writeFile(file, pid);
        await new Promise((r) => setTimeout(r, INTERVAL_MS));
      }
    } catch {
      // writes not allowed here (a container, a delegated subtree): nothing to gain
    } finally {
      running = false;
    }
  };
  void loop();
}
