// The per-container file view: starts, updates and stops one vkfs supervisor per container
// and hands the runtime the bind mounts for the init plan.
//
//   const view = await startView({ id, stateDir, cgroup: cgroup.describe(), policy });
//   plan.mounts.push(...view.mounts);            // after the container's /proc and /sys
//   await updateView(stateDir, { policy });      // live; also after `update` (snapshot mode)
//   await stopView(stateDir);                    // delete: idempotent, also after crashes
//
// Modes: "fuse" (vkfs mounted at <stateDir>/view, files computed at read time), "snapshot"
// (no FUSE: plain files under <stateDir>/snap, rewritten by updateView), "off" (policy
// io.vkernel.view=off: no supervisor, no mounts). `stateDir` belongs to the view: pass a
// dedicated directory (e.g. <container state>/view); stopView removes it.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { childrenOf } from '../proc-tree';
import type { CgroupDescription } from '../cgroups/manager';
import { FailedPreconditionError, InvalidArgumentError } from '../errors';
import type { PlanMount } from '../init/plan-types';
import { native } from '../native';
import { buildPath, missingHelperFix } from '../paths';
import { spawnReady } from './spawn-ready';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY } from '../spec/mount-options';
import { syscallsValue, VIEW_FILES, type ViewFile, type ViewPolicy } from './policy';

export type ViewMode = 'fuse' | 'snapshot' | 'off';

export interface StartViewOptions {
  id: string;
  /** Owned by the view (created if missing, removed by stopView). */
  stateDir: string;
  cgroup: CgroupDescription;
  policy: ViewPolicy;
  /**
   * The container init's start time in clock ticks since boot (field 22 of /proc/PID/stat,
   * the runtime's `pidStartTime`). Optional: without it vkfs uses the oldest process of the
   * cgroup, and before there is one, the time the view started.
   */
  containerInitStartTime?: string | number;
  /** "auto" (default): FUSE when /dev/fuse works, else snapshot files. */
  mode?: 'auto' | 'fuse' | 'snapshot';
  /** Test seams: the vkfs binary, fake host /proc and /sys/devices/system, extra config lines. */
  vkfs?: string;
  hostProc?: string;
  hostSys?: string;
  extraConfig?: Record<string, string | number>;
  /** How long to wait for the FUSE server to answer (default 5000 ms). */
  readyTimeoutMs?: number;
}

export interface ViewHandle {
  mode: ViewMode;
  /** The keeper's pid (fuse mode), 0 otherwise. */
  pid: number;
  /** Bind mounts for the init plan, to be placed after the container's /proc and /sys mounts. */
  mounts: PlanMount[];
  /** Host directory the container's files come from (<stateDir>/view or <stateDir>/snap). */
  source: string;
  /** Why FUSE was not used (snapshot mode after a failed FUSE start). */
  fallbackReason?: string;
}

export interface ViewStatus {
  mode: ViewMode | 'stopped';
  keeperPid: number;
  workerPid: number;
  /** Holds a copy of the FUSE fd; takes over when keeper and worker die together. */
  standbyPid: number;
  /** The supervisor answers (fuse) / the files exist (snapshot). */
  alive: boolean;
}

/** What stopView/updateView need, in <stateDir>/view.json. */
interface ViewRecord {
  version: 1;
  id: string;
  mode: ViewMode;
  pid: number;
  source: string;
  policy: ViewPolicy;
  cgroup: CgroupDescription;
  startTicks?: string;
  hostProc: string;
  hostSys: string;
  vkfs: string;
  extraConfig?: Record<string, string | number>;
}

const RECORD = 'view.json';
const CONFIG = 'vkfs.conf';
const PIDFILE = 'vkfs.pid';
const LOG = 'vkfs.log';

/** Mount flags of every bind: the view is read-only and holds no devices or programs. */
const BIND_FLAGS = MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

export function vkfsPath(): string {
  return buildPath('vkfs');
}

// ---- config ----

export interface ConfigInput {
  policy: ViewPolicy;
  cgroup: CgroupDescription;
  hostProc?: string;
  hostSys?: string;
  startTicks?: string | number;
  extra?: Record<string, string | number>;
}

const ROLES = ['cpu', 'cpuacct', 'cpuset', 'memory', 'blkio', 'pids', 'unified'] as const;

