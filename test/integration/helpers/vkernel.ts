// Small helpers shared by the vkernel view acceptance suites (vkernel-acceptance.test.ts,
// vkernel-shim.test.ts): polling, liveness, and finding a container's FUSE mount and
// supervisor processes on the host.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { waitFor } from './shim-env';

export { alive } from './shim-env';

/** Polls `f` until it holds (true) or `ms` pass (false). */
export function until(f: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  return waitFor('a condition', f, ms).then(
    () => true,
    () => false,
  );
}

/** Lines of our mountinfo for fuse.vkfs mounts whose line contains `needle` (a container id or state dir). */
export function fuseMounts(needle: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(' - fuse.vkfs ') && l.includes(needle));
}

/** `pgrep -f pattern`: pids whose command line matches (none: []). */
export function pgrep(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').map(Number);
  } catch {
    return []; // exit 1: none
  }
}

/**
 * The workload of the supervisor-kill tests (CLI and shim; 256 MiB, 1 CPU): read
 * /proc/meminfo and /sys/devices/system/cpu/online (content checked), 50 sysinfo() calls
 * through vktest; every failure is appended to /tmp/err, the iteration count written to /tmp/n.
 */
export const LOAD_LOOP = [
  'i=0',
  'while :; do',
  "  grep -q '^MemTotal: *262144 kB$' /proc/meminfo || echo \"meminfo $i\" >> /tmp/err",
  '  [ "$(cat /sys/devices/system/cpu/online)" = 0 ] || echo "online $i" >> /tmp/err',
  '  /vktest loop sysinfo 50 > /tmp/l 2>&1; grep -q "^failures=0$" /tmp/l && grep -q "^totalram=268435456$" /tmp/l || echo "sysinfo $i $(tr "\\n" " " < /tmp/l)" >> /tmp/err',
  '  i=$((i+1)); echo $i > /tmp/n',
  'done',
].join('\n');
