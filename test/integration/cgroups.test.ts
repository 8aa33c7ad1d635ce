// The cgroup drivers on this machine's real hierarchies: v1 (legacy/hybrid host) and the v2
// driver on the cgroup2 tree (/sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a
// unified one). Everything is created under uniquely named test cgroups and removed again;
// the test asserts nothing is left behind. Needs root.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCgroupManager, detectCgroupSetup, type CgroupManager } from '../../runtime/cgroups/manager';
import { parseCgroupMounts } from '../../runtime/cgroups/host';

const ROOT = '/sys/fs/cgroup';
const isRoot = process.getuid?.() === 0;
const setup = fs.existsSync(ROOT) ? detectCgroupSetup(ROOT) : undefined;
const tag = `vkernel-test-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;

const children: ChildProcess[] = [];
const managers: CgroupManager[] = [];

// After each test, not once at the end: a test that fails half-way must not leave its
// cgroups for the next test's leftovers() check to trip over.
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 100));
  for (const m of managers.splice(0)) await m.destroy().catch(() => undefined);
});

/**
 * A shell that execs `sleep 1000` once released (releaseSleeper): moved into a cgroup before
 * that, it forks nothing (`read` is a builtin), so the cgroup holds just its pid, and the
 * exec's CPU time and the sleep's memory are charged to the cgroup it joined.
 */
function startSleeper(): Promise<ChildProcess> {
  const c = spawn('sh', ['-c', 'read go; exec sleep 1000'], { stdio: ['pipe', 'ignore', 'ignore'] });
  children.push(c);
  return new Promise((resolve, reject) => {
    c.once('spawn', () => resolve(c));
    c.once('error', reject);
  });
}

function releaseSleeper(c: ChildProcess): void {
  c.stdin!.end('go\n');
}

function exited(c: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.signalCode ?? c.exitCode);
  return new Promise((resolve) => c.once('exit', (code, sig) => resolve(sig ?? code)));
}

function procState(pid: number): string {
  const m = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? m[1] : '?';
}

function procCgroup(pid: number): string {
  return fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
}

const read = (...p: string[]) => fs.readFileSync(path.join(...p), 'utf8').trim();

// Every wait here is for something that does happen; a slow or loaded host only delays it
// (the sleeper may share its one CPU with others, and a quota of 20% of it).
async function until(what: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return what();
}

/** Every directory named `tag` anywhere under the cgroup hierarchies (should be none). */
function leftovers(): string[] {
  const out: string[] = [];
  for (const m of parseCgroupMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8'))) {
    if (!m.mountpoint.startsWith(ROOT)) continue;
    const walk = (d: string, depth: number) => {
      if (depth > 4) return;
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const full = path.join(d, e.name);
        if (e.name.includes(tag)) out.push(full);
        walk(full, depth + 1);
      }
    };
    walk(m.mountpoint, 0);
  }
  return out;
}

const swapAccounting = fs.existsSync(path.join(ROOT, 'memory', 'memory.memsw.limit_in_bytes'));
const v1Host = isRoot && (setup === 'legacy' || setup === 'hybrid');
const describeV1 = v1Host ? describe : describe.skip;

describeV1('cgroup v1 driver on the host', () => {
  test('create, limits, join, stats, freeze/thaw, update, kill all, destroy', async () => {
    const m = createCgroupManager({ id: `${tag}-c1`, cgroupsPath: `/${tag}/c1` });
    managers.push(m);
    expect(m.mode).toBe('v1');
    const cpus = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
    const firstCpu = cpus.split(/[-,]/)[0];
    await m.create({
      memory: { limit: 64 * 2 ** 20, reservation: 32 * 2 ** 20, ...(swapAccounting ? { swap: 128 * 2 ** 20 } : {}) },
      cpu: { shares: 512, quota: 20000, period: 100000, cpus: firstCpu, mems: '0' },
      pids: { limit: 32 },
    });
    const d = m.describe();
    expect(d.paths.memory).toBe(path.join(ROOT, 'memory', tag, 'c1'));
    expect(read(d.paths.memory, 'memory.limit_in_bytes')).toBe(String(64 * 2 ** 20));
    expect(read(d.paths.memory, 'memory.soft_limit_in_bytes')).toBe(String(32 * 2 ** 20));
    if (swapAccounting) expect(read(d.paths.memory, 'memory.memsw.limit_in_bytes')).toBe(String(128 * 2 ** 20));
    expect(read(d.paths.cpu, 'cpu.shares')).toBe('512');
    expect(read(d.paths.cpu, 'cpu.cfs_quota_us')).toBe('20000');
    expect(read(d.paths.cpu, 'cpu.cfs_period_us')).toBe('100000');
    expect(read(d.paths.cpuset, 'cpuset.cpus')).toBe(firstCpu);
    expect(read(d.paths.cpuset, 'cpuset.mems')).toBe('0');
    expect(read(d.paths.pids, 'pids.max')).toBe('32');
    // exactly what runc 1.1.5 leaves in devices.list for a config without device rules
    expect(read(d.paths.devices, 'devices.list').split('\n').sort()).toEqual(
      ['b *:* m', 'c *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:2 rwm', 'c 10:200 rwm', 'c 136:* rwm'].sort(),
    );
    // the parent /<tag> got cpus/mems copied, so the leaf can take tasks
    expect(read(ROOT, 'cpuset', tag, 'cpuset.cpus')).not.toBe('');

    const child = await startSleeper();
    const pid = child.pid as number;
    await m.addProcess(pid);
    expect(procCgroup(pid)).toContain(`memory:/${tag}/c1`);
    expect(procCgroup(pid)).toContain(`pids:/${tag}/c1`);
    expect(await m.pids()).toEqual([pid]);
    releaseSleeper(child);

    // Wait for both: memory can be charged (kernel objects) before the moved shell has run
    // again, and then cpuacct.usage still reads 0 (seen on a faster CI machine).
    await until(async () => {
      const now = await m.stats();
      return now.memory.usage.usage > 0 && now.cpu.usage.total > 0;
    });
    const s = await m.stats();
    expect(s.pids.current).toBeGreaterThanOrEqual(1);
    expect(s.pids.limit).toBe(32);
    expect(s.memory.usage.limit).toBe(64 * 2 ** 20);
    expect(s.memory.usage.usage).toBeGreaterThan(0);
    expect(s.cpu.usage.total).toBeGreaterThan(0);
    expect(s.cpuset.cpus).toEqual([Number(firstCpu)]);
    expect(await m.oomKillCount()).toBe(0);

    await m.freeze();
    expect(await m.freezerState()).toBe('frozen');
    if (d.paths.freezer) expect(read(d.paths.freezer, 'freezer.state')).toBe('FROZEN');
    expect(await until(() => procState(pid) === 'D')).toBe(true); // v1 frozen tasks show as D
    await m.thaw();
    expect(await m.freezerState()).toBe('thawed');
    expect(await until(() => procState(pid) === 'S')).toBe(true);

    await m.update({ memory: { limit: 48 * 2 ** 20, ...(swapAccounting ? { swap: 256 * 2 ** 20 } : {}) }, pids: { limit: 0 }, cpu: { shares: 256 } });
    expect(read(d.paths.memory, 'memory.limit_in_bytes')).toBe(String(48 * 2 ** 20));
    if (swapAccounting) expect(read(d.paths.memory, 'memory.memsw.limit_in_bytes')).toBe(String(256 * 2 ** 20));
    expect(read(d.paths.pids, 'pids.max')).toBe('max');
    expect(read(d.paths.cpu, 'cpu.shares')).toBe('256');
    await expect(m.update({ cpu: { cpus: '0-999' } })).rejects.toThrow(/^linux\.resources\.cpu\.cpus: cpu .* not online/);
    await expect(m.update({ network: { classID: 1 } })).rejects.toThrow(/^linux\.resources\.network\.classID: /);

    await m.killAll(9);
    expect(await exited(child)).toBe('SIGKILL');
    expect(await until(async () => (await m.pids()).length === 0)).toBe(true);

    await m.destroy();
    expect(await m.exists()).toBe(false);
    for (const p of Object.values(d.paths)) expect(fs.existsSync(p)).toBe(false);
    for (const p of d.created) expect(fs.existsSync(p)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  test('the default path (empty cgroupsPath) is <own cgroup>/<id>, and is cleaned up', async () => {
    const id = `${tag}-dflt`;
    const m = createCgroupManager({ id });
    managers.push(m);
    await m.create({ pids: { limit: 10 } });
    const own = fs.readFileSync('/proc/self/cgroup', 'utf8');
    const ownMem = /^\d+:memory:(.*)$/m.exec(own)?.[1] ?? '/';
    expect(m.describe().paths.memory).toBe(path.join(ROOT, 'memory', ownMem, id));
    expect(fs.existsSync(m.describe().paths.memory)).toBe(true);
    await m.destroy();
    expect(leftovers()).toEqual([]);
  });

  test('a failing create removes what it made', async () => {
    const m = createCgroupManager({ id: `${tag}-bad`, cgroupsPath: `/${tag}/bad` });
    managers.push(m);
    // Valid input the kernel refuses after the directories exist: RT time the new parent
    // /<tag> (rt_runtime_us 0) cannot hand out.
    await expect(m.create({ cpu: { realtimeRuntime: 10000, realtimePeriod: 1000000 } })).rejects.toThrow(
      /^linux\.resources\.cpu\.realtimeRuntime: cgroup: write 10000 to .*cpu\.rt_runtime_us: invalid argument$/,
    );
    expect(leftovers()).toEqual([]);
  });
});

const v2Root = setup === 'hybrid' ? path.join(ROOT, 'unified') : setup === 'unified' ? ROOT : undefined;
const describeV2 = isRoot && v2Root ? describe : describe.skip;

describeV2('cgroup v2 driver on the host cgroup2 tree', () => {
  test('create, addProcess, freeze via cgroup.freeze, kill via cgroup.kill, destroy', async () => {
    const root = v2Root as string;
    const before = read(root, 'cgroup.subtree_control');
    // Device rules need the eBPF loader that does not exist yet: skip them.
    const m = createCgroupManager({ id: `${tag}-v2`, cgroupsPath: `/${tag}/v2`, root, skipDevices: true });
    managers.push(m);
    expect(m.mode).toBe('v2');
    await m.create({});
    const dir = m.describe().paths[''];
    expect(dir).toBe(path.join(root, tag, 'v2'));
    expect(fs.existsSync(path.join(dir, 'cgroup.freeze'))).toBe(true);

    const child = await startSleeper();
    const pid = child.pid as number;
    await m.addProcess(pid);
    expect(procCgroup(pid)).toContain(`0::/${tag}/v2`);
    expect(await m.pids()).toEqual([pid]);
    releaseSleeper(child);
    const s = await m.stats();
    expect(s.pids.current).toBe(1); // counted from cgroup.procs without the pids controller

    await m.freeze();
    expect(await m.freezerState()).toBe('frozen');
    expect(read(dir, 'cgroup.events')).toContain('frozen 1');
    await m.thaw();
    expect(await m.freezerState()).toBe('thawed');
    expect(read(dir, 'cgroup.events')).toContain('frozen 0');

    await m.killAll(9);
    expect(await exited(child)).toBe('SIGKILL');
    expect(await until(async () => (await m.pids()).length === 0)).toBe(true);

    await m.destroy();
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.existsSync(path.join(root, tag))).toBe(false);
    // the hierarchy root was not changed (no controller was needed)
    expect(read(root, 'cgroup.subtree_control')).toBe(before);
    expect(leftovers()).toEqual([]);
  });
});
