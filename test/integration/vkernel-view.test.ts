// The vkernel file view on the real kernel: a real cgroup (v1 on this host, hybrid unified
// tree included), vkfs mounted with FUSE, files read from the host side, limits and policy
// changed live, the worker killed under load, and a real container reading the view.
// Needs root, /dev/fuse and build/vkfs (make native).
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createCgroupManager, type CgroupManager } from '../../runtime/cgroups/manager';
import { buildPath } from '../../runtime/paths';
import type { LinuxResources } from '../../runtime/spec/types';
import { ANNOTATIONS, DEFAULT_POLICY, parseViewPolicy } from '../../runtime/vkernel/policy';
import { mountsBelow, startView, stopView, supervisorPids, updateView, viewStatus, type ViewHandle } from '../../runtime/vkernel/view';
import { execFileSync } from 'node:child_process';
import {
  describeIf,
  hasCgroupV1,
  makeBundle,
  requireRoot,
  requirement,
  requireFixtures,
  requireRuntime,
  runBundle,
  runRuntime,
  runRuntimeOk,
} from '../harness';

const VKFS = buildPath('vkfs');
const ok =
  requireRoot() &&
  requirement(fs.existsSync(VKFS), `${VKFS} is missing (make native)`) &&
  requirement(fs.existsSync('/dev/fuse'), '/dev/fuse is missing') &&
  requirement(hasCgroupV1('memory') && hasCgroupV1('cpuset'), 'cgroup v1 memory and cpuset controllers (this suite drives the v1 driver)');

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = () => `vkt-view-${crypto.randomBytes(4).toString('hex')}`;
const stateRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'vkview-state-'));

const managers: CgroupManager[] = [];
const stateDirs: string[] = [];
const children: number[] = [];

async function makeCgroup(resources: LinuxResources): Promise<{ id: string; m: CgroupManager }> {
  const id = tag();
  const m = createCgroupManager({ id, cgroupsPath: `/${id}` });
  managers.push(m);
  await m.create(resources);
  return { id, m };
}

const LIMITS: LinuxResources = { memory: { limit: 256 * MiB }, cpu: { quota: 50000, period: 100000, cpus: '1', mems: '0' } };

function memTotal(text: string): number {
  return Number(/^MemTotal:\s+(\d+) kB$/m.exec(text)?.[1]);
}

interface Reader {
  /** Resolves once the first read is done: the reader is in its loop. */
  running: Promise<void>;
  /** Ends the loop after the current read. */
  stop(): void;
  result: Promise<{ reads: number; errors: string[] }>;
}

/**
 * A separate process that reads `file` in a loop and reports reads and failures: one read,
 * then more until stop() or until `ms` have passed (0: exactly one read).
 */
function startReader(file: string, ms: number): Reader {
  const stopFile = path.join(stateRoot, `reader-stop-${crypto.randomBytes(4).toString('hex')}`);
  const script = `
    const fs = require('fs'); const end = Date.now() + ${ms}; let reads = 0; const errors = [];
    do {
      try { const t = fs.readFileSync(${JSON.stringify(file)}, 'utf8'); if (!/^MemTotal:/.test(t)) errors.push('bad content: ' + t.slice(0, 40)); }
      catch (e) { errors.push(e.code || e.message); }
      if (++reads === 1) fs.writeSync(1, 'running\\n');
    } while (Date.now() < end && !fs.existsSync(${JSON.stringify(stopFile)}));
    fs.writeSync(1, JSON.stringify({ reads, errors: errors.slice(0, 20) }));`;
  const c = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c.pid!);
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve, reject) => {
    c.on('error', reject);
    c.on('exit', () => resolve());
  });
  const running = new Promise<void>((resolve, reject) => {
    c.stdout.on('data', () => out.includes('running\n') && resolve());
    void exited.then(() => reject(new Error(`reader exited before reading: ${out}`)), reject);
  });
  const result = exited.then(() => {
    try {
      return JSON.parse(out.slice(out.lastIndexOf('\n') + 1));
    } catch {
      throw new Error(`reader output: ${out}`);
    }
  });
  // Not every caller awaits both (a test that failed first, or ms 0 without `running`).
  running.catch(() => undefined);
  result.catch(() => undefined);
  return { running, stop: () => fs.writeFileSync(stopFile, ''), result };
}

function workerPid(stateDir: string): number {
  return Number(fs.readFileSync(path.join(stateDir, 'vkfs.pid'), 'utf8').trim().split(/\s+/)[1]);
}