/** The flat "key value" file vkfs reads (runtime/vkernel/vkfs/conf.c). */
export function renderConfig(c: ConfigInput): string {
  const lines: string[] = ['# vkfs config, written by runtime/vkernel/view.ts'];
  const put = (k: string, v: string | number) => {
    const s = String(v);
    if (/[\n\r]/.test(s)) throw new InvalidArgumentError(`vkernel view: ${k}: value contains a newline`, k);
    lines.push(`${k} ${s}`);
  };
  put('view', c.policy.view ? 'on' : 'off');
  put('cpu_rule', c.policy.cpuRule);
  put('files', c.policy.files.length ? c.policy.files.join(',') : 'none');
  // Read by the syscall agent (vkfs ignores it); a record from before the key means all.
  put('syscalls', syscallsValue(c.policy.syscalls));
  const g = c.cgroup;
  put('cgroup_mode', g.mode);
  for (const role of ROLES) {
    // v2: one directory for everything; v1: per controller, "" is the hybrid unified tree.
    const key = g.mode === 'v2' ? '' : role === 'unified' ? '' : role;
    const dir = g.paths[key];
    if (!dir) continue;
    put(`cg.${role}`, dir);
    const root = g.mounts?.[key];
    if (root) put(`root.${role}`, root);
  }
  put('host_proc', c.hostProc ?? '/proc');
  put('host_sys', c.hostSys ?? '/sys/devices/system');
  if (c.startTicks !== undefined && String(c.startTicks) !== '') {
    if (!/^\d+$/.test(String(c.startTicks))) {
      throw new InvalidArgumentError(`vkernel view: containerInitStartTime: not a tick count (got ${JSON.stringify(c.startTicks)})`, 'containerInitStartTime');
    }
    put('start_ticks', c.startTicks);
  }
  for (const [k, v] of Object.entries(c.extra ?? {})) put(k, v);
  return lines.join('\n') + '\n';
}

/** Temp + rename in the same directory: vkfs sees the old or the new file, never a torn one. */
function writeReplace(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/**
 * vkfs.gen: an 8-byte counter next to the config, bumped in place (never replaced) after
 * each config change. The syscall agent maps it and re-reads the config only when it moves,
 * so a trapped call costs no stat (one per call was ~2 us of a ~9 us sysinfo).
 */
const GENERATION = 'vkfs.gen';

/** The config replaced and its generation bumped: every config change goes through here. */
function writeConfig(stateDir: string, r: ViewRecord): void {
  writeReplace(path.join(stateDir, CONFIG), configFor(r));
  bumpGeneration(stateDir);
}

function bumpGeneration(stateDir: string): void {
  const fd = fs.openSync(path.join(stateDir, GENERATION), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  try {
    const b = Buffer.alloc(8);
    if (fs.readSync(fd, b, 0, 8, 0) === 8) b.writeBigUInt64LE(b.readBigUInt64LE(0) + 1n);
    else b.fill(0);
    fs.writeSync(fd, b, 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
}

// ---- mounts ----

const PROC_FILES: ViewFile[] = ['cpuinfo', 'meminfo', 'stat', 'uptime', 'loadavg', 'swaps', 'diskstats'];

function bind(source: string, destination: string, kind: 'file' | 'dir'): PlanMount {
  return { source, destination, fstype: 'bind', flags: BIND_FLAGS, propagation: [], data: '', kind };
}

/**
 * The bind mounts for a view rooted at `source`: each virtualized /proc file the kernel has,
 * each /proc/pressure/* file, and the two /sys directories.
 */
export function viewMounts(source: string, policy: ViewPolicy, hostProc = '/proc', hostSys = '/sys/devices/system'): PlanMount[] {
  if (!policy.view) return [];
  const on = new Set(policy.files);
  const out: PlanMount[] = [];
  for (const f of PROC_FILES) {
    if (on.has(f) && fs.existsSync(path.join(hostProc, f))) out.push(bind(path.join(source, 'proc', f), `/proc/${f}`, 'file'));
  }
  if (on.has('pressure')) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(hostProc, 'pressure')).sort();
    } catch {
      /* kernel without PSI */
    }
    for (const r of names) out.push(bind(path.join(source, 'proc', 'pressure', r), `/proc/pressure/${r}`, 'file'));
  }
  if (on.has('sys-cpu') && fs.existsSync(path.join(hostSys, 'cpu'))) {
    out.push(bind(path.join(source, 'sys', 'cpu'), '/sys/devices/system/cpu', 'dir'));
  }
  if (on.has('sys-node') && fs.existsSync(path.join(hostSys, 'node'))) {
    out.push(bind(path.join(source, 'sys', 'node'), '/sys/devices/system/node', 'dir'));
  }
  return out;
}

// ---- processes and mounts on the host ----

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points at or below dir in our mount namespace, deepest first. */
export function mountsBelow(dir: string): string[] {
  const d = path.resolve(dir);
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = unescapeMountinfo(mp);
    if (p === d || p.startsWith(`${d}/`)) out.push(p);
  }
  return out.sort((a, b) => b.length - a.length);
}

