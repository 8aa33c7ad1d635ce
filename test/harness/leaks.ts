// Leak detection around integration tests: what a container may leave behind after it
// is deleted. A snapshot lists, for a set of container ids (and their bundle dirs):
//   stateDirs    entries under the runtime root (depth <= 3) whose name contains an id
//   mounts       lines of /proc/self/mountinfo mentioning an id or a bundle dir
//   cgroups      dirs under /sys/fs/cgroup/<hierarchy>/ (depth <= 4) whose name contains an id
//   processes    processes whose cmdline or cgroup mentions an id or bundle dir, or whose
//                cwd is inside a bundle (e.g. vkinit, which the runtime starts there);
//                zombies already reparented to pid 1 are ignored
//   bundleFiles  fifos and sockets left anywhere in a bundle dir
// assertNoLeaks(before, after) fails on anything in `after` that was not in `before`.
// One snapshot reads /proc and walks the cgroup trees once: a few ms to a few tens of ms.

import * as fs from 'fs';
import * as path from 'path';
import { Bundle, liveBundles, onBundleCreated, unescapeMountinfo } from './bundle';
import { runtimeRoot } from './runtime';

export interface LeakSnapshot {
  ids: string[];
  root: string;
  bundleDirs: string[];
  stateDirs: string[];
  mounts: string[];
  cgroups: string[];
  processes: string[];
  bundleFiles: string[];
}

export type LeakCategory = 'stateDirs' | 'mounts' | 'cgroups' | 'processes' | 'bundleFiles';
const CATEGORIES: LeakCategory[] = ['stateDirs', 'mounts', 'cgroups', 'processes', 'bundleFiles'];

const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP_MAX_DEPTH = 4;
const STATE_MAX_DEPTH = 3;
const BUNDLE_MAX_DEPTH = 8;

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function readLink(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}

function readDir(p: string): fs.Dirent[] {
  try {
    return fs.readdirSync(p, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Dirs at depth 1..maxDepth below `top` whose name contains one of `ids` (not descending into them). */
function findNamedDirs(top: string, ids: string[], maxDepth: number): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const e of readDir(dir)) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (ids.some((id) => e.name.includes(id))) found.push(p);
      else if (depth < maxDepth) walk(p, depth + 1);
    }
  };
  walk(top, 1);
  return found;
}

function stateEntries(root: string, ids: string[]): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const e of readDir(dir)) {
      const p = path.join(dir, e.name);
      if (ids.some((id) => e.name.includes(id))) found.push(p);
      else if (e.isDirectory() && depth < STATE_MAX_DEPTH) walk(p, depth + 1);
    }
  };
  walk(root, 1);
  return found;
}

function mountLines(needles: string[]): string[] {
  const text = readText('/proc/self/mountinfo') ?? '';
  return text.split('\n').filter((line) => {
    if (!line) return false;
    const plain = unescapeMountinfo(line);
    return needles.some((n) => plain.includes(n));
  });
}

function cgroupDirs(ids: string[]): string[] {
  const found: string[] = [];
  for (const h of readDir(CGROUP_ROOT)) {
    if (!h.isDirectory()) continue;
    found.push(...findNamedDirs(path.join(CGROUP_ROOT, h.name), ids, CGROUP_MAX_DEPTH));
  }
  return found;
}

function isInside(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

function processes(ids: string[], bundleDirs: string[]): string[] {
  const found: string[] = [];
  const needles = [...ids, ...bundleDirs];
  for (const e of readDir('/proc')) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    if (pid === process.pid) continue;
    const base = `/proc/${pid}`;
    const cmdline = (readText(`${base}/cmdline`) ?? '').replace(/\0+$/, '').replace(/\0/g, ' ');
    const cgroup = readText(`${base}/cgroup`) ?? '';
    const cwd = readLink(`${base}/cwd`) ?? '';
    const why: string[] = [];
    if (needles.some((n) => cmdline.includes(n))) why.push('cmdline');
    if (ids.some((id) => cgroup.includes(id))) why.push('cgroup');
    if (bundleDirs.some((d) => isInside(cwd, d))) why.push(`cwd=${cwd}`);
    if (why.length === 0) continue;
    const stat = readText(`${base}/stat`) ?? '';
    const [state = '?', ppid = ''] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A dead process handed to the host's init only waits for init to reap it (which
    // can take seconds in some sandboxes): not the runtime's leak. Zombies with any
    // other parent (the runtime, a shim, a subreaper) still count.
    if (state === 'Z' && ppid === '1') continue;
    const comm = (readText(`${base}/comm`) ?? '').trim();
    // No volatile fields (R/S state) in the text: snapshots are compared as strings.
    found.push(`pid ${pid} [${comm}${state === 'Z' ? ', zombie' : ''}, ${why.join('+')}] ${cmdline}`);
  }
  return found;
}

function fifosAndSockets(bundleDir: string): string[] {
  const found: string[] = [];
  let dev: number;
  try {
    dev = fs.lstatSync(bundleDir).dev;
  } catch {
    return found;
  }
  const walk = (dir: string, depth: number): void => {
    for (const e of readDir(dir)) {
      const p = path.join(dir, e.name);
      if (e.isFIFO()) found.push(`fifo ${p}`);
      else if (e.isSocket()) found.push(`socket ${p}`);
      else if (e.isDirectory() && depth < BUNDLE_MAX_DEPTH) {
        try {
          if (fs.lstatSync(p).dev !== dev) continue; // a mount: not ours to walk
        } catch {
          continue;
        }
        walk(p, depth + 1);
      }
    }
  };
  walk(bundleDir, 1);
  return found;
}