/**
 * The worker, if it sleeps in test_delay_us (nanosleep, clock_nanosleep): it has read a
 * request and not answered it. 0 otherwise.
 */
function delayingWorker(stateDir: string): number {
  try {
    const pid = workerPid(stateDir);
    const nr = Number(fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0]);
    return nr === 35 || nr === 230 ? pid : 0;
  } catch {
    return 0;
  }
}

function keeperPid(stateDir: string): number {
  return Number(fs.readFileSync(path.join(stateDir, 'vkfs.pid'), 'utf8').trim().split(/\s+/)[0]);
}

async function until(what: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (what()) return true;
    await sleep(25);
  }
  return what();
}

/** Every vkfs process serving stateDir's config, found by reading all of /proc (not the pidfile tree). */
function vkfsProcesses(stateDir: string): number[] {
  const conf = path.join(path.resolve(stateDir), 'vkfs.conf');
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[1] === 'serve' && argv.includes(conf) && !/ [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  });
}

function expectGone(stateDir: string): void {
  expect(mountsBelow(stateDir)).toEqual([]);
  expect(vkfsProcesses(stateDir)).toEqual([]);
  expect(fs.existsSync(stateDir)).toBe(false);
}

afterAll(async () => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const d of stateDirs) await stopView(d).catch(() => undefined);
  await sleep(100);
  for (const m of managers) await m.destroy().catch(() => undefined);
  fs.rmSync(stateRoot, { recursive: true, force: true });
});

