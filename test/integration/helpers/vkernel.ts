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