function procState(pid: number): string | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  const st = pid > 0 ? procState(pid) : undefined;
  return st !== undefined && st !== 'Z' && st !== 'X';
}

/** Is `pid` a live vkfs process serving the config in `stateDir`? */
function isSupervisor(pid: number, conf: string): boolean {
  let argv: string[];
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  const i = argv.indexOf('--config');
  return argv[1] === 'serve' && i > 0 && argv[i + 1] === conf && alive(pid);
}

/** Every live vkfs process serving `conf`, by walking all of /proc (the slow fallback). */
function scanSupervisors(conf: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (/^\d+$/.test(name) && isSupervisor(Number(name), conf)) out.push(Number(name));
  }
  return out;
}

/**
 * Live vkfs processes serving this config: the pidfile's (keeper, worker, standby) and their
 * descendants, which covers one that took over (a standby becomes the keeper and forks its
 * own worker and standby before it rewrites the pidfile). `visit` sees each new one before
 * its children are read (cleanupFuse stops it there, so it cannot fork behind our back).
 * Walking the tree, not all of /proc: a scan cost ~0.7 ms per 70 processes on every delete
 * and every live policy change, ~10 ms on a busy node.
 */
export function supervisorPids(stateDir: string, visit: (pid: number) => void = () => undefined): number[] {
  const dir = path.resolve(stateDir);
  const conf = path.join(dir, CONFIG);
  const { keeper, worker, standby } = readPidfile(dir);
  const found = new Set<number>();
  const queue = [keeper, worker, standby].filter((p) => p > 0);
  if (queue.length === 0) {
    // No pidfile (not written yet, or lost): only a walk of /proc can tell.
    for (const p of scanSupervisors(conf)) (found.add(p), visit(p));
    return [...found];
  }
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (found.has(pid) || !isSupervisor(pid, conf)) continue;
    found.add(pid);
    visit(pid);
    const kids = childrenOf(pid);
    if (kids === undefined) {
      for (const p of scanSupervisors(conf)) if (!found.has(p)) (found.add(p), visit(p));
      break;
    }
    queue.push(...kids);
  }
  return [...found];
}

function pidfileText(stateDir: string): string {
  try {
    return fs.readFileSync(path.join(stateDir, PIDFILE), 'utf8');
  } catch {
    return '';
  }
}

/** vkfs.pid: "keeper worker standby" (a standby of 0: none yet). */
function readPidfile(stateDir: string): { keeper: number; worker: number; standby: number } {
  try {
    const [k, w, s] = fs.readFileSync(path.join(stateDir, PIDFILE), 'utf8').trim().split(/\s+/).map(Number);
    return { keeper: k || 0, worker: w || 0, standby: s || 0 };
  } catch {
    return { keeper: 0, worker: 0, standby: 0 };
  }
}

function run(file: string, args: string[], timeoutMs = 10000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, stdout, stderr: stderr || (err ? err.message : '') });
    });
  });
}

const MNT_DETACH = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- start ----

function readRecord(stateDir: string): ViewRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(stateDir, RECORD), 'utf8')) as ViewRecord;
    return r && r.version === 1 ? r : undefined;
  } catch {
    return undefined;
  }
}

function configFor(r: ViewRecord): string {
  return renderConfig({
    policy: r.policy,
    cgroup: r.cgroup,
    hostProc: r.hostProc,
    hostSys: r.hostSys,
    startTicks: r.startTicks,
    extra: r.extraConfig,
  });
}