describeIf(ok)('vkernel view (FUSE, real cgroup)', () => {
  let id: string;
  let m: CgroupManager;
  let stateDir: string;
  let view: ViewHandle;
  const read = (rel: string) => fs.readFileSync(path.join(view.source, rel), 'utf8');

  beforeAll(async () => {
    ({ id, m } = await makeCgroup(LIMITS));
    stateDir = path.join(stateRoot, id);
    stateDirs.push(stateDir);
    view = await startView({ id, stateDir, cgroup: m.describe(), policy: DEFAULT_POLICY });
  });

  it('mounts a vkfs FUSE file system in fuse mode and lists the binds for the plan', () => {
    expect(view.mode).toBe('fuse');
    expect(view.pid).toBeGreaterThan(0);
    expect(mountsBelow(stateDir)).toEqual([path.join(stateDir, 'view')]);
    const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.includes(` ${path.join(stateDir, 'view')} `));
    expect(line).toMatch(/ - fuse\.vkfs vkfs ro,/);
    const dests = view.mounts.map((x) => x.destination);
    expect(dests).toEqual(expect.arrayContaining(['/proc/meminfo', '/proc/cpuinfo', '/proc/stat', '/proc/uptime', '/proc/loadavg', '/sys/devices/system/cpu']));
    expect(viewStatus(stateDir)).toMatchObject({ mode: 'fuse', alive: true, keeperPid: view.pid });
  });

  it('shows the cgroup limits: 256 MiB, one CPU (quota 0.5, cpuset 1) everywhere', () => {
    expect(memTotal(read('proc/meminfo'))).toBe(262144);
    expect(read('proc/cpuinfo').match(/^processor\s+: \d+$/gm)).toEqual(['processor\t: 0']);
    expect(read('sys/cpu/online')).toBe('0\n');
    expect(read('sys/cpu/possible')).toBe('0\n');
    expect(read('sys/cpu/present')).toBe('0\n');
    expect(fs.readdirSync(path.join(view.source, 'sys/cpu')).filter((n) => /^cpu\d+$/.test(n))).toEqual(['cpu0']);
    // cpu0 is host CPU 1: its topology comes through.
    expect(read('sys/cpu/cpu0/topology/core_id')).toBe(fs.readFileSync('/sys/devices/system/cpu/cpu1/topology/core_id', 'utf8'));
    expect(read('proc/stat').match(/^cpu\d* /gm)).toEqual(['cpu ', 'cpu0 ']);
    if (fs.existsSync('/sys/devices/system/node')) {
      expect(memTotal(read('sys/node/node0/meminfo').replace(/^Node 0 /gm, ''))).toBe(262144);
      expect(read('sys/node/node0/cpulist')).toBe('0\n');
    }
  });

  it('uptime is the age of the oldest process in the cgroup; loadavg has the kernel format', async () => {
    const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
    children.push(sleeper.pid!);
    await m.addProcess(sleeper.pid!);
    await sleep(300);
    const [up, idle] = read('proc/uptime').trim().split(' ').map(Number);
    expect(up).toBeGreaterThanOrEqual(0.2);
    expect(up).toBeLessThan(10);
    expect(idle).toBeLessThanOrEqual(up * 1 + 0.01); // one CPU
    expect(read('proc/loadavg')).toMatch(/^\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+\/\d+ \d+\n$/);
  });

  it('whole files for every way of reading: read(2), sendfile (busybox cat), copy_file_range (cat > file), st_size (Node)', () => {
    const file = path.join(view.source, 'proc/meminfo');
    const lines = read('proc/meminfo').split('\n').length;
    expect(execFileSync('busybox', ['cat', file], { encoding: 'utf8' }).split('\n')).toHaveLength(lines);
    const copy = path.join(stateRoot, 'meminfo.copy');
    execFileSync('sh', ['-c', `cat ${file} > ${copy}`]);
    expect(fs.readFileSync(copy, 'utf8').split('\n')).toHaveLength(lines);
    expect(execFileSync('tail', ['-n', '1', file], { encoding: 'utf8' })).toMatch(/^\w+:\s+\d+( kB)?\n$/);
    for (let i = 0; i < 200; i++) {
      const b = fs.readFileSync(file); // a Buffer read of exactly st_size bytes
      expect(b[b.length - 1]).toBe(10);
    }
  });

  it('follows limit changes on the next read (memory 512 MiB, quota 2 CPUs over cpuset 0-1)', async () => {
    await m.update({ memory: { limit: 512 * MiB }, cpu: { quota: 200000, cpus: '0-1' } });
    expect(memTotal(read('proc/meminfo'))).toBe(524288);
    expect(read('sys/cpu/online')).toBe('0-1\n');
    expect(read('proc/cpuinfo').match(/^processor/gm)).toHaveLength(2);
    await m.update({ cpu: { quota: 100000 } }); // ceil(1.0) = 1
    expect(read('sys/cpu/online')).toBe('0\n');
  });

  it('follows policy changes on the next read (updateView)', async () => {
    await updateView(stateDir, { policy: parseViewPolicy({ [ANNOTATIONS.cpuRule]: 'cpuset', [ANNOTATIONS.files]: 'sys-cpu' }) });
    expect(read('sys/cpu/online')).toBe('0-1\n'); // the cpuset, ignoring the quota
    expect(memTotal(read('proc/meminfo'))).toBe(memTotal(fs.readFileSync('/proc/meminfo', 'utf8'))); // not virtualized now
    await updateView(stateDir, { policy: DEFAULT_POLICY });
    expect(memTotal(read('proc/meminfo'))).toBe(524288);
  });

  it('survives its worker being SIGKILLed again and again while a reader loops: no errors, and it comes back', async () => {
    const reader = startReader(path.join(view.source, 'proc/meminfo'), 60_000);
    let kills = 0;
    try {
      await reader.running; // every kill below lands while it reads
      const seen = new Set<number>();
      // Each kill waits for the keeper's respawn (and a 40 ms poll), with the reader spinning
      // a core: 10 of them can take seconds on a loaded host.
      const end = Date.now() + 10_000;
      while (kills < 10 && Date.now() < end) {
        const w = workerPid(stateDir);
        if (w > 0 && !seen.has(w)) {
          seen.add(w);
          try {
            process.kill(w, 'SIGKILL');
            kills++;
          } catch {
            /* already replaced */
          }
        }
        await sleep(40);
      }
    } finally {
      reader.stop();
    }
    const r = await reader.result;
    expect(kills).toBeGreaterThanOrEqual(10);
    expect(r.errors).toEqual([]);
    expect(r.reads).toBeGreaterThan(100);
    expect(memTotal(read('proc/meminfo'))).toBe(524288); // served again
    expect(viewStatus(stateDir).alive).toBe(true);
  });

  it('answers a request the killed worker had read but not answered (FUSE_NOTIFY_RESEND)', async () => {
    // A second view whose worker sleeps 300 ms after reading each request: kill it then.
    const d = path.join(stateRoot, `${id}-slow`);
    stateDirs.push(d);
    const slow = await startView({ id: `${id}-slow`, stateDir: d, cgroup: m.describe(), policy: DEFAULT_POLICY, extraConfig: { test_delay_us: 300000 } });
    const started = Date.now();
    const reader = startReader(path.join(slow.source, 'proc/meminfo'), 0);
    // Only the reader uses this view: a worker in its delay holds one of the reader's requests.
    let w = 0;
    expect(await until(() => (w = delayingWorker(d)) > 0, 20_000)).toBe(true);
    process.kill(w, 'SIGKILL'); // mid-request
    let again = 0;
    expect(await until(() => (again = delayingWorker(d)) > 0 && again !== w, 20_000)).toBe(true);
    process.kill(again, 'SIGKILL'); // the resent request, mid-request again
    const r = await reader.result;
    expect(r).toEqual({ reads: 1, errors: [] });
    // A lost request hangs for good; the bound only tells that from a loaded host's seconds.
    expect(Date.now() - started).toBeLessThan(30_000);
    await stopView(d);
    expectGone(d);
  });

  it('keeps serving when the keeper dies (the worker takes over), and stopView still cleans up', async () => {
    const d = path.join(stateRoot, `${id}-k`);
    stateDirs.push(d);
    const v = await startView({ id: `${id}-k`, stateDir: d, cgroup: m.describe(), policy: DEFAULT_POLICY });
    const oldWorker = workerPid(d);
    process.kill(v.pid, 'SIGKILL');
    expect(await until(() => keeperPid(d) === oldWorker)).toBe(true);
    // The pidfile tree finds exactly what a walk of all of /proc finds (the new keeper's new
    // worker and standby included).
    // (The killed keeper's own standby may live a moment longer: it exits once it sees the takeover.)
    const same = (): boolean => JSON.stringify(supervisorPids(d).sort()) === JSON.stringify(vkfsProcesses(d).sort());
    expect(await until(() => supervisorPids(d).length === 3 && same())).toBe(true);
    expect(memTotal(fs.readFileSync(path.join(v.source, 'proc/meminfo'), 'utf8'))).toBe(524288);
    process.kill(workerPid(d), 'SIGKILL'); // the new keeper restarts its worker
    expect(memTotal(fs.readFileSync(path.join(v.source, 'proc/meminfo'), 'utf8'))).toBe(524288);
    await stopView(d);
    expectGone(d);
  });

  it('stops by itself (unmounts, exits) when the container cgroup is removed', async () => {
    const c = await makeCgroup(LIMITS);
    const d = path.join(stateRoot, c.id);
    stateDirs.push(d);
    await startView({ id: c.id, stateDir: d, cgroup: c.m.describe(), policy: DEFAULT_POLICY });
    await c.m.destroy();
    const stopped = await until(() => vkfsProcesses(d).length === 0 && mountsBelow(d).length === 0, 5000);
    if (!stopped) console.log(vkfsProcesses(d), mountsBelow(d), fs.readFileSync(path.join(d, 'vkfs.log'), 'utf8'));
    expect(stopped).toBe(true);
    await stopView(d);
    expectGone(d);
  });

  it('snapshot mode: plain files, rewritten in place by updateView', async () => {
    const d = path.join(stateRoot, `${id}-snap`);
    stateDirs.push(d);
    const s = await startView({ id: `${id}-snap`, stateDir: d, cgroup: m.describe(), policy: DEFAULT_POLICY, mode: 'snapshot' });
    expect(s.mode).toBe('snapshot');
    expect(s.pid).toBe(0);
    const mem = path.join(s.source, 'proc/meminfo');
    expect(memTotal(fs.readFileSync(mem, 'utf8'))).toBe(524288);
    const ino = fs.statSync(mem).ino;
    await m.update({ memory: { limit: 384 * MiB } });
    expect(memTotal(fs.readFileSync(mem, 'utf8'))).toBe(524288); // a snapshot until updated
    expect(await updateView(d)).toBe('snapshot');
    expect(memTotal(fs.readFileSync(mem, 'utf8'))).toBe(393216);
    expect(fs.statSync(mem).ino).toBe(ino);
    await stopView(d);
    expectGone(d);
  });

  it('view=off starts nothing and mounts nothing', async () => {
    const d = path.join(stateRoot, `${id}-off`);
    const v = await startView({ id: `${id}-off`, stateDir: d, cgroup: m.describe(), policy: { ...DEFAULT_POLICY, view: false } });
    expect(v).toMatchObject({ mode: 'off', pid: 0, mounts: [] });
    await stopView(d);
    expectGone(d);
  });

  it('stopView leaves no mount, process or state, and is idempotent', async () => {
    const pids = supervisorPids(stateDir);
    expect(pids.length).toBeGreaterThanOrEqual(2); // keeper + worker
    await stopView(stateDir);
    expectGone(stateDir);
    await stopView(stateDir);
    expect(viewStatus(stateDir).mode).toBe('stopped');
  });
});

