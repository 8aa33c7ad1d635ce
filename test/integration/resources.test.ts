// linux.resources through the CLI with real containers: every field lands in the right
// cgroup file (and where it can be seen from inside, has its effect), OOM kills with
// `events`, fork bombs against pids.max, CFS throttling, `update`, `pause`/`resume`, and no
// cgroup left behind. Runs against the runtime under test (RUNTIME=vkernel by default;
// RUNTIME=runc checks the expectations themselves against runc 1.1.5).
//
// Host facts this suite adapts to (and asserts the runc-equivalent outcome for): cgroup v1
// hierarchies with or without hugetlb / net_cls / net_prio, the rootfs disk's IO scheduler
// (BFQ or not), whether the cpu controller has real-time group scheduling.
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createCgroupManager, type CgroupManager, type OomEvent, type OomEventOptions } from '../../runtime/cgroups/manager';
import type { CgroupStats } from '../../runtime/cgroups/stats';
import type { LinuxResources, Spec } from '../../runtime/spec/types';
import {
  cleanupRuntimeRoot,
  describeIf,
  hasCgroupV1,
  makeBundle,
  parseErrno,
  parseKeyValues,
  repoRoot,
  requireCgroupV1,
  requireFixtures,
  requireRoot,
  requireRuntime,
  runBundle,
  runRuntime,
  runRuntimeOk,
  runtimeName,
  spawnRuntime,
  vktest,
  withLeakCheck,
  type Bundle,
  type RunResult,
} from '../harness';

const ok =
  requireRoot() &&
  requireFixtures() &&
  requireRuntime() &&
  ['memory', 'cpu', 'cpuset', 'pids', 'blkio', 'devices', 'freezer'].every((c) => requireCgroupV1(c));
const isRunc = runtimeName() === 'runc';

const MiB = 1024 * 1024;
const CGROUP_ROOT = '/sys/fs/cgroup';
/** The payload on the host (for processes the tests put into cgroups themselves). */
const HOST_VKTEST = path.join(repoRoot(), 'build', 'vktest');

// ---------------------------------------------------------------------------------------
// Helpers: container state, the host's view of a container's cgroups.

/** Asserts the exit code; a mismatch shows the output (toMatchObject would hide it). */
function expectCode(r: RunResult, code: number): void {
  if (r.code !== code) throw new Error(`exit code ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Asserts a non-zero exit; success shows the output. */
function expectFailed(r: RunResult): void {
  if (r.code === 0) throw new Error(`exit code 0, expected a failure\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stateOf(id: string): Promise<{ status: string; pid: number }> {
  return JSON.parse((await runRuntimeOk(['state', id])).stdout);
}

/** Polls until fn() is truthy; returns its last value (falsy on timeout). */
async function until<T>(fn: () => T | Promise<T>, ms = 10_000, step = 25): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() >= end) return v;
    await sleep(step);
  }
}

async function waitStatus(id: string, status: string, ms = 10_000): Promise<void> {
  const got = await until(async () => {
    const r = await runRuntime(['state', id]);
    return r.code === 0 && JSON.parse(r.stdout).status === status;
  }, ms);
  if (!got) throw new Error(`container ${id} did not reach status ${status}`);
}

interface CgroupMount {
  mountpoint: string;
  fstype: string;
  superOptions: string[];
}

function cgroupMounts(): CgroupMount[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => {
      const [pre, post] = line.split(' - ');
      if (!pre || !post) return undefined;
      const [fstype, , superOpts] = post.split(' ');
      return { mountpoint: pre.split(' ')[4], fstype, superOptions: (superOpts ?? '').split(',') };
    })
    .filter((m): m is CgroupMount => !!m && (m.fstype === 'cgroup' || m.fstype === 'cgroup2'));
}

/**
 * The host directories of `pid`'s cgroups: controller name → dir ("memory", "cpu",
 * "name=systemd", …; "" for the cgroup2 tree), from /proc/<pid>/cgroup and our mountinfo.
 */
function cgroupDirsOf(pid: number): Map<string, string> {
  const mounts = cgroupMounts();
  const out = new Map<string, string>();
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[1] === '' ? [''] : m[1].split(',');
    const mount =
      m[1] === ''
        ? mounts.find((x) => x.fstype === 'cgroup2')
        : mounts.find((x) => x.fstype === 'cgroup' && x.superOptions.includes(controllers[0]));
    if (!mount) continue;
    for (const c of controllers) out.set(c, path.join(mount.mountpoint, m[2]));
  }
  return out;
}

function dirOf(dirs: Map<string, string>, controller: string): string {
  const d = dirs.get(controller);
  if (!d) throw new Error(`no ${controller || 'unified'} cgroup in ${JSON.stringify([...dirs])}`);
  return d;
}

function readCg(dirs: Map<string, string>, controller: string, file: string): string {
  return fs.readFileSync(path.join(dirOf(dirs, controller), file), 'utf8').trim();
}

/** Every directory in any cgroup hierarchy whose name contains `id` (deep walk). */
function cgroupDirsNamed(id: string, maxDepth = 8): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.includes(id)) found.push(p);
      else if (depth < maxDepth) walk(p, depth + 1);
    }
  };
  for (const m of cgroupMounts()) walk(m.mountpoint, 1);
  return found;
}

/** No cgroup of the container is left: neither the dirs it had nor any dir named after it. */
function expectNoCgroups(id: string, dirs?: Map<string, string>): void {
  const left = [...new Set(dirs?.values() ?? [])].filter((d) => fs.existsSync(d));
  expect(left).toEqual([]);
  expect(cgroupDirsNamed(id)).toEqual([]);
}

/** utime+stime of a process, in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** "maj:min" of the whole disk holding `p` (partitions resolved to their disk), if any. */
function blockDeviceOf(p: string): { major: number; minor: number } | undefined {
  const real = fs.realpathSync(p);
  let best: { mp: string; majmin: string } | undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = mp === '/' || real === mp || real.startsWith(mp + '/');
    if (inside && (!best || mp.length >= best.mp.length)) best = { mp, majmin: f[2] };
  }
  if (!best) return undefined;
  let sys: string;
  try {
    sys = fs.realpathSync(`/sys/dev/block/${best.majmin}`);
  } catch {
    return undefined; // not a block device (tmpfs, overlay, …)
  }
  if (fs.existsSync(path.join(sys, 'partition'))) sys = path.dirname(sys);
  const [major, minor] = fs.readFileSync(path.join(sys, 'dev'), 'utf8').trim().split(':').map(Number);
  return { major, minor };
}

function schedulerOf(dev: { major: number; minor: number }): string {
  try {
    const text = fs.readFileSync(`/sys/dev/block/${dev.major}:${dev.minor}/queue/scheduler`, 'utf8');
    return /\[(\S+)\]/.exec(text)?.[1] ?? text.trim();
  } catch {
    return 'none';
  }
}