/** Starts vkfs serve and waits for "ok PID" on its fd 3. */
function startFuse(vkfs: string, stateDir: string, mountpoint: string, timeoutMs: number): Promise<number> {
  return spawnReady({
    binary: vkfs,
    args: ['serve', '--config', path.join(stateDir, CONFIG), '--mount', mountpoint, '--pidfile', path.join(stateDir, PIDFILE)],
    logFile: path.join(stateDir, LOG),
    name: 'vkfs',
    timeoutMs,
  });
}

async function writeSnapshot(r: ViewRecord, stateDir: string): Promise<void> {
  const args = ['snapshot', '--config', path.join(stateDir, CONFIG), '--out', r.source];
  if (process.getuid?.() === 0) args.push('--tmpfs');
  if (!fs.existsSync(r.vkfs)) throw new FailedPreconditionError(`vkernel view: ${r.vkfs} is missing (${missingHelperFix()}), or turn the view off (io.vkernel.view=off)`);
  const res = await run(r.vkfs, args);
  if (res.code !== 0) throw new FailedPreconditionError(`vkernel view: snapshot failed: ${res.stderr.trim()}`);
}

export async function startView(opts: StartViewOptions): Promise<ViewHandle> {
  const stateDir = path.resolve(opts.stateDir);
  // 0711: a user-namespace root (an unprivileged host uid) must traverse to the bind sources.
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o711 });
  const hostProc = opts.hostProc ?? '/proc';
  const hostSys = opts.hostSys ?? '/sys/devices/system';
  const record: ViewRecord = {
    version: 1,
    id: opts.id,
    mode: 'off',
    pid: 0,
    source: '',
    policy: opts.policy,
    cgroup: opts.cgroup,
    startTicks: opts.containerInitStartTime === undefined ? undefined : String(opts.containerInitStartTime),
    hostProc,
    hostSys,
    vkfs: opts.vkfs ?? vkfsPath(),
    extraConfig: opts.extraConfig,
  };
  const save = () => writeReplace(path.join(stateDir, RECORD), JSON.stringify(record));
  if (!opts.policy.view) {
    save();
    return { mode: 'off', pid: 0, mounts: [], source: '' };
  }
  writeConfig(stateDir, record);

  const want = opts.mode ?? 'auto';
  let fallbackReason: string | undefined;
  if (want !== 'snapshot') {
    if (!fs.existsSync(record.vkfs)) fallbackReason = `${record.vkfs} is missing (${missingHelperFix()})`;
    else if (!fs.existsSync('/dev/fuse')) fallbackReason = '/dev/fuse is missing';
    if (!fallbackReason) {
      const mountpoint = path.join(stateDir, 'view');
      fs.mkdirSync(mountpoint, { recursive: true, mode: 0o755 });
      try {
        record.pid = await startFuse(record.vkfs, stateDir, mountpoint, opts.readyTimeoutMs ?? 5000);
        record.mode = 'fuse';
        record.source = mountpoint;
        save();
        return { mode: 'fuse', pid: record.pid, mounts: viewMounts(mountpoint, opts.policy, hostProc, hostSys), source: mountpoint };
      } catch (err) {
        fallbackReason = (err as Error).message;
        await cleanupFuse(stateDir);
        await unmountAll(stateDir, record.vkfs);
      }
    }
    if (want === 'fuse') throw new FailedPreconditionError(`vkernel view: FUSE unavailable: ${fallbackReason}`);
  }
  record.mode = 'snapshot';
  record.source = path.join(stateDir, 'snap');
  record.pid = 0;
  save();
  await writeSnapshot(record, stateDir);
  return { mode: 'snapshot', pid: 0, mounts: viewMounts(record.source, opts.policy, hostProc, hostSys), source: record.source, fallbackReason };
}

// ---- update ----

export interface ViewUpdate {
  policy?: ViewPolicy;
  containerInitStartTime?: string | number;
}

/**
 * Applies a policy (or start time) change. FUSE: rewrites the config and signals the
 * worker, so the next read uses it. Snapshot: rewrites the files (call it after every
 * `update` of the limits too). A view started with view=off stays without mounts.
 */
export async function updateView(stateDir: string, change: ViewUpdate = {}): Promise<ViewMode> {
  const dir = path.resolve(stateDir);
  const r = readRecord(dir);
  if (!r) throw new FailedPreconditionError(`vkernel view: no view in ${dir}`);
  if (change.policy) r.policy = change.policy;
  if (change.containerInitStartTime !== undefined) r.startTicks = String(change.containerInitStartTime);
  writeReplace(path.join(dir, RECORD), JSON.stringify(r));
  if (r.mode === 'off') return 'off';
  writeConfig(dir, r);
  if (r.mode === 'snapshot') {
    await writeSnapshot(r, dir);
    return 'snapshot';
  }
  // The worker reloads on SIGUSR2 before it reads the next request (and once a second
  // anyway); the keeper ignores the signal.
  for (const pid of supervisorPids(dir)) {
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      /* exited meanwhile */
    }
  }
  return 'fuse';
}

