// cgroup v2 driver against a fake unified tree.

import * as fs from 'node:fs';
import { FailedPreconditionError, InvalidArgumentError, NotImplementedError } from '../../runtime/errors';
import { createCgroupManager, loadCgroupManager } from '../../runtime/cgroups/manager';
import { FakeCgroupTree, type FakeTreeOptions } from '../../runtime/cgroups/testing';
import { sharesToWeight } from '../../runtime/cgroups/v2/cpu';
import { blkioWeightToIoWeight } from '../../runtime/cgroups/v2/io';
import { convertSwapToV2 } from '../../runtime/cgroups/v2/memory';
import type { DeviceRule } from '../../runtime/cgroups/device-rules';

const trees: FakeCgroupTree[] = [];
afterAll(() => trees.forEach((t) => t.cleanup()));

function setup(opts: Partial<FakeTreeOptions> = {}, cgroupsPath: string | undefined = '/vk/c1', extra: { skipDevices?: boolean } = { skipDevices: true }) {
  const tree = new FakeCgroupTree({ mode: 'unified', ...opts });
  trees.push(tree);
  const warnings: string[] = [];
  const m = createCgroupManager({
    id: 'c1',
    cgroupsPath,
    root: tree.root,
    host: tree.host,
    fs: tree.fs,
    warn: (w) => warnings.push(w),
    ...extra,
  });
  return { tree, m, warnings };
}

describe('conversions (runc formulas)', () => {
  test('cpu shares → cpu.weight', () => {
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(512)).toBe(20);
    expect(sharesToWeight(262144)).toBe(10000);
    expect(sharesToWeight(0)).toBe(0);
  });
  test('blkio weight → io.weight', () => {
    expect(blkioWeightToIoWeight(10)).toBe(1);
    expect(blkioWeightToIoWeight(500)).toBe(4950);
    expect(blkioWeightToIoWeight(1000)).toBe(10000);
  });
  test('OCI memory+swap → swap.max', () => {
    expect(convertSwapToV2(200, 100)).toBe(100);
    expect(convertSwapToV2(100, 100)).toBe(0);
    expect(convertSwapToV2(0, -1)).toBe(-1);
    expect(convertSwapToV2(-1, 100)).toBe(-1);
    expect(convertSwapToV2(0, 100)).toBe(0);
    expect(() => convertSwapToV2(100, 0)).toThrow('linux.resources.memory.swap: unable to set a swap limit without a memory limit (got 100)');
    expect(() => convertSwapToV2(50, 100)).toThrow(InvalidArgumentError);
  });
});