/**
 * Snapshot of everything that mentions `ids` (and, when given or known from makeBundle,
 * their bundle dirs). `root` is the runtime's state root (default the private one).
 */
export function snapshotLeaks(ids: string[], root: string = runtimeRoot(), opts: { bundleDirs?: string[] } = {}): LeakSnapshot {
  const bundleDirs =
    opts.bundleDirs ?? [...liveBundles].filter((b) => ids.includes(b.id)).map((b) => b.dir);
  if (ids.length === 0 && bundleDirs.length === 0) {
    return { ids, root, bundleDirs, stateDirs: [], mounts: [], cgroups: [], processes: [], bundleFiles: [] };
  }
  return {
    ids: [...ids],
    root,
    bundleDirs,
    stateDirs: ids.length ? stateEntries(root, ids) : [],
    mounts: mountLines([...ids, ...bundleDirs]),
    cgroups: ids.length ? cgroupDirs(ids) : [],
    processes: processes(ids, bundleDirs),
    bundleFiles: bundleDirs.flatMap(fifosAndSockets),
  };
}

/** What is in `after` but not in `before`, per category (empty object: no leaks). */
export function diffLeaks(before: LeakSnapshot, after: LeakSnapshot): Partial<Record<LeakCategory, string[]>> {
  const out: Partial<Record<LeakCategory, string[]>> = {};
  for (const c of CATEGORIES) {
    const had = new Set(before[c]);
    const fresh = after[c].filter((x) => !had.has(x));
    if (fresh.length) out[c] = fresh;
  }
  return out;
}

export function formatLeaks(leaks: Partial<Record<LeakCategory, string[]>>): string {
  return Object.entries(leaks)
    .map(([c, items]) => `  ${c}:\n${items!.map((i) => `    ${i}`).join('\n')}`)
    .join('\n');
}

export class LeakError extends Error {
  constructor(readonly leaks: Partial<Record<LeakCategory, string[]>>, ids: string[]) {
    super(`leaked resources for ${ids.join(', ')}:\n${formatLeaks(leaks)}`);
    this.name = 'LeakError';
  }
}

/** Throws a LeakError listing everything new in `after`. */
export function assertNoLeaks(before: LeakSnapshot, after: LeakSnapshot): void {
  const leaks = diffLeaks(before, after);
  if (Object.keys(leaks).length) throw new LeakError(leaks, after.ids);
}

/**
 * Polls until nothing new (relative to `before`) is left for `ids`, or rejects with a
 * LeakError after timeoutMs (default 1000; 0 = one strict check).
 */
export async function waitForNoLeaks(
  before: LeakSnapshot,
  ids: string[],
  opts: { root?: string; bundleDirs?: string[]; timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 1000);
  for (;;) {
    const leaks = diffLeaks(before, snapshotLeaks(ids, opts.root ?? before.root, { bundleDirs: opts.bundleDirs }));
    if (Object.keys(leaks).length === 0) return;
    if (Date.now() >= deadline) throw new LeakError(leaks, ids);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface LeakCheckOptions {
  /** Extra ids to watch besides the bundles made inside fn (e.g. exec ids, shim ids). */
  ids?: string[];
  /** Runtime state root (default the private one). */
  root?: string;
  /**
   * How long to wait for leftovers to vanish before failing (processes that were killed
   * may take a moment to exit). Default 5000 ms; 0 for a single strict check.
   */
  settleMs?: number;
  /** Keep the bundles made inside fn instead of cleaning them up afterwards. */
  keepBundles?: boolean;
}

/**
 * withLeakCheck's default settle time. A deadline, not a sleep (the check returns as soon
 * as nothing is left): killed helpers (a view's vkfs trio, an agent's vkagent trio) can
 * take seconds to be gone on a loaded machine.
 */
const SETTLE_MS = 5000;

/**
 * Runs fn and then checks that nothing is left for the bundles made inside it (via
 * makeBundle) or for opts.ids. Those bundles are cleaned up afterwards (also when fn
 * throws, whose error then wins over a leak report).
 */
export async function withLeakCheck<T>(fn: () => Promise<T>, opts: LeakCheckOptions = {}): Promise<T> {
  const root = opts.root ?? runtimeRoot();
  const made: Bundle[] = [];
  const stop = onBundleCreated((b) => made.push(b));
  const extraIds = opts.ids ?? [];
  const before = snapshotLeaks(extraIds, root, { bundleDirs: [] });
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    stop();
    if (!opts.keepBundles) await Promise.allSettled(made.map((b) => b.cleanup()));
    throw e;
  }
  stop();
  const ids = [...extraIds, ...made.map((b) => b.id)];
  const leakError = await waitForNoLeaks(before, ids, { root, bundleDirs: made.map((b) => b.dir), timeoutMs: opts.settleMs ?? SETTLE_MS }).then(
    () => undefined,
    (e: unknown) => e,
  );
  // Clean up even after a leak (so later tests start clean); the leak report wins.
  const results = opts.keepBundles ? [] : await Promise.allSettled(made.map((b) => b.cleanup()));
  if (leakError) throw leakError;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return result;
}
