// cgroup v1 driver against a fake /sys/fs/cgroup tree (runtime/cgroups/testing.ts).

import * as fs from 'node:fs';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../runtime/errors';
import { createCgroupManager, loadCgroupManager, type CgroupManager } from '../../runtime/cgroups/manager';
import { FakeCgroupTree, type FakeTreeOptions } from '../../runtime/cgroups/testing';

const trees: FakeCgroupTree[] = [];
afterAll(() => trees.forEach((t) => t.cleanup()));

function setup(opts: Partial<FakeTreeOptions> = {}, cgroupsPath: string | undefined = '/vk/c1', id = 'c1') {
  const tree = new FakeCgroupTree({ mode: 'legacy', ...opts });
  trees.push(tree);
  const warnings: string[] = [];
  const m = createCgroupManager({ id, cgroupsPath, root: tree.root, host: tree.host, fs: tree.fs, warn: (w) => warnings.push(w) });
  return { tree, m, warnings };
}

describe('v1 create', () => {
  test('writes every linux.resources field to the right file', async () => {
    const { tree, m, warnings } = setup();
    expect(m.mode).toBe('v1');
    await m.create({
      memory: { limit: 104857600, reservation: 52428800, swap: 209715200, swappiness: 10, disableOOMKiller: true, kernel: 1 },
      cpu: { shares: 512, quota: 50000, period: 100000, burst: 1000, realtimeRuntime: 1000, realtimePeriod: 100000, cpus: '1-2', mems: '0', idle: 0 },
      pids: { limit: 64 },
      blockIO: {
        weight: 300,
        weightDevice: [{ major: 8, minor: 0, weight: 200 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 100 }],
      },
    });
    const c = (ctrl: string, f: string) => tree.read(ctrl, 'vk', 'c1', f).trim();
    expect(c('memory', 'memory.limit_in_bytes')).toBe('104857600');
    expect(c('memory', 'memory.memsw.limit_in_bytes')).toBe('209715200');
    expect(c('memory', 'memory.soft_limit_in_bytes')).toBe('52428800');
    expect(c('memory', 'memory.swappiness')).toBe('10');
    expect(c('memory', 'memory.oom_control')).toBe('1');
    expect(c('cpu,cpuacct', 'cpu.shares')).toBe('512');
    expect(c('cpu,cpuacct', 'cpu.cfs_quota_us')).toBe('50000');
    expect(c('cpu,cpuacct', 'cpu.cfs_period_us')).toBe('100000');
    expect(c('cpu,cpuacct', 'cpu.cfs_burst_us')).toBe('1000');
    expect(c('cpu,cpuacct', 'cpu.rt_runtime_us')).toBe('1000');
    expect(c('cpu,cpuacct', 'cpu.rt_period_us')).toBe('100000');
    expect(c('cpu,cpuacct', 'cpu.idle')).toBe('0');
    expect(c('cpuset', 'cpuset.cpus')).toBe('1-2');
    expect(c('cpuset', 'cpuset.mems')).toBe('0');
    expect(c('pids', 'pids.max')).toBe('64');
    expect(c('blkio', 'blkio.bfq.weight')).toBe('300');
    expect(c('blkio', 'blkio.bfq.weight_device')).toBe('8:0 200');
    expect(c('blkio', 'blkio.throttle.read_bps_device')).toBe('8:0 1048576');
    expect(c('blkio', 'blkio.throttle.write_iops_device')).toBe('8:16 100');
    expect(warnings).toEqual(['linux.resources.memory.kernel: kernel memory settings are ignored and will be removed']);
    // rt period before runtime (runc SetRtSched)
    const rt = tree.writes.filter((w) => w.file.includes('cpu.rt_')).map((w) => w.file.split('/').pop());
    expect(rt).toEqual(['cpu.rt_period_us', 'cpu.rt_runtime_us']);
  });

  test('joins every mounted hierarchy, even without settings (ps / kill --all)', async () => {
    const { tree, m } = setup();
    await m.create();
    for (const h of ['cpu,cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd']) {
      expect(tree.exists(h, 'vk', 'c1')).toBe(true);
    }
    expect(m.procsFiles()).toEqual(
      ['cpuset', 'devices', 'memory', 'cpu,cpuacct', 'pids', 'blkio', 'freezer', 'systemd'].map((h) => tree.p(h, 'vk', 'c1', 'cgroup.procs')),
    );
  });

  test('cpuset.cpus/mems are copied from the parent into new directories', async () => {
    const { tree, m } = setup({ rootCpus: '0-3' }, '/a/b/c');
    await m.create({ cpu: { cpus: '2' } });
    expect(tree.read('cpuset', 'a', 'cpuset.cpus')).toBe('0-3');
    expect(tree.read('cpuset', 'a', 'b', 'cpuset.cpus')).toBe('0-3');
    expect(tree.read('cpuset', 'a', 'b', 'c', 'cpuset.cpus')).toBe('2');
    expect(tree.read('cpuset', 'a', 'b', 'c', 'cpuset.mems')).toBe('0');
    // the leaf's own value is written before anything is inherited
    const leaf = tree.writes.filter((w) => w.file === 'cpuset/a/b/c/cpuset.cpus').map((w) => w.value);
    expect(leaf).toEqual(['2']);
  });

  test('device rules: deny all first, then the allow list in runc order', async () => {
    const { tree, m } = setup();
    await m.create({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' }] });
    const writes = tree.writes.filter((w) => /devices\.(allow|deny)$/.test(w.file)).map((w) => `${w.file.split('.').pop()} ${w.value}`);
    expect(writes).toEqual([
      'deny a *:* rwm',
      'allow b *:* m',
      'allow c *:* m',
      'allow c 1:3 rwm',
      'allow c 1:5 rwm',
      'allow c 1:7 rwm',
      'allow c 1:8 rwm',
      'allow c 1:9 rwm',
      'allow c 5:0 rwm',
      'allow c 5:2 rwm',
      'allow c 10:200 rwm',
      'allow c 10:229 rw',
      'allow c 136:* rwm',
    ]);
  });

  test('updating devices writes only the difference (no deny-all window)', async () => {
    const { tree, m } = setup();
    await m.create({ devices: [{ allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' }] });
    tree.writes.length = 0;
    await m.update({ devices: [{ allow: true, type: 'c', major: 10, minor: 229, access: 'r' }, { allow: true, type: 'b', major: 8, minor: 0, access: 'r' }] });
    const writes = tree.writes.filter((w) => /devices\.(allow|deny)$/.test(w.file)).map((w) => `${w.file.split('.').pop()} ${w.value}`);
    expect(writes).toEqual(['deny c 10:229 wm', 'allow b 8:0 r']);
  });

  test('skipDevices leaves the devices cgroup alone', async () => {
    const tree = new FakeCgroupTree({ mode: 'legacy' });
    trees.push(tree);
    const m = createCgroupManager({ id: 'x', cgroupsPath: '/x', root: tree.root, host: tree.host, fs: tree.fs, skipDevices: true });
    await m.create({ devices: [{ allow: false, access: 'rwm' }] });
    expect(tree.writesTo('devices.deny')).toEqual([]);
    expect(m.describe().skipDevices).toBe(true);
  });

  test('pids.limit <= 0 means max', async () => {
    const { tree, m } = setup();
    await m.create({ pids: { limit: 0 } });
    expect(tree.read('pids', 'vk', 'c1', 'pids.max').trim()).toBe('max');
    await m.update({ pids: { limit: -1 } });
    expect(tree.writesTo('pids.max')).toEqual(['max', 'max']);
  });

  test('memory limit -1 sets swap unlimited too', async () => {
    const { tree, m } = setup();
    await m.create({ memory: { limit: -1 } });
    expect(tree.writesTo('memory.memsw.limit_in_bytes')).toEqual(['-1']);
    expect(tree.writesTo('memory.limit_in_bytes')).toEqual(['-1']);
  });

  test('raising memory writes swap first, lowering writes memory first', async () => {
    const { tree, m } = setup();
    await m.create({ memory: { limit: 100 * 2 ** 20, swap: 200 * 2 ** 20 } });
    await m.update({ memory: { limit: 300 * 2 ** 20, swap: 400 * 2 ** 20 } });
    await m.update({ memory: { limit: 50 * 2 ** 20, swap: 60 * 2 ** 20 } });
    const seq = tree.writes
      .filter((w) => /memory\.(memsw\.)?limit_in_bytes$/.test(w.file))
      .map((w) => `${w.file.includes('memsw') ? 'swap' : 'mem'}=${Number(w.value) / 2 ** 20}`);
    // create from unlimited: current limit (huge) >= swap → memory first
    expect(seq).toEqual(['mem=100', 'swap=200', 'swap=400', 'mem=300', 'mem=50', 'swap=60']);
    expect(tree.read('memory', 'vk', 'c1', 'memory.limit_in_bytes')).toBe(String(50 * 2 ** 20));
  });

  test('swap without swap accounting is a clear error', async () => {
    const { m, tree } = setup({ memsw: false });
    await expect(m.create({ memory: { limit: 100, swap: 200 } })).rejects.toThrow(
      /^linux\.resources\.memory\.swap: this kernel has no swap accounting/,
    );
    expect(tree.exists('memory', 'vk')).toBe(false);
  });

  test('cpu.idle is written where v1 has it, warned about where not', async () => {
    const { tree, m, warnings } = setup();
    tree.writes.length = 0;
    await m.create({ cpu: { idle: 1, shares: 100 } });
    expect(tree.read('cpu,cpuacct', 'vk', 'c1', 'cpu.idle')).toBe('1');
    expect(tree.writesTo('cpu.shares')).toEqual([]);
    expect(warnings[0]).toMatch(/^linux\.resources\.cpu\.shares: ignored/);
  });

  test('create is idempotent and records only what it made', async () => {
    const { tree, m } = setup();
    await m.create({ pids: { limit: 10 } });
    const first = m.describe().created;
    await m.create({ pids: { limit: 20 } });
    expect(m.describe().created).toEqual(first);
    expect(tree.read('pids', 'vk', 'c1', 'pids.max').trim()).toBe('20');
    expect(first).toContain(tree.p('pids', 'vk'));
    expect(first).toContain(tree.p('pids', 'vk', 'c1'));
  });
});

describe('v1 errors', () => {
  test('a failed write names the field, value, file and errno text, and create cleans up', async () => {
    const { tree, m } = setup();
    tree.failWrite('pids.max', 'EINVAL');
    const err = await m.create({ pids: { limit: 5 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe(
      `linux.resources.pids.limit: cgroup: write 5 to ${tree.p('pids', 'vk', 'c1', 'pids.max')}: invalid argument`,
    );
    expect(tree.listDirs().filter((d) => d.includes('vk'))).toEqual([]);
  });

  test('kernel rejecting cpus beyond the parent is reported with the field', async () => {
    const { tree, m } = setup({ rootCpus: '0-1', onlineCpus: '0-3' });
    await expect(m.create({ cpu: { cpus: '3' } })).rejects.toThrow(
      `linux.resources.cpu.cpus: cgroup: write 3 to ${tree.p('cpuset', 'vk', 'c1', 'cpuset.cpus')}: invalid argument`,
    );
  });

  test.each([
    [{ cpu: { cpus: '0-999' } }, 'linux.resources.cpu.cpus: cpu 4-999 are not online on this host (online: 0-3) (got "0-999")'],
    [{ cpu: { cpus: '1-x' } }, 'linux.resources.cpu.cpus: invalid list element "1-x" (got "1-x")'],
    [{ cpu: { mems: '1' } }, 'linux.resources.cpu.mems: memory node 1 is not online on this host (online: 0) (got "1")'],
    [{ cpu: { shares: 1 } }, 'linux.resources.cpu.shares: must be between 2 and 262144 (got 1)'],
    [{ cpu: { quota: 500 } }, 'linux.resources.cpu.quota: must be at least 1000 (1ms) or negative for no limit (got 500)'],
    [{ cpu: { period: 10 } }, 'linux.resources.cpu.period: must be between 1000 and 1000000 (got 10)'],
    [{ memory: { limit: -5 } }, 'linux.resources.memory.limit: must be >= 0 or -1 (got -5)'],
    [{ memory: { limit: 200, swap: 100 } }, 'linux.resources.memory.swap: memory+swap limit must be >= the memory limit 200 (got 100)'],
    [{ memory: { swappiness: 101 } }, 'linux.resources.memory.swappiness: must be between 0 and 100 or -1 (got 101)'],
    [{ blockIO: { weight: 5 } }, 'linux.resources.blockIO.weight: must be between 10 and 1000 (got 5)'],
    [{ blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: -1 }] } }, 'linux.resources.blockIO.throttleReadBpsDevice[0].rate: must be >= 0 (got -1)'],
    [{ devices: [{ allow: true, type: 'x', access: 'r' }] }, 'linux.resources.devices[0].type: unknown device type, must be "a", "b" or "c" (got "x")'],
    [{ devices: [{ allow: true, type: 'c', access: '' }] }, 'linux.resources.devices[0].access: must be a non-empty combination of "r", "w" and "m" (got "")'],
    [{ hugepageLimits: [{ pageSize: '4MB', limit: 1 }] }, 'linux.resources.hugepageLimits[0].pageSize: huge page size not supported by this host (supported: 2MB, 1GB) (got "4MB")'],
    [{ unified: { 'memory.max': '1' } }, 'linux.resources.unified: cannot use unified on cgroup v1 (this host uses the v1 hierarchies)'],
    [{ cpu: { idle: 2 } }, 'linux.resources.cpu.idle: must be between 0 and 1 (got 2)'],
  ])('validation %j', async (resources, message) => {
    const { tree, m } = setup();
    const err = await m.create(resources as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe(message);
    expect(tree.writes).toEqual([]); // nothing created or written
    expect(tree.listDirs().some((d) => d.includes('vk'))).toBe(false);
  });

  test('a controller that is not mounted is an error naming the field', async () => {
    const { m, tree } = setup();
    await expect(m.create({ network: { classID: 0x100001 } })).rejects.toThrow(
      `linux.resources.network.classID: cannot set net_cls limit: the net_cls cgroup controller is not mounted under ${tree.root}`,
    );
    await expect(m.create({ network: { priorities: [{ name: 'eth0', priority: 5 }] } })).rejects.toThrow(
      /^linux\.resources\.network\.priorities: cannot set net_prio limit/,
    );
    await expect(m.create({ rdma: { mlx5_0: { hcaHandles: 2 } } })).rejects.toThrow(/^linux\.resources\.rdma: cannot set rdma limit/);
    await expect(m.create({ hugepageLimits: [{ pageSize: '2MB', limit: 2097152 }] })).rejects.toBeInstanceOf(FailedPreconditionError);
    expect(tree.writes).toEqual([]);
  });

  test('net_cls / net_prio / rdma are written when mounted', async () => {
    const { tree, m } = setup({
      hierarchies: [['devices'], ['net_cls', 'net_prio'], ['rdma'], ['hugetlb']],
    });
    await m.create({
      network: { classID: 1048577, priorities: [{ name: 'eth0', priority: 5 }, { name: 'lo', priority: 1 }] },
      rdma: { mlx5_0: { hcaHandles: 3, hcaObjects: 1000 } },
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
    });
    expect(tree.read('net_cls,net_prio', 'vk', 'c1', 'net_cls.classid')).toBe('1048577');
    expect(tree.writesTo('net_prio.ifpriomap')).toEqual(['eth0 5', 'lo 1']);
    expect(tree.writesTo('rdma.max')).toEqual(['mlx5_0 hca_handle=3 hca_object=1000']);
    expect(tree.read('hugetlb', 'vk', 'c1', 'hugetlb.2MB.limit_in_bytes')).toBe('4194304');
  });

  test('the devices controller missing is fatal (runc), unless devices are skipped', async () => {
    const tree = new FakeCgroupTree({ mode: 'legacy', hierarchies: [['memory']] });
    trees.push(tree);
    const m = createCgroupManager({ id: 'x', cgroupsPath: '/x', root: tree.root, host: tree.host, fs: tree.fs });
    await expect(m.create()).rejects.toThrow(/^linux\.resources\.devices: cannot set devices limit/);
    const m2 = createCgroupManager({ id: 'x', cgroupsPath: '/x', root: tree.root, host: tree.host, fs: tree.fs, skipDevices: true });
    await m2.create({ memory: { limit: 1 << 20 } });
    await m2.destroy();
  });

  test('memory EBUSY becomes the usage message', async () => {
    const { tree, m } = setup();
    await m.create();
    tree.failWrite('memory.limit_in_bytes', 'EBUSY');
    await expect(m.update({ memory: { limit: 1024 } })).rejects.toThrow(
      'linux.resources.memory.limit: unable to set memory limit to 1024 (current usage: 4096, peak usage: 8192)',
    );
  });

  test('checkBeforeUpdate: a limit below the usage is refused before anything is written', async () => {
    const { tree, m } = setup();
    await m.create({ memory: { limit: 100 * 2 ** 20, swap: 200 * 2 ** 20 }, cpu: { cpus: '0-1' } });
    fs.writeFileSync(tree.p('memory', 'vk', 'c1', 'memory.usage_in_bytes'), String(50 * 2 ** 20));
    const before = tree.writes.length;
    const update = m.update({ memory: { limit: 10 * 2 ** 20, swap: 20 * 2 ** 20, checkBeforeUpdate: true }, cpu: { cpus: '2' } });
    await expect(update).rejects.toThrow(
      new FailedPreconditionError(`linux.resources.memory.limit: rejecting memory limit ${10 * 2 ** 20} below current usage ${50 * 2 ** 20}`),
    );
    // cpuset comes before memory in runc's order: it is not written either.
    expect(tree.writes.slice(before)).toEqual([]);
    // Above the usage it passes; without the check the kernel decides (here: accepts).
    await m.update({ memory: { limit: 60 * 2 ** 20, checkBeforeUpdate: true } });
    await m.update({ memory: { limit: 10 * 2 ** 20 } });
    expect(tree.writesTo('memory.limit_in_bytes').slice(-2)).toEqual([String(60 * 2 ** 20), String(10 * 2 ** 20)]);
  });

  test('cpu burst without cpu.cfs_burst_us: 0 is skipped, others refused naming the field, nothing written', async () => {
    const { tree, m } = setup();
    await m.create({});
    fs.rmSync(tree.p('cpu,cpuacct', 'vk', 'c1', 'cpu.cfs_burst_us'));
    await m.update({ cpu: { quota: 50000, burst: 0 } });
    expect(tree.read('cpu,cpuacct', 'vk', 'c1', 'cpu.cfs_quota_us')).toBe('50000');
    const before = tree.writes.length;
    const err = await m.update({ cpu: { shares: 512, burst: 1000 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toBe(
      'linux.resources.cpu.burst: this kernel has no cpu.cfs_burst_us (CPU burst needs Linux 5.14 or later) (got 1000)',
    );
    expect(tree.writes.slice(before)).toEqual([]);
  });

  test('update of a cgroup that is gone is NotFound', async () => {
    const { m } = setup();
    await expect(m.update({ pids: { limit: 1 } })).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('v1 lifecycle', () => {
  test('describe → load round trip, freeze/thaw, stats, destroy', async () => {
    const { tree, m } = setup({}, '/vk/c1');
    await m.create({ memory: { limit: 1 << 24 }, pids: { limit: 10 } });
    const desc = m.describe();
    expect(desc.mode).toBe('v1');
    expect(desc.paths.memory).toBe(tree.p('memory', 'vk', 'c1'));
    expect(desc.paths.cpu).toBe(tree.p('cpu,cpuacct', 'vk', 'c1'));
    expect(desc.paths.cpuacct).toBe(tree.p('cpu,cpuacct', 'vk', 'c1'));
    expect(desc.paths['name=systemd']).toBe(tree.p('systemd', 'vk', 'c1'));
    const m2: CgroupManager = loadCgroupManager(JSON.parse(JSON.stringify(desc)), { host: tree.host, fs: tree.fs });
    expect(m2.procsFiles()).toEqual(m.procsFiles());

    await m2.freeze();
    expect(await m2.freezerState()).toBe('frozen');
    expect(tree.read('freezer', 'vk', 'c1', 'freezer.state').trim()).toBe('FROZEN');
    await m2.thaw();
    expect(await m2.freezerState()).toBe('thawed');

    const s = await m2.stats();
    expect(s.memory.usage).toEqual({ usage: 4096, max: 8192, failcnt: 0, limit: 1 << 24 });
    expect(s.memory.cache).toBe(100);
    expect(s.memory.rss).toBe(200);
    expect(s.pids.limit).toBe(10);
    expect(s.cpu.usage.total).toBe(1000);
    expect(s.cpu.usage.percpu).toEqual([600, 400]);
    expect(s.cpu.usage.user).toBe(10000000);
    expect(s.cpu.usage.kernel).toBe(20000000);
    expect(s.blkio.ioServiceBytesRecursive).toEqual([
      { major: 8, minor: 0, op: 'Read', value: 512 },
      { major: 8, minor: 0, op: 'Write', value: 1024 },
    ]);
    expect(s.cpuset.cpus).toEqual([0, 1, 2, 3]);
    expect(await m2.oomKillCount()).toBe(0);

    await m2.freeze();
    await m2.destroy(); // thaws first, then removes leaves and the parents it made
    expect(tree.listDirs().filter((d) => d.includes('vk'))).toEqual([]);
    expect(await m2.exists()).toBe(false);
    await m2.destroy(); // already gone is fine
  });

  test('destroy keeps parents it did not create, and parents still in use', async () => {
    const tree = new FakeCgroupTree({ mode: 'legacy' });
    trees.push(tree);
    const mk = (id: string) =>
      createCgroupManager({ id, cgroupsPath: `/shared/${id}`, root: tree.root, host: tree.host, fs: tree.fs });
    const a = mk('a');
    const b = mk('b');
    await a.create();
    await b.create();
    await a.destroy(); // /shared is a's, but b still lives in it
    expect(tree.exists('memory', 'shared', 'b')).toBe(true);
    expect(tree.exists('memory', 'shared', 'a')).toBe(false);
    await b.destroy(); // b did not create /shared: it stays
    expect(tree.exists('memory', 'shared')).toBe(true);
  });

  test('destroy removes child cgroups the container made', async () => {
    const { tree, m } = setup();
    await m.create();
    await tree.fs.mkdir(tree.p('memory', 'vk', 'c1', 'nested'));
    await m.destroy();
    expect(tree.exists('memory', 'vk')).toBe(false);
  });

  test('destroy gives up with a clear error when processes stay', async () => {
    const { tree, m } = setup();
    await m.create();
    await tree.fs.write(tree.p('memory', 'vk', 'c1', 'cgroup.procs'), '999999');
    await expect(m.destroy()).rejects.toThrow(`cgroup: failed to remove ${tree.p('memory', 'vk', 'c1')}: device or resource busy`);
  });

  test('addProcess writes every procs file; pids() reads the tree', async () => {
    const { tree, m } = setup();
    await m.create();
    await m.addProcess(4242);
    for (const f of m.procsFiles()) expect(tree.read(...f.slice(tree.root.length + 1).split('/')).trim()).toBe('4242');
    await tree.fs.mkdir(tree.p('freezer', 'vk', 'c1', 'sub'));
    await tree.fs.write(tree.p('freezer', 'vk', 'c1', 'sub', 'cgroup.procs'), '77');
    expect(await m.pids()).toEqual([77, 4242]);
    tree.failWrite('cgroup.procs', 'ESRCH');
    await expect(m.addProcess(1234)).rejects.toBeInstanceOf(NotFoundError);
    await expect(m.addProcess(0)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  test('oomEvents reports oom_kill increments and under_oom episodes', async () => {
    const { tree, m } = setup();
    await m.create();
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const e of m.oomEvents({ intervalMs: 5, signal: ac.signal })) {
        seen.push(`${e.kind}:${e.count}`);
        if (seen.length === 2) ac.abort();
      }
    })();
    const file = tree.p('memory', 'vk', 'c1', 'memory.oom_control');
    const waitFor = async (n: number) => {
      for (let i = 0; i < 400 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 5));
    };
    await new Promise((r) => setTimeout(r, 20));
    fs.writeFileSync(file, 'oom_kill_disable 1\nunder_oom 1\noom_kill 0\n');
    await waitFor(1);
    fs.writeFileSync(file, 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    await done;
    expect(seen).toEqual(['oom:1', 'oom_kill:2']);
    expect(await m.oomKillCount()).toBe(2);
  });
});

describe('hybrid', () => {
  test('joins the unified tree too and puts hugepageLimits there', async () => {
    const { tree, m } = setup({ mode: 'hybrid', unifiedControllers: ['hugetlb'] });
    await m.create({ hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }], pids: { limit: 3 } });
    expect(m.describe().paths['']).toBe(tree.p('unified', 'vk', 'c1'));
    expect(m.procsFiles()).toContain(tree.p('unified', 'vk', 'c1', 'cgroup.procs'));
    expect(tree.read('unified', 'cgroup.subtree_control').trim()).toBe('hugetlb');
    expect(tree.read('unified', 'vk', 'cgroup.subtree_control').trim()).toBe('hugetlb');
    expect(tree.read('unified', 'vk', 'c1', 'hugetlb.2MB.max')).toBe('4194304');
    const s = await m.stats();
    expect(s.hugetlb['2MB']).toEqual({ usage: 0, max: 0, failcnt: 0 });
    await m.destroy();
    expect(tree.listDirs().filter((d) => d.includes('vk'))).toEqual([]);
  });

  test('does not touch the unified subtree_control when no hugetlb limit is asked for', async () => {
    const { tree, m } = setup({ mode: 'hybrid' });
    await m.create({ pids: { limit: 3 } });
    expect(tree.writesTo('cgroup.subtree_control')).toEqual([]);
  });

  test('freezes through cgroup.freeze when there is no v1 freezer', async () => {
    const { tree, m } = setup({ mode: 'hybrid', hierarchies: [['devices'], ['memory']] });
    await m.create();
    await m.freeze();
    expect(tree.read('unified', 'vk', 'c1', 'cgroup.freeze').trim()).toBe('1');
    expect(await m.freezerState()).toBe('frozen');
    await m.thaw();
    expect(await m.freezerState()).toBe('thawed');
  });
});