describe('v2 create', () => {
  test('writes the unified files and delegates controllers', async () => {
    const { tree, m, warnings } = setup();
    expect(m.mode).toBe('v2');
    await m.create({
      memory: { limit: 100 * 2 ** 20, swap: 150 * 2 ** 20, reservation: 50 * 2 ** 20, swappiness: 5, disableOOMKiller: true },
      cpu: { shares: 1024, quota: 50000, period: 100000, burst: 5000, cpus: '0-1', mems: '0' },
      pids: { limit: -1 },
      blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1000 }], throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 7 }] },
      hugepageLimits: [{ pageSize: '2MB', limit: 2097152 }],
      rdma: { mlx4_0: { hcaHandles: 2 } },
      unified: { 'memory.high': '90000000', 'memory.oom.group': '1' },
    });
    const c = (f: string) => tree.read('vk', 'c1', f).trim();
    expect(c('memory.max')).toBe(String(100 * 2 ** 20));
    expect(c('memory.swap.max')).toBe(String(50 * 2 ** 20));
    expect(c('memory.low')).toBe(String(50 * 2 ** 20));
    expect(c('memory.high')).toBe('90000000');
    expect(c('memory.oom.group')).toBe('1');
    expect(c('cpu.weight')).toBe('39');
    expect(c('cpu.max')).toBe('50000 100000');
    expect(c('cpu.max.burst')).toBe('5000');
    expect(c('cpuset.cpus')).toBe('0-1');
    expect(c('pids.max')).toBe('max');
    expect(c('io.weight')).toBe('4950');
    expect(tree.writesTo('io.max')).toEqual(['8:0 rbps=1000', '8:0 wiops=7']);
    expect(c('hugetlb.2MB.max')).toBe('2097152');
    expect(c('rdma.max')).toBe('mlx4_0 hca_handle=2');
    expect(tree.read('cgroup.subtree_control').trim().split(' ').sort()).toEqual(['cpu', 'cpuset', 'hugetlb', 'io', 'memory', 'pids', 'rdma']);
    expect(tree.read('vk', 'cgroup.subtree_control').trim().split(' ').sort()).toEqual(['cpu', 'cpuset', 'hugetlb', 'io', 'memory', 'pids', 'rdma']);
    expect(warnings).toEqual([
      'linux.resources.memory.disableOOMKiller: ignored, cgroup v2 cannot disable the OOM killer',
      'linux.resources.memory.swappiness: ignored, cgroup v2 has no per-cgroup swappiness',
    ]);
    // runc's order: swap.max before memory.max; unified last
    const order = tree.writes.filter((w) => w.file.startsWith('vk/c1/')).map((w) => w.file.slice(6));
    expect(order.indexOf('memory.swap.max')).toBeLessThan(order.indexOf('memory.max'));
    expect(order[order.length - 1]).toBe('memory.oom.group');
  });

  test('only the stats controllers are delegated when nothing else is needed', async () => {
    const { tree, m } = setup();
    await m.create({});
    expect(tree.read('cgroup.subtree_control').trim().split(' ').sort()).toEqual(['cpu', 'io', 'memory', 'pids']);
  });

  test('memory == swap disables swap; period alone keeps the quota', async () => {
    const { tree, m } = setup();
    await m.create({ memory: { limit: 1 << 20, swap: 1 << 20 }, cpu: { quota: 20000 } });
    expect(tree.read('vk', 'c1', 'memory.swap.max')).toBe('0');
    expect(tree.read('vk', 'c1', 'cpu.max')).toBe('20000');
    await m.update({ cpu: { period: 50000 } });
    expect(tree.read('vk', 'c1', 'cpu.max')).toBe('20000 50000');
    await m.update({ cpu: { quota: -1 } });
    expect(tree.read('vk', 'c1', 'cpu.max')).toBe('max');
  });

  test('checkBeforeUpdate: a limit below memory.current is refused with swap.max and the rest untouched', async () => {
    const { tree, m } = setup();
    await m.create({ memory: { limit: 100 * 2 ** 20, swap: 150 * 2 ** 20 }, pids: { limit: 10 } });
    fs.writeFileSync(tree.p('vk', 'c1', 'memory.current'), `${50 * 2 ** 20}\n`);
    const before = tree.writes.length;
    const update = m.update({ memory: { limit: 10 * 2 ** 20, swap: 40 * 2 ** 20, checkBeforeUpdate: true }, pids: { limit: 20 } });
    await expect(update).rejects.toThrow(
      new FailedPreconditionError(`linux.resources.memory.limit: rejecting memory limit ${10 * 2 ** 20} below current usage ${50 * 2 ** 20}`),
    );
    expect(tree.writes.slice(before)).toEqual([]);
    expect(tree.read('vk', 'c1', 'memory.swap.max')).toBe(String(50 * 2 ** 20));
    expect(tree.read('vk', 'c1', 'memory.max')).toBe(String(100 * 2 ** 20));
    // Without the check, runc semantics: written (the kernel reclaims or OOM-kills).
    await m.update({ memory: { limit: 10 * 2 ** 20, swap: 40 * 2 ** 20 } });
    expect(tree.read('vk', 'c1', 'memory.max')).toBe(String(10 * 2 ** 20));
    expect(tree.read('vk', 'c1', 'memory.swap.max')).toBe(String(30 * 2 ** 20));
  });

  test('cpu burst without cpu.max.burst: 0 is skipped, others refused naming the field, nothing written', async () => {
    const { tree, m } = setup();
    await m.create({});
    fs.rmSync(tree.p('vk', 'c1', 'cpu.max.burst'));
    await m.update({ cpu: { quota: 50000, burst: 0 } });
    expect(tree.read('vk', 'c1', 'cpu.max')).toBe('50000');
    expect(tree.writesTo('cpu.max.burst')).toEqual([]);
    const before = tree.writes.length;
    const err = await m.update({ cpu: { shares: 512, burst: 1000 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toBe(
      'linux.resources.cpu.burst: this kernel has no cpu.max.burst (CPU burst needs Linux 5.14 or later) (got 1000)',
    );
    expect(tree.writes.slice(before)).toEqual([]);
  });

  test('relative paths hang off the parent of our own cgroup (runc fs2)', async () => {
    const { tree, m } = setup({ self: { '': '/system.slice/vkernel.service' } }, 'pods/c1');
    await m.create({});
    expect(m.describe().paths['']).toBe(tree.p('system.slice', 'pods', 'c1'));
  });

  test('a controller the root does not offer is an error naming the field', async () => {
    const { m, tree } = setup({ unifiedControllers: ['memory'] });
    await expect(m.create({ pids: { limit: 5 } })).rejects.toThrow(
      /^linux\.resources\.pids\.limit: the pids cgroup controller is not available in /,
    );
    expect(tree.listDirs()).toEqual([]);
  });

  test('unified keys: validated, and a missing controller is named', async () => {
    const { m } = setup({ unifiedControllers: ['memory', 'pids', 'cpu', 'io'] });
    await expect(m.create({ unified: { '../x': '1' } })).rejects.toThrow('linux.resources.unified.../x: must be a file name (no "/" or "..") (got "../x")');
    await expect(m.create({ unified: { 'memory/../../x': '1' } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(m.create({ unified: { foo: '1' } })).rejects.toThrow('must be in the form CONTROLLER.PARAMETER');
    await expect(m.create({ unified: { 'misc.max': 'x 1' } })).rejects.toThrow(/^linux\.resources\.unified\.misc\.max: the misc cgroup controller is not available/);
  });

  test('v1-only fields are rejected on v2', async () => {
    const { m } = setup();
    await expect(m.create({ network: { classID: 5 } })).rejects.toThrow(
      'linux.resources.network.classID: cannot set network limits: net_cls/net_prio do not exist in cgroup v2',
    );
    await expect(m.create({ cpu: { realtimeRuntime: 100 } })).rejects.toThrow(/realtimeRuntime: real-time group scheduling is not supported on cgroup v2/);
    await expect(m.create({ blockIO: { leafWeight: 100 } })).rejects.toThrow(/leafWeight: leaf weights are not supported on cgroup v2/);
    await expect(m.create({ memory: { swap: 100 } })).rejects.toThrow(/unable to set a swap limit without a memory limit/);
  });

  test('device rules need the eBPF loader: NotImplemented before anything is created', async () => {
    const { m, tree } = setup({}, '/vk/c1', {});
    const err = await m.create({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotImplementedError);
    expect((err as Error).message).toMatch(/^linux\.resources\.devices: cgroup v2 device rules need an eBPF device program/);
    expect(tree.listDirs()).toEqual([]);
  });

  test('a device loader gets the effective rules (user rules, then the defaults)', async () => {
    const tree = new FakeCgroupTree({ mode: 'unified' });
    trees.push(tree);
    const calls: { dir: string; rules: DeviceRule[] }[] = [];
    const m = createCgroupManager({
      id: 'c1',
      cgroupsPath: '/vk/c1',
      root: tree.root,
      host: tree.host,
      fs: tree.fs,
      deviceLoader: { apply: async (dir, rules) => void calls.push({ dir, rules }) },
    });
    await m.create({ devices: [{ allow: false, access: 'rwm' }] });
    expect(calls).toHaveLength(1);
    expect(calls[0].dir).toBe(tree.p('vk', 'c1'));
    expect(calls[0].rules[0]).toEqual({ type: 'a', major: -1, minor: -1, access: 'rwm', allow: false });
    expect(calls[0].rules).toHaveLength(12);
  });
});

describe('v2 lifecycle', () => {
  test('freeze waits for cgroup.events, killAll uses cgroup.kill, destroy cleans up', async () => {
    const { tree, m } = setup();
    await m.create({ memory: { limit: 1 << 24 } });
    await m.addProcess(123);
    expect(await m.pids()).toEqual([123]);
    await m.freeze();
    expect(await m.freezerState()).toBe('frozen');
    await m.thaw();
    expect(await m.freezerState()).toBe('thawed');
    await m.killAll(9);
    expect(tree.writesTo('cgroup.kill')).toEqual(['1']);
    expect(await m.pids()).toEqual([]);

    const s = await m.stats();
    expect(s.memory.usage).toEqual({ usage: 4096, limit: 1 << 24, max: 0, failcnt: 0 });
    expect(s.memory.swap.usage).toBe(4096);
    expect(s.memory.cache).toBe(100);
    expect(s.memory.rss).toBe(200);
    expect(s.blkio.ioServiceBytesRecursive).toEqual([
      { major: 8, minor: 0, op: 'Read', value: 512 },
      { major: 8, minor: 0, op: 'Write', value: 1024 },
    ]);
    expect(s.blkio.ioServicedRecursive).toHaveLength(2);
    expect(s.pids).toEqual({ current: 0, limit: 0 });

    const m2 = loadCgroupManager(m.describe(), { host: tree.host, fs: tree.fs });
    expect(m2.mode).toBe('v2');
    await m2.freeze();
    await m2.destroy();
    expect(tree.listDirs()).toEqual([]);
    expect(await m2.exists()).toBe(false);
  });

  test('a failing freeze write is reported', async () => {
    const { tree, m } = setup();
    await m.create({});
    // cgroup.events never says frozen: make cgroup.freeze a plain file write
    tree.failWrite('cgroup.freeze', 'EBUSY');
    await expect(m.freeze()).rejects.toBeInstanceOf(FailedPreconditionError);
  });
});
