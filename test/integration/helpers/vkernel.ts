// Small helpers shared by the vkernel view acceptance suites (vkernel-acceptance.test.ts,
// vkernel-shim.test.ts): polling, liveness, and finding a container's FUSE mount and
// supervisor processes on the host.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
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
 * through vktest; every failure is appended to /tmp/err, the iteration count written to
 * /tmp/n. A batch whose last sysinfo() saw the host's memory goes to /tmp/open: a call in
 * flight when the agent's worker dies is answered CONTINUE by design (fail open, once).
 */
export const LOAD_LOOP = [
  'i=0',
  'while :; do',
  "  grep -q '^MemTotal: *262144 kB$' /proc/meminfo || echo \"meminfo $i\" >> /tmp/err",
  '  [ "$(cat /sys/devices/system/cpu/online)" = 0 ] || echo "online $i" >> /tmp/err',
  '  /vktest loop sysinfo 50 > /tmp/l 2>&1',
  '  if ! grep -q "^failures=0$" /tmp/l; then echo "sysinfo $i $(tr "\\n" " " < /tmp/l)" >> /tmp/err',
  '  elif ! grep -q "^totalram=268435456$" /tmp/l; then echo "$i" >> /tmp/open; fi',
  '  i=$((i+1)); echo $i > /tmp/n',
  'done',
].join('\n');

/** A file's text, or '' when it cannot be read (a file a workload writes may not exist yet). */
export function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export interface LoadLoop {
  /** Iterations done so far. */
  iterations(): number;
  /**
   * Every failure, and a host value (fail-open) among the last 3 iterations, which means the
   * view did not come back. A fail-open further back is the designed answer to a killed worker.
   */
  errors(): string[];
  /** Waits for `n` more iterations (default 5, so a fail-open at the kill is out of errors()' window). */
  advance(n?: number): Promise<boolean>;
}

/** LOAD_LOOP running in a container whose root (as the host sees it) is `rootfs`. */
export function loadLoop(rootfs: string): LoadLoop {
  const read = (f: string): string => readOr(path.join(rootfs, 'tmp', f));
  const iterations = (): number => Number(read('n')) || 0;
  const errors = (): string[] => {
    const n = iterations();
    const recentOpen = read('open')
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((i) => i >= n - 3)
      .map((i) => `host value at iteration ${i} of ${n}: the view did not come back`);
    return [...read('err').split('\n').filter(Boolean), ...recentOpen];
  };
  const advance = async (n = 5): Promise<boolean> => {
    const from = iterations();
    return until(() => iterations() >= from + n, 20_000);
  };
  return { iterations, errors, advance };
}