// ---- stop ----

async function cleanupFuse(stateDir: string): Promise<void> {
  // Every supervisor process stopped first, then all killed (a keeper would replace a dead
  // standby, a standby take over from a dead keeper; stopped, neither runs nor forks): each is
  // stopped as the walk finds it, before its children are read. The mount is detached right
  // after, so there is nothing left for a graceful stop to do, and waiting for the keeper's
  // own shutdown put milliseconds on every delete.
  const stop = (pid: number): void => signal(pid, 'SIGSTOP');
  let pidfile: string | undefined;
  for (let round = 0; round < 20; round++) {
    // Again only if the pidfile changed: one that took over meanwhile rewrote it. (One that
    // takes over after this serves a detached mount without its config, and exits.)
    const now = pidfileText(stateDir);
    if (round > 0 && now === pidfile) break;
    pidfile = now;
    const pids = supervisorPids(stateDir, stop);
    if (pids.length === 0) break;
    for (const pid of pids) signal(pid, 'SIGKILL');
    if (round === 0) detachMounts(stateDir);
    await until(() => pids.every((p) => !alive(p)), round === 0 ? 1000 : 400);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/**
 * Polls `done` from 1 ms, doubling to 20 ms, until it holds or `timeoutMs` passed. The keeper
 * exits within a few ms of SIGTERM: a fixed 20 ms sleep put that on every delete's path.
 */
async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; !done(); wait = Math.min(wait * 2, 20)) {
    if (Date.now() >= deadline) return false;
    await sleep(wait);
  }
  return true;
}

/** MNT_DETACH of every mount below stateDir, in-process (no helper spawn); errors are left to unmountAll. */
function detachMounts(stateDir: string): void {
  for (const mp of mountsBelow(stateDir)) {
    try {
      native().umount2(mp, MNT_DETACH);
    } catch {
      // unmountAll retries with the helper and reports
    }
  }
}

async function unmountAll(stateDir: string, vkfs: string): Promise<void> {
  detachMounts(stateDir);
  for (let round = 0; round < 5; round++) {
    const mps = mountsBelow(stateDir);
    if (mps.length === 0) return;
    for (const mp of mps) {
      const res = fs.existsSync(vkfs) ? await run(vkfs, ['umount', mp]) : await run('umount', ['-l', mp]);
      if (res.code !== 0 && round === 4) throw new FailedPreconditionError(`vkernel view: cannot unmount ${mp}: ${res.stderr.trim()}`);
    }
  }
  const left = mountsBelow(stateDir);
  if (left.length) throw new FailedPreconditionError(`vkernel view: still mounted: ${left.join(', ')}`);
}

/**
 * Stops the supervisor (keeper, worker, standby, one that took over), lazy-unmounts the view
 * and the snapshot tmpfs, and removes stateDir. Idempotent; works after the keeper died.
 */
export async function stopView(stateDir: string): Promise<void> {
  const dir = path.resolve(stateDir);
  if (!fs.existsSync(dir)) return;
  const r = readRecord(dir);
  await cleanupFuse(dir);
  await unmountAll(dir, r?.vkfs ?? vkfsPath());
  fs.rmSync(dir, { recursive: true, force: true });
}

export function viewStatus(stateDir: string): ViewStatus {
  const dir = path.resolve(stateDir);
  const r = readRecord(dir);
  if (!r) return { mode: 'stopped', keeperPid: 0, workerPid: 0, standbyPid: 0, alive: false };
  if (r.mode !== 'fuse') {
    return { mode: r.mode, keeperPid: 0, workerPid: 0, standbyPid: 0, alive: r.mode === 'off' || fs.existsSync(r.source) };
  }
  const { keeper, worker, standby } = readPidfile(dir);
  return { mode: 'fuse', keeperPid: keeper, workerPid: worker, standbyPid: standby, alive: alive(keeper) && mountsBelow(r.source).length > 0 };
}

export { VIEW_FILES };