const ctrOk = ok && requireFixtures() && requireRuntime();

describeIf(ctrOk)('vkernel view in a real container', () => {
  it('nothing of the view is left after SIGKILL of the container and delete', async () => {
    const { id, m } = await makeCgroup(LIMITS);
    const stateDir = path.join(stateRoot, id);
    stateDirs.push(stateDir);
    const view = await startView({ id, stateDir, cgroup: m.describe(), policy: DEFAULT_POLICY });
    const b = await makeBundle({
      id,
      args: ['/bin/sh', '-c', 'while :; do cat /proc/meminfo > /dev/null; done'],
      mutate: (s) => {
        s.linux!.cgroupsPath = `/${id}`;
        s.linux!.resources = { ...s.linux!.resources, ...LIMITS };
        for (const x of view.mounts.filter((v) => !v.destination.startsWith('/proc/pressure/'))) {
          s.mounts!.push({ destination: x.destination, type: 'bind', source: x.source, options: ['bind', 'ro'] });
        }
      },
    });
    try {
      await runRuntimeOk(['create', '--bundle', b.dir, id]);
      await runRuntimeOk(['start', id]);
      const pid = JSON.parse((await runRuntimeOk(['state', id])).stdout).pid as number;
      await sleep(300); // the workload loops over the view
      process.kill(pid, 'SIGKILL');
      expect(await until(() => !fs.existsSync(`/proc/${pid}/stat`) || / Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')))).toBe(true);
      const del = await runRuntime(['delete', '--force', id]);
      expect(del.code).toBe(0);
      // The runtime removed the cgroup: the supervisor notices and unmounts by itself ...
      expect(await until(() => vkfsProcesses(stateDir).length === 0 && mountsBelow(stateDir).length === 0, 5000)).toBe(true);
    } finally {
      await b.cleanup();
      await stopView(stateDir); // ... and stopView (delete's job) removes the rest
    }
    expectGone(stateDir);
    await m.destroy();
  });

  it('the container reads its own machine from /proc and /sys; nothing is left after delete', async () => {
    const { id, m } = await makeCgroup(LIMITS);
    const stateDir = path.join(stateRoot, id);
    stateDirs.push(stateDir);
    const view = await startView({ id, stateDir, cgroup: m.describe(), policy: DEFAULT_POLICY });
    const script = [
      "echo mem=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)",
      'echo avail=$(free | awk \'/^Mem:/{print $7}\')',
      'echo online=$(cat /sys/devices/system/cpu/online) possible=$(cat /sys/devices/system/cpu/possible)',
      'echo cpus=$(ls /sys/devices/system/cpu | grep -c "^cpu[0-9]")',
      'echo processors=$(grep -c ^processor /proc/cpuinfo)',
      'echo statcpus=$(grep -c "^cpu[0-9]" /proc/stat)',
      'echo uptime=$(cut -d" " -f1 /proc/uptime)',
      'echo node=$(cat /sys/devices/system/node/node0/cpulist 2>/dev/null || echo none)',
    ].join('; ');
    const b = await makeBundle({
      id,
      args: ['/bin/sh', '-c', script],
      mutate: (s) => {
        s.linux!.cgroupsPath = `/${id}`;
        s.linux!.resources = { ...s.linux!.resources, ...LIMITS };
        // config.json only allows the LXCFS set of files inside /proc (runc's rule); the
        // runtime adds the plan mounts directly, /proc/pressure included.
        for (const x of view.mounts.filter((v) => !v.destination.startsWith('/proc/pressure/'))) {
          s.mounts!.push({ destination: x.destination, type: 'bind', source: x.source, options: ['bind', 'ro'] });
        }
      },
    });
    try {
      const r = await runBundle(b);
      if (r.code !== 0) throw new Error(`container failed (${r.code}): ${r.stderr}`);
      const kv = Object.fromEntries(r.stdout.trim().split('\n').flatMap((l) => l.split(' ').map((p) => p.split('='))));
      expect(kv.mem).toBe('262144');
      expect(Number(kv.avail)).toBeLessThanOrEqual(262144); // busybox free takes MemAvailable from /proc/meminfo
      expect(kv).toMatchObject({ online: '0', possible: '0', cpus: '1', processors: '1', statcpus: '1' });
      expect(Number(kv.uptime)).toBeLessThan(10);
      if (fs.existsSync('/sys/devices/system/node')) expect(kv.node).toBe('0');
    } finally {
      await b.cleanup();
      await stopView(stateDir);
    }
    expectGone(stateDir);
    await m.destroy();
  });
});