/** Controllers the cgroup2 tree offers (hybrid hosts: e.g. hugetlb). */
function unifiedControllers(): string[] {
  const m = cgroupMounts().find((x) => x.fstype === 'cgroup2');
  if (!m) return [];
  try {
    return fs.readFileSync(path.join(m.mountpoint, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  } catch {
    return [];
  }
}

function withResources(r: LinuxResources): (s: Spec) => void {
  return (s) => {
    s.linux!.resources = { ...s.linux!.resources, ...r };
  };
}

function addCaps(s: Spec, ...caps: string[]): void {
  const c = s.process!.capabilities!;
  for (const k of ['bounding', 'effective', 'permitted', 'ambient'] as const) c[k] = [...(c[k] ?? []), ...caps];
}

/** `run --detach` of a sleeping payload; returns the init pid and its cgroup dirs. */
async function runDetached(b: Bundle): Promise<{ pid: number; dirs: Map<string, string> }> {
  await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
  const { pid } = await stateOf(b.id);
  return { pid, dirs: cgroupDirsOf(pid) };
}

/**
 * Iterates m.oomEvents(opts) into onEvent. `watching` resolves once the watcher has read its
 * baseline counters (every OOM after is reported) and fails if the stream ends first;
 * `ended` resolves when the stream ends.
 */
function watchOom(m: CgroupManager, opts: OomEventOptions, onEvent: (ev: OomEvent) => void): { watching: Promise<void>; ended: Promise<void> } {
  let onWatching!: () => void;
  const setUp = new Promise<void>((r) => (onWatching = r));
  const ended = (async () => {
    for await (const ev of m.oomEvents({ ...opts, onWatching })) onEvent(ev);
  })();
  const endedFirst = ended.then(() => Promise.reject(new Error('the OOM stream ended before it watched')));
  return { watching: Promise.race([setUp, endedFirst]), ended };
}

/** Lines from a streaming `events` process, with a way to wait for one and to stop it. */
class EventsWatcher {
  readonly lines: string[] = [];
  private readonly child: ChildProcess;
  private buf = '';
  readonly exited: Promise<void>;
  stderr = '';

  constructor(id: string, interval = '100ms') {
    this.child = spawnRuntime(['events', '--interval', interval, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      const parts = this.buf.split('\n');
      this.buf = parts.pop()!;
      this.lines.push(...parts.filter((l) => l.trim() !== ''));
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((r) => this.child.once('close', () => r()));
  }

  events(): { type: string; id: string; data?: unknown }[] {
    return this.lines.flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
  }

  async waitFor(type: string, ms = 10_000): Promise<boolean> {
    return !!(await until(() => this.events().some((e) => e.type === type), ms));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    await this.exited;
  }
}

/**
 * A stats event (`events --stats`, or a line of `events --interval`) in runc's shape, with
 * numbers a live container can have: CPU time used, memory in use under its limit, at least
 * its init among the tasks. runc leaves zero values out (omitempty): only non-zero ones here.
 */
function expectPlausibleStats(ev: unknown, id: string, limits: { memory: number; pids: number }): void {
  expect(ev).toMatchObject({ type: 'stats', id, data: { memory: { usage: { limit: limits.memory } }, pids: { limit: limits.pids } } });
  const d = (ev as { data: CgroupStats }).data;
  expect(d.cpu.usage.total).toBeGreaterThan(0);
  expect(d.cpu.usage.percpu.length).toBeGreaterThan(0);
  expect(d.memory.usage.usage).toBeGreaterThan(0);
  expect(d.memory.usage.usage).toBeLessThanOrEqual(limits.memory);
  expect(d.memory.usage.max).toBeGreaterThanOrEqual(d.memory.usage.usage);
  expect(d.pids.current).toBeGreaterThanOrEqual(1);
  expect(d.pids.current).toBeLessThanOrEqual(limits.pids);
}

// ---------------------------------------------------------------------------------------
// 1. Every linux.resources field lands in the right cgroup file.

/** A file name, or how to pick it in the container's cgroup dir of that controller. */
type FileName = string | ((dir: string) => string);
type Expect = { files: [controller: string, file: FileName, want: string | RegExp][] } | { error: RegExp };

/** CFQ's blkio.weight[_device], or BFQ's blkio.bfq.weight[_device] (runc picks the same way). */
const blkioWeightFile =
  (device: boolean): FileName =>
  (dir) => {
    const cfq = fs.existsSync(path.join(dir, 'blkio.weight'));
    return `blkio.${cfq ? '' : 'bfq.'}weight${device ? '_device' : ''}`;
  };

interface FieldCase {
  name: string;
  resources: LinuxResources;
  vkernel: Expect;
  /** Defaults to the vkernel expectation. */
  runc?: Expect;
  /** Extra check from inside the running container. */
  effect?: (b: Bundle) => Promise<void>;
}

function fieldCases(): FieldCase[] {
  const disk = blockDeviceOf(os.tmpdir());
  const cases: FieldCase[] = [
    {
      name: 'memory.limit',
      resources: { memory: { limit: 64 * MiB } },
      vkernel: { files: [['memory', 'memory.limit_in_bytes', String(64 * MiB)]] },
    },
    {
      name: 'memory.reservation',
      resources: { memory: { reservation: 32 * MiB } },
      vkernel: { files: [['memory', 'memory.soft_limit_in_bytes', String(32 * MiB)]] },
    },
    {
      name: 'memory.swap (memory+swap, memsw)',
      resources: { memory: { limit: 64 * MiB, swap: 128 * MiB } },
      vkernel: {
        files: [
          ['memory', 'memory.limit_in_bytes', String(64 * MiB)],
          ['memory', 'memory.memsw.limit_in_bytes', String(128 * MiB)],
        ],
      },
    },
    {
      name: 'memory.swappiness',
      resources: { memory: { swappiness: 10 } },
      vkernel: { files: [['memory', 'memory.swappiness', '10']] },
    },
    {
      name: 'memory.disableOOMKiller',
      resources: { memory: { limit: 64 * MiB, disableOOMKiller: true } },
      vkernel: { files: [['memory', 'memory.oom_control', /^oom_kill_disable 1$/m]] },
    },
    {
      name: 'cpu.shares',
      resources: { cpu: { shares: 512 } },
      vkernel: { files: [['cpu', 'cpu.shares', '512']] },
    },
    {
      name: 'cpu.quota and cpu.period',
      resources: { cpu: { quota: 50_000, period: 200_000 } },
      vkernel: {
        files: [
          ['cpu', 'cpu.cfs_quota_us', '50000'],
          ['cpu', 'cpu.cfs_period_us', '200000'],
        ],
      },
    },
    {
      // runc 1.1 does not know cpu.burst (runtime-spec 1.1): the file keeps its default.
      name: 'cpu.burst',
      resources: { cpu: { quota: 50_000, period: 100_000, burst: 20_000 } },
      vkernel: { files: [['cpu', 'cpu.cfs_burst_us', '20000']] },
      runc: { files: [['cpu', 'cpu.cfs_burst_us', '0']] },
    },
    {
      name: 'cpu.cpus',
      resources: { cpu: { cpus: '1' } },
      vkernel: { files: [['cpuset', 'cpuset.cpus', '1']] },
      effect: async (b) => {
        expect((await runRuntimeOk(['exec', b.id, ...vktest('nproc')])).stdout.trim()).toBe('1');
      },
    },
    {
      name: 'cpu.mems',
      resources: { cpu: { mems: '0' } },
      vkernel: { files: [['cpuset', 'cpuset.mems', '0']] },
    },
    {
      name: 'pids.limit',
      resources: { pids: { limit: 42 } },
      vkernel: { files: [['pids', 'pids.max', '42']] },
    },
    {
      name: 'pids.limit -1 (unlimited)',
      resources: { pids: { limit: -1 } },
      vkernel: { files: [['pids', 'pids.max', 'max']] },
    },
    {
      name: 'devices (allow rule, whitelist mode)',
      resources: { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'rw' }] },
      vkernel: {
        files: [
          ['devices', 'devices.list', /^c 1:11 rw$/m],
          ['devices', 'devices.list', /^c 1:3 rwm$/m],
        ],
      },
    },
    {
      name: 'unified on a v1 host',
      resources: { unified: { 'memory.max': String(64 * MiB) } },
      vkernel: { error: /linux\.resources\.unified.*cgroup v1/ },
      runc: { error: /cannot use unified on cgroup v1/ },
    },
  ];

  // Real-time group scheduling exists only with CONFIG_RT_GROUP_SCHED.
  if (fs.existsSync(path.join(CGROUP_ROOT, 'cpu', 'cpu.rt_runtime_us'))) {
    cases.push({
      name: 'cpu.realtimePeriod and cpu.realtimeRuntime',
      resources: { cpu: { realtimePeriod: 1_000_000, realtimeRuntime: 10_000 } },
      vkernel: {
        files: [
          ['cpu', 'cpu.rt_period_us', '1000000'],
          ['cpu', 'cpu.rt_runtime_us', '10000'],
        ],
      },
    });
  } else {
    cases.push({
      name: 'cpu.realtimeRuntime without RT group scheduling',
      resources: { cpu: { realtimePeriod: 1_000_000, realtimeRuntime: 10_000 } },
      vkernel: { error: /linux\.resources\.cpu\.realtimePeriod.*cpu\.rt_period_us/ },
      runc: { error: /cpu\.rt_period_us/ },
    });
  }

  // cpu.idle in v1 since Linux 5.15 (without it: a warning, nothing to read back).
  if (fs.existsSync(path.join(CGROUP_ROOT, 'cpu', 'cpu.idle'))) {
    cases.push({
      // runc 1.1 writes cpu.idle only on cgroup v2: the file keeps its default.
      name: 'cpu.idle',
      resources: { cpu: { idle: 1 } },
      vkernel: { files: [['cpu', 'cpu.idle', '1']] },
      runc: { files: [['cpu', 'cpu.idle', '0']] },
    });
  }

  cases.push({
    name: 'blockIO.weight',
    resources: { blockIO: { weight: 500 } },
    vkernel: { files: [['blkio', blkioWeightFile(false), /^(default )?500$/m]] },
  });

  if (disk) {
    const dev = `${disk.major}:${disk.minor}`;
    const bfq = schedulerOf(disk) === 'bfq';
    cases.push({
      name: `blockIO.weightDevice on the rootfs disk ${dev} (scheduler ${schedulerOf(disk)})`,
      resources: { blockIO: { weightDevice: [{ major: disk.major, minor: disk.minor, weight: 300 }] } },
      // Without BFQ on the device the kernel refuses per-device weights: runc fails the same way.
      vkernel: bfq
        ? { files: [['blkio', blkioWeightFile(true), new RegExp(`^${dev} 300$`, 'm')]] }
        : { error: /linux\.resources\.blockIO\.weightDevice\[0\]\.weight:.*weight_device: operation not supported/ },
      runc: bfq ? undefined : { error: /weight_device: operation not supported/ },
    });
    cases.push({
      name: `blockIO throttles on the rootfs disk ${dev}`,
      resources: {
        blockIO: {
          throttleReadBpsDevice: [{ major: disk.major, minor: disk.minor, rate: MiB }],
          throttleWriteBpsDevice: [{ major: disk.major, minor: disk.minor, rate: 2 * MiB }],
          throttleReadIOPSDevice: [{ major: disk.major, minor: disk.minor, rate: 100 }],
          throttleWriteIOPSDevice: [{ major: disk.major, minor: disk.minor, rate: 200 }],
        },
      },
      vkernel: {
        files: [
          ['blkio', 'blkio.throttle.read_bps_device', `${dev} ${MiB}`],
          ['blkio', 'blkio.throttle.write_bps_device', `${dev} ${2 * MiB}`],
          ['blkio', 'blkio.throttle.read_iops_device', `${dev} 100`],
          ['blkio', 'blkio.throttle.write_iops_device', `${dev} 200`],
        ],
      },
    });
  }

  // hugetlb: a v1 controller, or (hybrid hosts) the cgroup2 tree, where runc 1.1 fails.
  if (fs.existsSync('/sys/kernel/mm/hugepages/hugepages-2048kB')) {
    const limit = 4 * 2 * MiB;
    if (hasCgroupV1('hugetlb')) {
      cases.push({
        name: 'hugepageLimits (v1 hugetlb)',
        resources: { hugepageLimits: [{ pageSize: '2MB', limit }] },
        vkernel: { files: [['hugetlb', 'hugetlb.2MB.limit_in_bytes', String(limit)]] },
      });
    } else if (unifiedControllers().includes('hugetlb')) {
      cases.push({
        name: 'hugepageLimits (hugetlb in the cgroup2 tree of a hybrid host)',
        resources: { hugepageLimits: [{ pageSize: '2MB', limit }] },
        vkernel: { files: [['', 'hugetlb.2MB.max', String(limit)]] },
        runc: { error: /cannot set hugetlb limit: container could not join or create cgroup/ },
      });
    } else {
      cases.push({
        name: 'hugepageLimits without a hugetlb controller',
        resources: { hugepageLimits: [{ pageSize: '2MB', limit }] },
        vkernel: { error: /linux\.resources\.hugepageLimits.*hugetlb/ },
        runc: { error: /cannot set hugetlb limit/ },
      });
    }
  }

  // network: net_cls / net_prio (v1 only).
  cases.push(
    hasCgroupV1('net_cls')
      ? {
          name: 'network.classID',
          resources: { network: { classID: 0x100001 } },
          vkernel: { files: [['net_cls', 'net_cls.classid', String(0x100001)]] },
        }
      : {
          name: 'network.classID without net_cls',
          resources: { network: { classID: 0x100001 } },
          vkernel: { error: /^[^\n]*linux\.resources\.network\.classID: cannot set net_cls limit/ },
          runc: { error: /cannot set net_cls limit/ },
        },
  );
  cases.push(
    hasCgroupV1('net_prio')
      ? {
          name: 'network.priorities',
          resources: { network: { priorities: [{ name: 'lo', priority: 5 }] } },
          vkernel: { files: [['net_prio', 'net_prio.ifpriomap', /^lo 5$/m]] },
        }
      : {
          name: 'network.priorities without net_prio',
          resources: { network: { priorities: [{ name: 'lo', priority: 5 }] } },
          vkernel: { error: /linux\.resources\.network\.priorities: cannot set net_prio limit/ },
          runc: { error: /cannot set net_prio limit/ },
        },
  );
  // rdma: with a controller, rdma.max takes only devices the host has (none here to name).
  if (!hasCgroupV1('rdma')) {
    cases.push({
      name: 'rdma without an rdma controller',
      resources: { rdma: { mlx5_0: { hcaHandles: 2, hcaObjects: 100 } } },
      vkernel: { error: /^[^\n]*linux\.resources\.rdma: cannot set rdma limit/ },
      runc: { error: /cannot set rdma limit/ },
    });
  }
  return cases;
}

describeIf(ok)(`resources (${runtimeName()})`, () => {
  afterAll(() => cleanupRuntimeRoot());

  describe('every linux.resources field lands in its cgroup file', () => {
    // (Only collected when the guards passed: it.each refuses an empty table.)
    const cases = ok ? fieldCases() : [];
    if (cases.length > 0) {
      it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) =>
        withLeakCheck(async () => {
          const want = (isRunc ? c.runc : undefined) ?? c.vkernel;
          const b = await makeBundle({ args: vktest('sleep', 60), mutate: withResources(c.resources) });
          if ('error' in want) {
            const r = await runRuntime(['run', '--detach', '--bundle', b.dir, b.id]);
            expectFailed(r);
            expect(r.stderr).toMatch(want.error);
            expect((await runRuntime(['state', b.id])).stderr).toMatch(/container does not exist/);
            expectNoCgroups(b.id);
            return;
          }
          const { dirs } = await runDetached(b);
          for (const [ctrl, fileName, expected] of want.files) {
            const file = typeof fileName === 'string' ? fileName : fileName(dirOf(dirs, ctrl));
            const got = readCg(dirs, ctrl, file);
            // The file name goes into the compared value so a failure says which file.
            if (typeof expected === 'string') expect(`${file}: ${got}`).toBe(`${file}: ${expected}`);
            else expect({ file, got }).toEqual({ file, got: expect.stringMatching(expected) });
          }
          await c.effect?.(b);
          await runRuntimeOk(['delete', '--force', b.id]);
          expectNoCgroups(b.id, dirs);
        }),
      );
    }
  });

  // -------------------------------------------------------------------------------------
  // Devices: the effect of the rules, from inside.

  describe('devices', () => {
    const kmsgProbe = async (b: Bundle): Promise<{ kmsg: number; nul: number }> => {
      await runRuntimeOk(['exec', b.id, '/bin/mknod', '/tmp/kmsg', 'c', '1', '11']);
      await runRuntimeOk(['exec', b.id, ...vktest('mknod', '/tmp/null')]);
      const kmsg = parseErrno((await runRuntimeOk(['exec', b.id, ...vktest('tryopen', '/tmp/kmsg', 'w')])).stdout).errno;
      const nul = parseErrno((await runRuntimeOk(['exec', b.id, ...vktest('tryopen', '/tmp/null', 'rw')])).stdout).errno;
      return { kmsg, nul };
    };
    const EPERM = 1;

    it('deny-all plus the defaults: mknod works, opening a device outside the list fails EPERM', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('sleep', 60), mutate: (s) => addCaps(s, 'CAP_MKNOD') });
        const { dirs } = await runDetached(b);
        expect(readCg(dirs, 'devices', 'devices.list')).not.toMatch(/^c 1:11 /m);
        expect(await kmsgProbe(b)).toEqual({ kmsg: EPERM, nul: 0 });
        await runRuntimeOk(['delete', '--force', b.id]);
      }));

    it('an allow rule opens the device', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({
          args: vktest('sleep', 60),
          mutate: (s) => {
            addCaps(s, 'CAP_MKNOD');
            s.linux!.resources!.devices!.push({ allow: true, type: 'c', major: 1, minor: 11, access: 'rw' });
          },
        });
        await runDetached(b);
        expect(await kmsgProbe(b)).toEqual({ kmsg: 0, nul: 0 });
        await runRuntimeOk(['delete', '--force', b.id]);
      }));

    it('allow-all then a deny rule closes just that device', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({
          args: vktest('sleep', 60),
          mutate: (s) => {
            addCaps(s, 'CAP_MKNOD');
            s.linux!.resources!.devices = [
              { allow: true, access: 'rwm' },
              { allow: false, type: 'c', major: 1, minor: 11, access: 'rw' },
            ];
          },
        });
        await runDetached(b);
        expect(await kmsgProbe(b)).toEqual({ kmsg: EPERM, nul: 0 });
        await runRuntimeOk(['delete', '--force', b.id]);
      }));
  });

  // -------------------------------------------------------------------------------------
  // 2. Effects: OOM kill + events, fork bomb, CFS throttling.

  describe('effects', () => {
    const oomResources: LinuxResources = { memory: { limit: 32 * MiB, swap: 32 * MiB } };
    // The hog waits for /tmp/go, which the test creates once `events` is watching.
    const gatedHog = ['/bin/sh', '-c', 'while [ ! -e /tmp/go ]; do /vktest sleep 0.05; done; exec /vktest memhog 64'];

    it('a memory hog over a 32 MiB limit is OOM-killed (137) and `events` reports the OOM; no cgroup is left', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: gatedHog, mutate: withResources({ ...oomResources, pids: { limit: 20 } }) });
        const run = runBundle(b);
        await until(async () => (await runRuntime(['state', b.id])).code === 0);
        const { pid } = await stateOf(b.id);
        const dirs = cgroupDirsOf(pid);
        expect(readCg(dirs, 'memory', 'memory.limit_in_bytes')).toBe(String(32 * MiB));
        const events = new EventsWatcher(b.id);
        try {
          // Watching once the first stats line is out; a stats line every 100 ms after it.
          expect(await events.waitFor('stats')).toBe(true);
          const stats = () => events.events().filter((e) => e.type === 'stats');
          expect(await until(() => stats().length >= 2)).toBe(true);
          for (const ev of stats().slice(0, 2)) expectPlausibleStats(ev, b.id, { memory: 32 * MiB, pids: 20 });
          const [first, second] = stats().map((e) => (e.data as CgroupStats).cpu.usage.total);
          expect(second).toBeGreaterThanOrEqual(first);
          fs.writeFileSync(path.join(b.rootfs, 'tmp', 'go'), '');
          const r = await run;
          expectCode(r, 137);
          expect(r.stdout).not.toMatch(/allocated_mib=64/);
          expect(await events.waitFor('oom', 5000)).toBe(true);
          expect(events.events().find((e) => e.type === 'oom')).toEqual({ type: 'oom', id: b.id });
        } finally {
          await events.stop();
        }
        // `run` deletes the container: nothing of its cgroups may remain after the OOM kill.
        expectNoCgroups(b.id, dirs);
      }));

    it('an OOM-killed detached container: stopped, memory.oom_control counts the kill, delete leaves no cgroup', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('memhog', 64), mutate: withResources(oomResources) });
        await runRuntimeOk(['create', '--bundle', b.dir, b.id]);
        const { pid } = await stateOf(b.id);
        const dirs = cgroupDirsOf(pid);
        await runRuntimeOk(['start', b.id]);
        await waitStatus(b.id, 'stopped');
        expect(readCg(dirs, 'memory', 'memory.oom_control')).toMatch(/^oom_kill [1-9]/m);
        await runRuntimeOk(['delete', b.id]);
        expectNoCgroups(b.id, dirs);
      }));

    it('with disableOOMKiller the hog is not killed but stalls under_oom; events reports it; delete --force cleans up', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({
          args: gatedHog,
          mutate: withResources({ memory: { ...oomResources.memory, disableOOMKiller: true } }),
        });
        const { pid, dirs } = await runDetached(b);
        const events = new EventsWatcher(b.id);
        try {
          expect(await events.waitFor('stats')).toBe(true);
          fs.writeFileSync(path.join(b.rootfs, 'tmp', 'go'), '');
          expect(await until(() => /^under_oom 1$/m.test(readCg(dirs, 'memory', 'memory.oom_control')))).toBe(true);
          expect(readCg(dirs, 'memory', 'memory.oom_control')).toMatch(/^oom_kill 0$/m);
          expect(await events.waitFor('oom', 5000)).toBe(true);
          expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
          expect((await stateOf(b.id)).status).toBe('running');
        } finally {
          await events.stop();
        }
        await runRuntimeOk(['delete', '--force', b.id]);
        expectNoCgroups(b.id, dirs);
      }));

    it('OOM notifications are event-driven (eventfd on memory.oom_control): every kill is reported at once, not by polling', async () => {
      // The runtime library's watcher, as `events` and the shim use it, with a poll interval
      // far longer than the test: only the kernel's notification can deliver in time.
      const id = `vkt-oom-${process.pid}-${Date.now().toString(36)}`;
      const m = createCgroupManager({ id, cgroupsPath: `/${id}`, warn: () => undefined });
      await m.create({ memory: { limit: 32 * MiB, swap: 32 * MiB } });
      const ac = new AbortController();
      const seen: { kind: string; count: number; at: number }[] = [];
      const { watching, ended } = watchOom(m, { intervalMs: 600_000, signal: ac.signal }, (ev) => seen.push({ ...ev, at: Date.now() }));
      /** Runs a 64 MiB hog in the cgroup; resolves with its exit signal and the time it was released. */
      const hog = async (): Promise<{ signal: string | null; released: number }> => {
        const child = spawn('/bin/sh', ['-c', `read go; exec ${HOST_VKTEST} memhog 64`], { stdio: ['pipe', 'ignore', 'ignore'] });
        await m.addProcess(child.pid!);
        const released = Date.now();
        child.stdin!.end('go\n');
        const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
        return { signal, released };
      };
      try {
        // The first kill must come after the watcher's baseline read, or that read counts it.
        await watching;
        const first = await hog();
        expect(first.signal).toBe('SIGKILL');
        // Within seconds, where polling would take 10 minutes: the bound leaves a slow host room.
        expect(await until(() => seen.length >= 1, 10_000)).toBe(true);
        const second = await hog();
        expect(second.signal).toBe('SIGKILL');
        expect(await until(() => seen.length >= 2, 10_000)).toBe(true);
        expect(seen.map((e) => `${e.kind}:${e.count}`)).toEqual(['oom_kill:1', 'oom_kill:2']);
        expect(seen[0].at - first.released).toBeLessThan(10_000);
        expect(seen[1].at - second.released).toBeLessThan(10_000);
        expect(await m.oomKillCount()).toBe(2);
      } finally {
        ac.abort();
        await ended;
        await m.destroy();
      }
      expect(await m.exists()).toBe(false);
    });

    it('the OOM watcher ends by itself when the cgroup is removed (the eventfd fires on removal)', async () => {
      const id = `vkt-oomrm-${process.pid}-${Date.now().toString(36)}`;
      const m = createCgroupManager({ id, cgroupsPath: `/${id}`, warn: () => undefined });
      await m.create({ memory: { limit: 32 * MiB } });
      const events: string[] = [];
      const { watching, ended } = watchOom(m, { intervalMs: 600_000 }, (ev) => events.push(ev.kind));
      // Removed only once watched, so it is the eventfd that ends the stream, not a first read.
      await watching;
      await m.destroy();
      // After the removal's notification the stream waits up to REMOVAL_NOTICE_WAIT_MS (1 s)
      // for another (see oom.ts); well beyond that, it is still watching.
      expect(await Promise.race([ended.then(() => 'ended'), sleep(10_000).then(() => 'still watching')])).toBe('ended');
      expect(events).toEqual([]);
    });

    const hugeDir = '/sys/kernel/mm/hugepages/hugepages-2048kB';
    // runc 1.1 cannot set hugetlb in a hybrid host's cgroup2 tree: under runc, v1 hugetlb only.
    const hugetlb = fs.existsSync(hugeDir) && (hasCgroupV1('hugetlb') || (!isRunc && unifiedControllers().includes('hugetlb')));
    (hugetlb ? it : it.skip)('hugepageLimits 2MB = 2 MiB: the first huge page is served, the second ends the workload with SIGBUS', () =>
      withLeakCheck(async () => {
        // The host's pool of 2 MiB pages needs room for the test; restored afterwards.
        const pool = path.join(hugeDir, 'nr_hugepages');
        const had = Number(fs.readFileSync(pool, 'utf8'));
        if (had < 4) fs.writeFileSync(pool, '4');
        try {
          expect(Number(fs.readFileSync(path.join(hugeDir, 'free_hugepages'), 'utf8'))).toBeGreaterThanOrEqual(2);
          const limited = await makeBundle({ args: vktest('hugetlb', 2), mutate: withResources({ hugepageLimits: [{ pageSize: '2MB', limit: 2 * MiB }] }) });
          const r = await runBundle(limited);
          expectCode(r, 128 + 7); // SIGBUS
          expect(parseKeyValues(r.stdout).touched).toBe('1');
          // Without the limit, the same two pages are served.
          const free = await makeBundle({ args: vktest('hugetlb', 2) });
          const ok = await runBundle(free);
          expectCode(ok, 0);
          expect(parseKeyValues(ok.stdout).touched).toBe('2');
        } finally {
          if (had < 4) fs.writeFileSync(pool, String(had));
        }
      }));

    const disk = blockDeviceOf(os.tmpdir());
    (disk ? it : it.skip)('blockIO read_bps 1 MiB/s on the rootfs disk: a 4 MiB O_DIRECT read takes seconds (unthrottled: far less)', () =>
      withLeakCheck(async () => {
        const { major, minor } = disk!;
        const readBack = async (throttle: boolean): Promise<number> => {
          const b = await makeBundle({
            // Written through the page cache (not throttled here), then read back past it.
            args: ['/bin/sh', '-c', 'busybox dd if=/dev/zero of=/f bs=1048576 count=4 2>/dev/null && sync && exec /vktest readdirect /f'],
            mutate: (s) => {
              s.root!.readonly = false;
              if (throttle) withResources({ blockIO: { throttleReadBpsDevice: [{ major, minor, rate: MiB }] } })(s);
            },
          });
          const r = await runBundle(b);
          expectCode(r, 0);
          const kv = parseKeyValues(r.stdout);
          expect(Number(kv.bytes)).toBe(4 * MiB);
          return Number(kv.ms);
        };
        const throttled = await readBack(true);
        // 4 MiB at 1 MiB/s: about 4 s (blk-throttle lets a first slice through at once).
        // Only the lower bound is the limit at work; a loaded host can only add to it.
        expect(throttled).toBeGreaterThan(2000);
        expect(await readBack(false)).toBeLessThan(throttled / 2);
      }));

    it('cpu.shares 1024 vs 256 on one CPU: two spinners share it about 4:1', () =>
      withLeakCheck(async () => {
        // Both spin only once both containers run: started apart (each `run` is a CLI start
        // and a create), each would have the CPU alone for that long, and a second of it
        // already takes the ratio under 2. The spinner is a child of the waiting shell, so
        // its CPU time is its own.
        const gatedSpin = ['/bin/sh', '-c', 'while [ ! -e /tmp/go ]; do /vktest sleep 0.05; done; /vktest spin 3'];
        const spinner = (shares: number) => makeBundle({ args: gatedSpin, mutate: withResources({ cpu: { shares, cpus: '0' } }) });
        const [big, small] = await Promise.all([spinner(1024), spinner(256)]);
        const runs = [runBundle(big), runBundle(small)];
        const bothRunning = (async () => {
          for (const b of [big, small]) await waitStatus(b.id, 'running', 30_000);
        })();
        await bothRunning.catch(() => undefined);
        // Released together (or, if one never ran, so that the other ends too).
        for (const b of [big, small]) fs.writeFileSync(path.join(b.rootfs, 'tmp', 'go'), '');
        const [rb, rs] = await Promise.all(runs);
        await bothRunning; // a container that never ran fails here, once both runs are over
        expectCode(rb, 0);
        expectCode(rs, 0);
        const ratio = Number(parseKeyValues(rb.stdout).cpu_ms) / Number(parseKeyValues(rs.stdout).cpu_ms);
        // 4 nominal; the two polls of /tmp/go can start them up to 50 ms apart.
        expect(ratio).toBeGreaterThan(2);
      }));

    const rtGroups = fs.existsSync(path.join(CGROUP_ROOT, 'cpu', 'cpu.rt_runtime_us'));
    (rtGroups ? it : it.skip)('cpu.realtimeRuntime: SCHED_FIFO is refused in a cgroup without real-time runtime, allowed with it', () =>
      withLeakCheck(async () => {
        const fifo = async (resources: LinuxResources): Promise<string> => {
          const mutate = (s: Spec): void => {
            withResources(resources)(s);
            // The right to ask for SCHED_FIFO at all; the cgroup then decides.
            const caps = s.process!.capabilities!;
            for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = [...(caps[set] ?? []), 'CAP_SYS_NICE'];
          };
          const r = await runBundle(await makeBundle({ args: vktest('rtfifo'), mutate }));
          expectCode(r, 0);
          return parseKeyValues(r.stdout).fifo;
        };
        expect(await fifo({})).toBe('EPERM'); // a new cgroup gets no real-time runtime
        expect(await fifo({ cpu: { realtimePeriod: 1_000_000, realtimeRuntime: 10_000 } })).toBe('ok');
      }));

    it('a fork bomb stops at pids.max', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('forkbomb', 50), mutate: withResources({ pids: { limit: 10 } }) });
        const r = await runBundle(b);
        expectCode(r, 0);
        const kv = parseKeyValues(r.stdout);
        // The payload itself is one of the 10 tasks.
        expect(Number(kv.forked)).toBeGreaterThan(0);
        expect(Number(kv.forked)).toBeLessThanOrEqual(9);
        expect(kv.errname).toBe('EAGAIN');
      }));

    it('cpu quota 20000/100000: the spinner is throttled (cpu.stat) and gets about 20% of wall time', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('sleep', 60), mutate: withResources({ cpu: { quota: 20_000, period: 100_000 } }) });
        const { dirs } = await runDetached(b);
        const before = parseKeyValues(readCg(dirs, 'cpu', 'cpu.stat').replace(/ /g, '='));
        const spin = parseKeyValues((await runRuntimeOk(['exec', b.id, ...vktest('spin', 1)])).stdout);
        const after = parseKeyValues(readCg(dirs, 'cpu', 'cpu.stat').replace(/ /g, '='));
        expect(Number(after.nr_throttled)).toBeGreaterThan(Number(before.nr_throttled ?? 0));
        expect(Number(after.throttled_time)).toBeGreaterThan(Number(before.throttled_time ?? 0));
        const ratio = Number(spin.cpu_ms) / Number(spin.wall_ms);
        // 20% nominal. Only the upper bound is the limit at work; below it, a loaded host
        // (other jobs on 2 CPUs) can starve the spinner to a few percent.
        expect(ratio).toBeGreaterThan(0);
        expect(ratio).toBeLessThan(0.3);
        await runRuntimeOk(['delete', '--force', b.id]);
      }));
  });

  // -------------------------------------------------------------------------------------
  // 3. update, pause, resume.

  describe('update', () => {
    const forks = async (id: string, n: number): Promise<number> =>
      Number(parseKeyValues((await runRuntimeOk(['exec', id, ...vktest('forkbomb', n)])).stdout).forked);

    it('flags change memory, cpu and pids limits of a running container, with effect', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('sleep', 60), mutate: withResources({ pids: { limit: 5 } }) });
        const { dirs } = await runDetached(b);
        // init + the exec'd payload are 2 of the 5 tasks.
        expect(await forks(b.id, 20)).toBe(3);
        await runRuntimeOk([
          'update',
          '--memory', '64m',
          '--memory-swap', '128m',
          '--memory-reservation', '32m',
          '--cpu-quota', '30000',
          '--cpu-period', '100000',
          '--cpu-share', '256',
          '--pids-limit', '30',
          b.id,
        ]);
        expect(readCg(dirs, 'memory', 'memory.limit_in_bytes')).toBe(String(64 * MiB));
        expect(readCg(dirs, 'memory', 'memory.memsw.limit_in_bytes')).toBe(String(128 * MiB));
        expect(readCg(dirs, 'memory', 'memory.soft_limit_in_bytes')).toBe(String(32 * MiB));
        expect(readCg(dirs, 'cpu', 'cpu.cfs_quota_us')).toBe('30000');
        expect(readCg(dirs, 'cpu', 'cpu.cfs_period_us')).toBe('100000');
        expect(readCg(dirs, 'cpu', 'cpu.shares')).toBe('256');
        expect(readCg(dirs, 'pids', 'pids.max')).toBe('30');
        // Raised pids limit: now all forks succeed.
        expect(await forks(b.id, 20)).toBe(20);

        // Memory by effect: a 64 MiB hog under 32 MiB is OOM-killed; after raising it fits.
        await runRuntimeOk(['update', '--memory', '32m', '--memory-swap', '32m', b.id]);
        expect(readCg(dirs, 'memory', 'memory.limit_in_bytes')).toBe(String(32 * MiB));
        expect((await runRuntime(['exec', b.id, ...vktest('memhog', 48)])).code).toBe(137);
        await runRuntimeOk(['update', '--memory-swap', '256m', '--memory', '256m', b.id]);
        const hog = await runRuntime(['exec', b.id, ...vktest('memhog', 48)]);
        expect(hog.stdout).toMatch(/^allocated_mib=48$/m);
        expectCode(hog, 0);
        expect(await stateOf(b.id)).toMatchObject({ status: 'running' });
        await runRuntimeOk(['delete', '--force', b.id]);
        expectNoCgroups(b.id, dirs);
      }));

    it('--resources FILE and --resources - (stdin) replace limits', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('sleep', 60), mutate: withResources({ pids: { limit: 5 } }) });
        const { dirs } = await runDetached(b);
        const file = path.join(b.dir, 'resources.json');
        fs.writeFileSync(
          file,
          JSON.stringify({ memory: { limit: 96 * MiB, swap: 96 * MiB }, cpu: { quota: 40_000, period: 100_000 }, pids: { limit: 25 } }),
        );
        await runRuntimeOk(['update', '--resources', file, b.id]);
        expect(readCg(dirs, 'memory', 'memory.limit_in_bytes')).toBe(String(96 * MiB));
        expect(readCg(dirs, 'cpu', 'cpu.cfs_quota_us')).toBe('40000');
        expect(readCg(dirs, 'pids', 'pids.max')).toBe('25');
        expect(await forks(b.id, 20)).toBe(20);

        // stdin, long and short form.
        await runRuntimeOk(['update', '--resources', '-', b.id], { input: JSON.stringify({ pids: { limit: 6 }, cpu: { quota: 25_000 } }) });
        expect(readCg(dirs, 'pids', 'pids.max')).toBe('6');
        expect(readCg(dirs, 'cpu', 'cpu.cfs_quota_us')).toBe('25000');
        expect(await forks(b.id, 20)).toBe(4);
        await runRuntimeOk(['update', '-r', '-', b.id], { input: JSON.stringify({ memory: { limit: 80 * MiB, swap: 80 * MiB } }) });
        expect(readCg(dirs, 'memory', 'memory.limit_in_bytes')).toBe(String(80 * MiB));
        await runRuntimeOk(['delete', '--force', b.id]);
        expectNoCgroups(b.id, dirs);
      }));

    it('a cpu quota set by update throttles a spinner', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('sleep', 60) });
        const { dirs } = await runDetached(b);
        expect(readCg(dirs, 'cpu', 'cpu.cfs_quota_us')).toBe('-1');
        await runRuntimeOk(['update', '--cpu-quota', '20000', '--cpu-period', '100000', b.id]);
        const spin = parseKeyValues((await runRuntimeOk(['exec', b.id, ...vktest('spin', 1)])).stdout);
        expect(Number(parseKeyValues(readCg(dirs, 'cpu', 'cpu.stat').replace(/ /g, '=')).nr_throttled)).toBeGreaterThan(0);
        expect(Number(spin.cpu_ms) / Number(spin.wall_ms)).toBeLessThan(0.3);
        await runRuntimeOk(['delete', '--force', b.id]);
      }));
  });

  // memory.checkBeforeUpdate (runc 1.2): a limit below the current usage is refused, the
  // page cache included. Without it (runc 1.1, which does not know the field) the limit is
  // written and the kernel decides: it reclaims what it can (clean page cache) and refuses
  // with EBUSY what it cannot (tmpfs pages: this host has no swap).
  describe('update with memory.checkBeforeUpdate', () => {
    /** 64 MiB written to a file (clean page cache, charged to the container) + `shm` MiB of tmpfs, then sleep. */
    const filler = (shm = 0): string[] => [
      '/bin/sh',
      '-c',
      `dd if=/dev/zero of=/fill bs=1M count=64 conv=fsync 2>/dev/null && ` +
        `dd if=/dev/zero of=/dev/shm/fill bs=1M count=${shm} 2>/dev/null && touch /tmp/filled; exec /vktest sleep 60`,
    ];
    const usage = (dirs: Map<string, string>) => Number(readCg(dirs, 'memory', 'memory.usage_in_bytes'));
    const limit = (dirs: Map<string, string>) => readCg(dirs, 'memory', 'memory.limit_in_bytes');

    async function runFilled(check: boolean | undefined, shm = 0): Promise<{ b: Bundle; dirs: Map<string, string> }> {
      // swappiness 0: the tmpfs pages stay in memory on a host with swap too (the 8 MiB step).
      const b = await makeBundle({ args: filler(shm), mutate: withResources({ memory: { limit: 128 * MiB, swappiness: 0, checkBeforeUpdate: check } }) });
      const { dirs } = await runDetached(b);
      expect(await until(() => fs.existsSync(path.join(b.rootfs, 'tmp', 'filled')), 20_000)).toBe(true);
      // Not all of it stays charged (the kernel may drop some), but well above 32 MiB.
      expect(usage(dirs)).toBeGreaterThan(40 * MiB);
      return { b, dirs };
    }

    it('refuses a limit below the usage with one line naming the field; the limit stays; a limit above it passes', () =>
      withLeakCheck(async () => {
        const { b, dirs } = await runFilled(true);
        const r = await runRuntime(['update', '--memory', '32m', b.id]);
        if (isRunc) {
          // runc 1.1.5 ignores the field: the kernel reclaims the cache under the new limit.
          expectCode(r, 0);
          expect(limit(dirs)).toBe(String(32 * MiB));
        } else {
          expectFailed(r);
          expect(r.stderr.trim().split('\n')).toHaveLength(1);
          expect(r.stderr).toMatch(new RegExp(`linux\\.resources\\.memory\\.limit: rejecting memory limit ${32 * MiB} below current usage \\d+`));
          expect(limit(dirs)).toBe(String(128 * MiB));
          expect(usage(dirs)).toBeGreaterThan(32 * MiB);
        }
        await runRuntimeOk(['update', '--memory', '96m', b.id]);
        expect(limit(dirs)).toBe(String(96 * MiB));
        expect((await stateOf(b.id)).status).toBe('running');
        await runRuntimeOk(['delete', '--force', b.id]);
        expectNoCgroups(b.id, dirs);
      }));

    it('without it (runc semantics) the kernel reclaims the page cache under the new limit, and refuses what it cannot reclaim', () =>
      withLeakCheck(async () => {
        const { b, dirs } = await runFilled(undefined, 16);
        await runRuntimeOk(['update', '--memory', '32m', b.id]);
        expect(limit(dirs)).toBe(String(32 * MiB));
        expect(usage(dirs)).toBeLessThanOrEqual(32 * MiB);
        // 16 MiB of tmpfs cannot go below 8 MiB without swap: EBUSY, the limit stays.
        const r = await runRuntime(['update', '--memory', '8m', b.id]);
        expectFailed(r);
        if (!isRunc) expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(
          isRunc ? /unable to set memory limit to 8388608/ : /linux\.resources\.memory\.limit: unable to set memory limit to 8388608 \(current usage: \d+, peak usage: \d+\)/,
        );
        expect(limit(dirs)).toBe(String(32 * MiB));
        expect((await stateOf(b.id)).status).toBe('running');
        await runRuntimeOk(['delete', '--force', b.id]);
        expectNoCgroups(b.id, dirs);
      }));
  });

  describe('pause and resume', () => {
    it('pause freezes every task (no CPU while paused), resume thaws; wrong-state verbs fail', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('spin', 120) });
        const { pid, dirs } = await runDetached(b);
        // It spins: CPU time grows.
        const t0 = cpuTicks(pid);
        expect(await until(() => cpuTicks(pid) > t0)).toBe(true);

        await runRuntimeOk(['pause', b.id]);
        expect((await stateOf(b.id)).status).toBe('paused');
        expect(readCg(dirs, 'freezer', 'freezer.state')).toBe('FROZEN');
        const frozen = cpuTicks(pid);
        await sleep(500);
        expect(cpuTicks(pid)).toBe(frozen);
        const again = await runRuntime(['pause', b.id]);
        expectFailed(again);
        expect(again.stderr).toMatch(/not running/);

        await runRuntimeOk(['resume', b.id]);
        expect((await stateOf(b.id)).status).toBe('running');
        expect(readCg(dirs, 'freezer', 'freezer.state')).toBe('THAWED');
        expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^State:\s+R/m);
        expect(await until(() => cpuTicks(pid) > frozen)).toBe(true);
        const resumeRunning = await runRuntime(['resume', b.id]);
        expectFailed(resumeRunning);
        expect(resumeRunning.stderr).toMatch(/not paused/);

        await runRuntimeOk(['delete', '--force', b.id]);
        expectNoCgroups(b.id, dirs);
      }));
  });

  describe('events --stats', () => {
    it('prints one stats document (runc shape) with the live numbers of a running container, and exits', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({
          // 1 s of spinning: well over 50 ms of CPU even on a busy machine.
          args: ['/bin/sh', '-c', '/vktest spin 1; exec /vktest sleep 60'],
          mutate: withResources({ memory: { limit: 64 * MiB }, pids: { limit: 20 } }),
        });
        const { dirs } = await runDetached(b);
        // Past the spin (CPU time used, the shell has exec'd the sleeper: one task).
        const cpuNs = () => Number(readCg(dirs, 'cpuacct', 'cpuacct.usage'));
        expect(await until(() => cpuNs() > 50_000_000 && readCg(dirs, 'pids', 'pids.current') === '1', 15_000)).toBe(true);
        const used = cpuNs();
        const r = await runRuntimeOk(['events', '--stats', b.id]);
        const lines = r.stdout.trim().split('\n');
        expect(lines).toHaveLength(1);
        const ev = JSON.parse(lines[0]) as { data: CgroupStats };
        expectPlausibleStats(ev, b.id, { memory: 64 * MiB, pids: 20 });
        expect(ev.data.cpu.usage.total).toBeGreaterThanOrEqual(used);
        expect(ev.data.pids.current).toBe(1);
        expect(ev.data.memory.usage.usage).toBeLessThanOrEqual(Number(readCg(dirs, 'memory', 'memory.max_usage_in_bytes')));
        await runRuntimeOk(['delete', '--force', b.id]);
        expectNoCgroups(b.id, dirs);
      }));
  });

  // -------------------------------------------------------------------------------------
  // 4. Nothing left behind.

  describe('no cgroup left behind', () => {
    it('after delete of a stopped container', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('sleep', 60), mutate: withResources({ memory: { limit: 64 * MiB }, pids: { limit: 20 } }) });
        const { dirs } = await runDetached(b);
        expect(dirs.size).toBeGreaterThanOrEqual(8);
        await runRuntimeOk(['kill', b.id, 'KILL']);
        await waitStatus(b.id, 'stopped');
        await runRuntimeOk(['delete', b.id]);
        expectNoCgroups(b.id, dirs);
      }));

    it('after delete --force of a running container', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: ['/bin/sh', '-c', '/vktest sleep 60 & /vktest spin 60'], mutate: withResources({ pids: { limit: 20 } }) });
        const { dirs } = await runDetached(b);
        await runRuntimeOk(['delete', '--force', b.id]);
        expectNoCgroups(b.id, dirs);
      }));

    it('after delete --force of a paused container', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: ['/bin/sh', '-c', '/vktest sleep 60 & /vktest spin 60'] });
        const { dirs } = await runDetached(b);
        await runRuntimeOk(['pause', b.id]);
        expect((await stateOf(b.id)).status).toBe('paused');
        await runRuntimeOk(['delete', '--force', b.id]);
        expect((await runRuntime(['state', b.id])).stderr).toMatch(/container does not exist/);
        expectNoCgroups(b.id, dirs);
      }));
  });
});
