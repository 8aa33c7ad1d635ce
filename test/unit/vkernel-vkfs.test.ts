// vkfs generators against a fake host (/proc, /sys/devices/system) and fake cgroup trees
// (v1 and v2) in a temp dir, through `vkfs cat|ls|snapshot` (no FUSE, no root needed).
// Expected values are computed here from the documented rules (docs/vkernel-view.md).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPath } from '../../runtime/paths';

const VKFS = buildPath('vkfs');
const haveVkfs = fs.existsSync(VKFS);
if (!haveVkfs && process.env.CI === 'true') throw new Error(`${VKFS} missing: run make native`);
if (!haveVkfs) console.warn(`${VKFS} missing: run make native (vkfs tests skipped)`);
const describeIf = haveVkfs ? describe : describe.skip;

const MiB = 1024 * 1024;
const HOST_CPUS = 8;

type Files = Record<string, string>;

class Fake {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'vkfs-unit-'));
  readonly proc = path.join(this.root, 'proc');
  readonly sys = path.join(this.root, 'sys');
  readonly conf = path.join(this.root, 'vkfs.conf');
  confLines: string[] = [];

  write(rel: string, text: string): void {
    const p = path.join(this.root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  }
  writeAll(base: string, files: Files): void {
    for (const [k, v] of Object.entries(files)) this.write(path.join(base, k), v);
  }
  link(rel: string, target: string): void {
    const p = path.join(this.root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.symlinkSync(target, p);
  }
  setConf(lines: string[]): void {
    this.confLines = lines;
    fs.writeFileSync(this.conf, lines.join('\n') + '\n');
  }
  /** Replaces (or adds) one "key value" line. */
  set(key: string, value: string | undefined): void {
    const rest = this.confLines.filter((l) => !l.startsWith(`${key} `));
    this.setConf(value === undefined ? rest : [...rest, `${key} ${value}`]);
  }
  cat(vpath: string): string {
    return execFileSync(VKFS, ['cat', '--config', this.conf, vpath], { encoding: 'utf8' });
  }
  ls(vpath: string): string[] {
    return execFileSync(VKFS, ['ls', '--config', this.conf, vpath], { encoding: 'utf8' }).trim().split('\n').sort();
  }
  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

function hostFixture(f: Fake): void {
  let cpuinfo = '';
  for (let i = 0; i < HOST_CPUS; i++) {
    cpuinfo +=
      `processor\t: ${i}\nvendor_id\t: GenuineIntel\nmodel name\t: Fake CPU\ncpu MHz\t\t: 2000.000\n` +
      `physical id\t: ${i < 4 ? 0 : 1}\nsiblings\t: 4\ncore id\t\t: ${i % 4}\ncpu cores\t: 4\n` +
      `apicid\t\t: ${i}\nflags\t\t: fpu sse2 avx2\nbogomips\t: 4000.00\n\n`;
  }
  f.writeAll('proc', {
    cpuinfo,
    meminfo: [
      'MemTotal:       16777216 kB',
      'MemFree:         8388608 kB',
      'MemAvailable:   12582912 kB',
      'Buffers:           10000 kB',
      'Cached:          2000000 kB',
      'SwapCached:            0 kB',
      'Active:          3000000 kB',
      'SwapTotal:       1048576 kB',
      'SwapFree:        1048576 kB',
      'Dirty:               100 kB',
      'AnonPages:       3000000 kB',
      'Slab:             500000 kB',
      'KernelStack:       12000 kB',
      'CommitLimit:     9437184 kB',
      'VmallocTotal:   34359738367 kB',
      'HugePages_Total:       0',
      'Hugepagesize:       2048 kB',
      'DirectMap4k:      100000 kB',
      '',
    ].join('\n'),
    stat: [
      ...['cpu  1 2 3 4 5 6 7 8 0 0', ...Array.from({ length: HOST_CPUS }, (_, i) => `cpu${i} 1 2 3 4 5 6 7 8 0 0`)],
      'intr 12345 1 2 3',
      'ctxt 999',
      'btime 1700000000',
      'processes 4242',
      'procs_running 5',
      'procs_blocked 2',
      'softirq 77 1 2',
      '',
    ].join('\n'),
    diskstats:
      '   8       0 sda 500 1 4000 10 600 2 8000 20 0 30 40 0 0 0 0 5 6\n' +
      '   8      16 sdb 700 1 4000 10 600 2 8000 20 0 30 40 0 0 0 0 5 6\n',
    swaps: 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swapfile                               file\t\t1048576\t\t0\t\t-2\n',
    uptime: '5000.00 9000.00\n',
    loadavg: '9.99 9.99 9.99 9/999 99999\n',
    'pressure/cpu': 'some avg10=9.00 avg60=9.00 avg300=9.00 total=999\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
    'pressure/io': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n',
    'pressure/memory': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=2\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2\n',
  });
  // Tasks: 100 (init, R), 101 (D), 102 (S), 103 (R, in a child cgroup). NSpid ends with the in-container pid.
  const tasks: [number, string, number, number][] = [
    [100, 'R (running)', 1, 90000],
    [101, 'D (disk sleep)', 2, 91000],
    [102, 'S (sleeping)', 3, 95000],
    [103, 'R (running)', 4, 96000],
  ];
  for (const [pid, state, nspid, start] of tasks) {
    f.write(`proc/${pid}/status`, `Name:\tx\nUmask:\t0022\nState:\t${state}\nTgid:\t${pid}\nNSpid:\t${pid}\t${nspid}\n`);
    const fields = Array.from({ length: 50 }, () => '0'); // fields 3, 4, ...
    fields[0] = 'S';
    fields[22 - 3] = String(start); // starttime is field 22
    f.write(`proc/${pid}/stat`, `${pid} (my prog) ${fields.join(' ')}\n`);
  }

  const sys: Files = {
    'cpu/online': '0-7\n',
    'cpu/possible': '0-7\n',
    'cpu/present': '0-7\n',
    'cpu/offline': '\n',
    'cpu/kernel_max': '8191\n',
    'cpu/isolated': '6-7\n',
    'cpu/smt/active': '0\n',
    'cpu/vulnerabilities/meltdown': 'Not affected\n',
    'node/online': '0-1\n',
    'node/possible': '0-1\n',
    'node/has_cpu': '0-1\n',
    'node/has_memory': '0-1\n',
    'node/has_normal_memory': '0-1\n',
    'node/has_generic_initiator': '\n',
  };
  for (let i = 0; i < HOST_CPUS; i++) {
    const pkg = i < 4 ? '0-3' : '4-7';
    Object.assign(sys, {
      [`cpu/cpu${i}/online`]: '1\n',
      [`cpu/cpu${i}/topology/core_id`]: `${i % 4}\n`,
      [`cpu/cpu${i}/topology/physical_package_id`]: `${i < 4 ? 0 : 1}\n`,
      [`cpu/cpu${i}/topology/thread_siblings_list`]: `${i}\n`,
      [`cpu/cpu${i}/topology/core_siblings_list`]: `${pkg}\n`,
      [`cpu/cpu${i}/topology/core_siblings`]: i < 4 ? '0f\n' : 'f0\n',
      [`cpu/cpu${i}/cache/index0/shared_cpu_list`]: `${pkg}\n`,
      [`cpu/cpu${i}/cache/index0/shared_cpu_map`]: i < 4 ? '0f\n' : 'f0\n',
      [`cpu/cpu${i}/cache/index0/size`]: '32K\n',
    });
  }
  for (const n of [0, 1]) {
    Object.assign(sys, {
      [`node/node${n}/cpulist`]: n ? '4-7\n' : '0-3\n',
      [`node/node${n}/cpumap`]: n ? 'f0\n' : '0f\n',
      [`node/node${n}/distance`]: n ? '20 10\n' : '10 20\n',
      [`node/node${n}/numastat`]: `numa_hit ${n + 1}\n`,
      [`node/node${n}/meminfo`]: [
        `Node ${n} MemTotal:        8388608 kB`,
        `Node ${n} MemFree:         4194304 kB`,
        `Node ${n} MemUsed:         4194304 kB`,
        `Node ${n} Active:          1000000 kB`,
        `Node ${n} FilePages:       1000000 kB`,
        `Node ${n} HugePages_Total:     0`,
        '',
      ].join('\n'),
    });
  }
  f.writeAll('sys', sys);
  for (let i = 0; i < HOST_CPUS; i++) {
    const n = i < 4 ? 0 : 1;
    f.link(`sys/cpu/cpu${i}/node${n}`, `../../node/node${n}`);
    f.link(`sys/node/node${n}/cpu${i}`, `../../cpu/cpu${i}`);
  }
}

/** v1 hierarchies: <root>/cg/<ctrl> is the hierarchy root, the container is parent/c1. */
function v1Fixture(f: Fake, o: { cpus?: string; quota?: number; parentQuota?: number } = {}): string[] {
  const c = (ctrl: string) => `cg/${ctrl}/parent/c1`;
  f.writeAll('cg/cpu', { 'cpu.cfs_quota_us': '-1\n', 'cpu.cfs_period_us': '100000\n' });
  f.writeAll('cg/cpu/parent', { 'cpu.cfs_quota_us': `${o.parentQuota ?? -1}\n`, 'cpu.cfs_period_us': '100000\n' });
  f.writeAll(c('cpu'), {
    'cpu.cfs_quota_us': `${o.quota ?? 150000}\n`,
    'cpu.cfs_period_us': '100000\n',
    'cpu.stat': 'nr_periods 1\nnr_throttled 1\nthrottled_time 7000000000\n',
  });
  const usage = Array.from({ length: HOST_CPUS }, (_, i) => {
    const s = 1e9;
    const [u, y] = i === 2 ? [10 * s, 5 * s] : i === 3 ? [4 * s, 1 * s] : i === 4 ? [2 * s, 0] : i === 0 ? [1 * s, 0] : [0, 0];
    return `${i} ${u} ${y}`;
  });
  f.writeAll(c('cpuacct'), {
    'cpuacct.usage_all': `cpu user system\n${usage.join('\n')}\n`,
    'cgroup.procs': '102\n100\n',
    tasks: '100\n101\n102\n',
    'sub/tasks': '103\n',
  });
  f.writeAll(c('cpuset'), { 'cpuset.effective_cpus': `${o.cpus ?? '2-5'}\n`, 'cpuset.cpus': `${o.cpus ?? '2-5'}\n` });
  f.writeAll(c('memory'), {
    'memory.stat': [
      'cache 1',
      'total_cache 31457280',
      'total_rss 62914560',
      'total_rss_huge 0',
      'total_shmem 1048576',
      'total_mapped_file 2097152',
      'total_dirty 4096',
      'total_writeback 0',
      'total_swap 16777216',
      'total_swapcached 0',
      'total_active_anon 52428800',
      'total_inactive_anon 10485760',
      'total_active_file 20971520',
      'total_inactive_file 10485760',
      'total_unevictable 0',
      'hierarchical_memory_limit 268435456',
      'hierarchical_memsw_limit 402653184',
      '',
    ].join('\n'),
    'memory.usage_in_bytes': `${100 * MiB}\n`,
    'memory.limit_in_bytes': '268435456\n',
    'memory.memsw.usage_in_bytes': `${116 * MiB}\n`,
  });
  f.writeAll(c('blkio'), {
    'blkio.throttle.io_service_bytes_recursive': '8:0 Read 1048576\n8:0 Write 2097152\n8:0 Sync 0\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 3145728\nTotal 3145728\n',
    'blkio.throttle.io_serviced_recursive': '8:0 Read 10\n8:0 Write 20\n8:0 Sync 0\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 30\nTotal 30\n',
  });
  f.writeAll(c('unified'), {
    'cpu.pressure': 'some avg10=1.00 avg60=0.50 avg300=0.10 total=3000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=100\n',
    'memory.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=7\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n',
  });
  const lines = ['cgroup_mode v1', `host_proc ${f.proc}`, `host_sys ${f.sys}`, 'fixed_now 1000', 'start_ticks 90000'];
  for (const ctrl of ['cpu', 'cpuacct', 'cpuset', 'memory', 'blkio', 'unified']) {
    lines.push(`cg.${ctrl} ${path.join(f.root, c(ctrl))}`, `root.${ctrl} ${path.join(f.root, 'cg', ctrl)}`);
  }
  return lines;
}

function v2Fixture(f: Fake): string[] {
  const dir = path.join(f.root, 'cg2/parent/c1');
  f.writeAll('cg2/parent', { 'cpu.max': 'max 100000\n', 'memory.max': '536870912\n', 'memory.high': 'max\n', 'memory.swap.max': 'max\n' });
  f.writeAll('cg2/parent/c1', {
    'cpu.max': '250000 100000\n',
    'cpu.stat': 'usage_usec 6000000\nuser_usec 4000000\nsystem_usec 2000000\n',
    'cpu.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
    'cpuset.cpus.effective': '0-7\n',
    'memory.max': 'max\n',
    'memory.high': '314572800\n',
    'memory.current': `${100 * MiB}\n`,
    'memory.swap.max': '67108864\n',
    'memory.swap.current': `${1 * MiB}\n`,
    'memory.stat': [
      `anon ${60 * MiB}`,
      `file ${30 * MiB}`,
      `kernel_stack ${1 * MiB}`,
      `slab ${2 * MiB}`,
      `slab_reclaimable ${1 * MiB}`,
      `slab_unreclaimable ${1 * MiB}`,
      `active_file ${20 * MiB}`,
      `inactive_file ${10 * MiB}`,
      `active_anon ${50 * MiB}`,
      `inactive_anon ${10 * MiB}`,
      '',
    ].join('\n'),
    'io.stat': '8:16 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n',
    'cgroup.threads': '100\n101\n',
    'cgroup.procs': '100\n',
  });
  return ['cgroup_mode v2', `host_proc ${f.proc}`, `host_sys ${f.sys}`, 'fixed_now 1000', 'start_ticks 90000'].concat(
    ['cpu', 'cpuacct', 'cpuset', 'memory', 'blkio', 'pids', 'unified'].flatMap((r) => [`cg.${r} ${dir}`, `root.${r} ${path.join(f.root, 'cg2')}`]),
  );
}

function meminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of text.split('\n')) {
    const m = /^(?:Node \d+ )?([^:]+):\s+(\d+)/.exec(l);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** The kernel's calc_load (kernel/sched/loadavg.c), FSHIFT 11. */
function calcLoad(load: number, exp: number, active: number): number {
  let n = load * exp + active * (2048 - exp);
  if (active >= load) n += 2047;
  return Math.floor(n / 2048);
}
function loadStr(x: number): string {
  const a = x + Math.floor(2048 / 200);
  return `${a >> 11}.${String(((a & 2047) * 100) >> 11).padStart(2, '0')}`;
}

describeIf('vkfs generators, cgroup v1', () => {
  const f = new Fake();
  let base: string[];
  beforeAll(() => {
    hostFixture(f);
    base = v1Fixture(f);
    f.setConf(base);
  });
  afterEach(() => f.setConf(v1Fixture(f))); // tests may change fixture files and the config
  afterAll(() => f.cleanup());

  describe('CPU count', () => {
    // cpuset 2-5 (4 CPUs); quota 150000/100000 -> ceil 2; parent quota as given.
    it.each([
      ['min', {}, 2],
      ['quota', {}, 2],
      ['cpuset', {}, 4],
      ['min', { parentQuota: 100000 }, 1], // hierarchical minimum
      ['min', { quota: 1000 }, 1], // ceil, never 0
      ['quota', { quota: 800000 }, 4], // never more than the cpuset
      ['min', { quota: -1 }, 4], // no quota: the cpuset
      ['cpuset', { cpus: '3' }, 1],
    ] as const)('rule %s with %j gives %d CPUs everywhere', (rule, o, n) => {
      f.setConf([...v1Fixture(f, o), `cpu_rule ${rule}`]);
      const list = n === 1 ? '0\n' : `0-${n - 1}\n`;
      for (const file of ['online', 'possible', 'present', 'enabled']) {
        // enabled does not exist on this fake host: only the three
        if (file === 'enabled') continue;
        expect(f.cat(`sys/cpu/${file}`)).toBe(list);
      }
      expect(f.cat('sys/cpu/offline')).toBe('\n');
      expect(f.ls('sys/cpu').filter((l) => /^d cpu\d+$/.test(l))).toEqual(Array.from({ length: n }, (_, i) => `d cpu${i}`).sort());
      const procs = f.cat('proc/cpuinfo').match(/^processor\t: \d+$/gm);
      expect(procs).toEqual(Array.from({ length: n }, (_, i) => `processor\t: ${i}`));
      expect(f.cat('proc/stat').match(/^cpu\d+ /gm)).toHaveLength(n);
      expect(f.cat('sys/node/node0/cpulist')).toBe(list);
      f.setConf(base);
    });
  });

  it('cpuinfo: the cpuset CPUs, renumbered, with the host flags and visible siblings/cores', () => {
    const text = f.cat('proc/cpuinfo');
    const blocks = text.trim().split('\n\n');
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toContain('apicid\t\t: 2'); // host CPU 2 is processor 0
    expect(blocks[1]).toContain('apicid\t\t: 3');
    expect(blocks[0]).toContain('flags\t\t: fpu sse2 avx2');
    expect(blocks[0]).toContain('siblings\t: 2');
    expect(blocks[0]).toContain('cpu cores\t: 2');
    expect(blocks[0]).toContain('core id\t\t: 2');
  });

  it('meminfo: limit, usage and memory.stat (LXCFS rules), swap from memsw, the rest from the host', () => {
    const m = meminfo(f.cat('proc/meminfo'));
    expect(m.MemTotal).toBe(262144);
    expect(m.MemFree).toBe(159744); // (256 - 100) MiB
    expect(m.MemAvailable).toBe(159744 + 30720); // + active_file + inactive_file
    expect(m.Buffers).toBe(0);
    expect(m.Cached).toBe(30720);
    expect(m.Active).toBe(71680);
    expect(m.AnonPages).toBe(61440);
    expect(m.Dirty).toBe(4);
    expect(m.SwapTotal).toBe(131072); // memsw 384 MiB - mem 256 MiB
    expect(m.SwapFree).toBe(131072 - 16384);
    expect(m.CommitLimit).toBe(131072 + 131072);
    expect(m.Slab).toBe(0); // v1 has no slab counters: no host value either
    expect(m.VmallocTotal).toBe(34359738367); // host-wide, passed through
    expect(m.HugePages_Total).toBe(0);
    expect(f.cat('proc/meminfo')).toMatch(/^MemTotal: {9}262144 kB\n/); // the kernel's layout
  });

  it('meminfo: no limit shows the host total; free never exceeds the host free', () => {
    f.write('cg/memory/parent/c1/memory.stat', 'hierarchical_memory_limit 9223372036854771712\nhierarchical_memsw_limit 9223372036854771712\n');
    const m = meminfo(f.cat('proc/meminfo'));
    expect(m.MemTotal).toBe(16777216);
    expect(m.MemFree).toBe(8388608); // min(16 GiB - 100 MiB, host free 8 GiB)
    expect(m.SwapTotal).toBe(1048576); // memsw unlimited: the host's swap
    v1Fixture(f);
  });

  it('meminfo: without swap accounting (no memsw files) the host swap is shown', () => {
    fs.rmSync(path.join(f.root, 'cg/memory/parent/c1/memory.memsw.usage_in_bytes'));
    const m = meminfo(f.cat('proc/meminfo'));
    expect(m.SwapTotal).toBe(1048576);
    expect(m.SwapFree).toBe(1048576);
  });

  it('uptime and stat: container age, usage per visible CPU (hidden CPUs folded), steal from PSI, idle = rest', () => {
    // age = 1000 - 900 = 100 s; N = 2 (host 2, 3). Host 4 (3rd in the cpuset) and host 0
    // (outside) fold onto CPU 0. Steal: cpu.pressure total 3 s = 300 ticks, split evenly.
    const stat = f.cat('proc/stat').split('\n');
    expect(stat[0]).toBe('cpu  1700 0 600 17400 0 0 0 300 0 0');
    expect(stat[1]).toBe('cpu0 1300 0 500 8050 0 0 0 150 0 0');
    expect(stat[2]).toBe('cpu1 400 0 100 9350 0 0 0 150 0 0');
    expect(stat).toContain('intr 12345 1 2 3');
    expect(stat).toContain('btime 1700000000');
    expect(stat).toContain('procs_running 2'); // tasks 100 and 103 are R
    expect(stat).toContain('procs_blocked 1');
    expect(stat.filter((l) => l.startsWith('cpu'))).toHaveLength(3);
    expect(f.cat('proc/uptime')).toBe('100.00 174.00\n'); // idle = sum of the CPUs' idle
  });

  it('uptime: without a start time, the oldest process in the cgroup', () => {
    f.set('start_ticks', undefined);
    expect(f.cat('proc/uptime')).toMatch(/^100\.00 /); // pid 100 started at 90000 ticks
  });

  it('steal falls back to cpu.stat throttled_time without a cgroup2 directory', () => {
    f.setConf(base.filter((l) => !/^(cg|root)\.unified /.test(l)));
    expect(f.cat('proc/stat').split('\n')[0]).toBe('cpu  1700 0 600 17000 0 0 0 700 0 0'); // 7 s throttled
  });

  it('loadavg: R and D tasks of the cgroup tree, the kernel decay, task count and last pid', () => {
    const active = 3 * 2048; // 100 R, 101 D, 103 R
    const l = [1884, 2014, 2037].map((e) => loadStr(calcLoad(0, e, active)));
    expect(f.cat('proc/loadavg')).toBe(`${l.join(' ')} 2/4 4\n`);
  });

  it('swaps: one virtual device with the container swap', () => {
    expect(f.cat('proc/swaps')).toBe(
      'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n' + `none${' '.repeat(36)}virtual\t131072\t\t16384\t\t-2\n`,
    );
  });

  it('diskstats: devices the container did I/O on, from blkio', () => {
    expect(f.cat('proc/diskstats')).toBe('   8       0 sda 10 0 2048 0 20 0 4096 0 0 0 0 0 0 0 0 0 0\n');
  });

  it('pressure: the cgroup file, else the host file', () => {
    expect(f.cat('proc/pressure/cpu')).toContain('total=3000000');
    expect(f.cat('proc/pressure/io')).toContain('total=1'); // no io.pressure in the cgroup
    expect(() => f.cat('proc/pressure/irq')).toThrow(); // the host has none
  });

  it('sys/cpu: per-CPU dirs from the real CPU, CPU lists renumbered, the rest passed through', () => {
    expect(f.ls('sys/cpu')).toEqual(
      ['d cpu0', 'd cpu1', 'd smt', 'd vulnerabilities', 'f isolated', 'f kernel_max', 'f offline', 'f online', 'f possible', 'f present'].sort(),
    );
    expect(f.ls('sys/cpu/cpu0')).toEqual(['d cache', 'd topology', 'f online', 'l node0']);
    expect(f.cat('sys/cpu/cpu1/topology/core_id')).toBe('3\n'); // host CPU 3
    expect(f.cat('sys/cpu/cpu0/topology/core_siblings_list')).toBe('0-1\n'); // host 0-3 -> visible 2,3
    expect(f.cat('sys/cpu/cpu0/topology/core_siblings')).toBe('3\n');
    expect(f.cat('sys/cpu/cpu0/cache/index0/shared_cpu_map')).toBe('3\n');
    expect(f.cat('sys/cpu/cpu0/cache/index0/size')).toBe('32K\n');
    expect(f.cat('sys/cpu/kernel_max')).toBe('8191\n');
    expect(f.cat('sys/cpu/vulnerabilities/meltdown')).toBe('Not affected\n');
    expect(f.cat('sys/cpu/isolated')).toBe('\n'); // host 6-7 are not visible
    expect(() => f.cat('sys/cpu/cpu2/topology/core_id')).toThrow();
    f.setConf([...v1Fixture(f, { cpus: '4-7', quota: -1 })]);
    expect(f.cat('sys/cpu/isolated')).toBe('2-3\n'); // host 6-7 are visible CPUs 2-3
    v1Fixture(f);
  });

  it('sys/node: one node with the container memory and CPUs, backed by the first CPU\'s node', () => {
    expect(f.ls('sys/node')).toEqual(
      ['d node0', 'f has_cpu', 'f has_generic_initiator', 'f has_memory', 'f has_normal_memory', 'f online', 'f possible'].sort(),
    );
    expect(f.cat('sys/node/online')).toBe('0\n');
    expect(f.cat('sys/node/has_generic_initiator')).toBe('\n');
    const node = f.ls('sys/node/node0');
    expect(node).toEqual(expect.arrayContaining(['l cpu0', 'l cpu1', 'f meminfo', 'f numastat', 'f cpumap']));
    expect(node).not.toContain('l cpu2');
    expect(f.cat('sys/node/node0/cpumap')).toBe('3\n');
    expect(f.cat('sys/node/node0/distance')).toBe('10\n');
    const m = meminfo(f.cat('sys/node/node0/meminfo'));
    expect(m).toMatchObject({ MemTotal: 262144, MemFree: 159744, MemUsed: 262144 - 159744, FilePages: 30720, Active: 71680 });
    expect(f.cat('sys/node/node0/meminfo')).toMatch(/^Node 0 MemTotal: {9}262144 kB\n/);
    expect(f.cat('sys/node/node0/numastat')).toBe('numa_hit 1\n');
    f.setConf(v1Fixture(f, { cpus: '4-7' }));
    expect(f.cat('sys/node/node0/numastat')).toBe('numa_hit 2\n'); // host node1 backs it now
    expect(() => f.cat('sys/node/node1/numastat')).toThrow();
    v1Fixture(f);
  });

  it('policy: view off and excluded files show the host content; changes apply on the next read', () => {
    f.set('view', 'off');
    expect(f.cat('proc/meminfo')).toBe(fs.readFileSync(path.join(f.proc, 'meminfo'), 'utf8'));
    expect(f.cat('sys/cpu/online')).toBe('0-7\n');
    expect(f.ls('sys/cpu').filter((l) => /cpu\d/.test(l))).toHaveLength(8);
    f.setConf([...base, 'files meminfo,sys-node']);
    expect(f.cat('proc/cpuinfo')).toBe(fs.readFileSync(path.join(f.proc, 'cpuinfo'), 'utf8'));
    expect(meminfo(f.cat('proc/meminfo')).MemTotal).toBe(262144);
    expect(f.cat('sys/cpu/online')).toBe('0-7\n');
    expect(f.cat('sys/node/node0/cpulist')).toBe('0-1\n');
  });
});

describeIf('vkfs generators, cgroup v2', () => {
  const f = new Fake();
  beforeAll(() => {
    hostFixture(f);
    f.setConf(v2Fixture(f));
  });
  afterAll(() => f.cleanup());

  it('CPUs from cpu.max (hierarchical) and cpuset.cpus.effective', () => {
    expect(f.cat('sys/cpu/online')).toBe('0-2\n'); // ceil(2.5) = 3 of 8
    f.set('cpu_rule', 'cpuset');
    expect(f.cat('sys/cpu/online')).toBe('0-7\n');
    f.set('cpu_rule', 'min');
  });

  it('memory from memory.max/high up the tree, memory.current and the v2 stat names', () => {
    const m = meminfo(f.cat('proc/meminfo'));
    expect(m.MemTotal).toBe(307200); // min(parent max 512 MiB, own high 300 MiB)
    expect(m.MemFree).toBe(204800);
    expect(m.MemAvailable).toBe(204800 + 31 * 1024); // + file lists + reclaimable slab
    expect(m.KernelStack).toBe(1024);
    expect(m.Slab).toBe(2048);
    expect(m.SwapTotal).toBe(65536);
    expect(m.SwapFree).toBe(64512);
  });

  it('stat: cpu.stat spread evenly over the visible CPUs', () => {
    const stat = f.cat('proc/stat').split('\n');
    expect(stat[0]).toBe(`cpu  400 0 200 ${3 * 10000 - 600} 0 0 0 0 0 0`);
    expect(stat[1]).toBe(`cpu0 134 0 68 ${10000 - 202} 0 0 0 0 0 0`);
    expect(stat[2]).toBe(`cpu1 133 0 66 ${10000 - 199} 0 0 0 0 0 0`);
  });

  it('diskstats from io.stat, loadavg from cgroup.threads', () => {
    expect(f.cat('proc/diskstats')).toBe('   8      16 sdb 1 0 1 0 2 0 2 0 0 0 0 0 0 0 0 0 0\n');
    expect(f.cat('proc/loadavg')).toMatch(/ 1\/2 2\n$/); // 100 R + 101 D; 2 threads; last pid 2
  });
});

describeIf('vkfs snapshot', () => {
  const f = new Fake();
  const out = path.join(f.root, 'snap');
  beforeAll(() => {
    hostFixture(f);
    f.setConf(v1Fixture(f));
  });
  afterAll(() => f.cleanup());
  const snap = () => execFileSync(VKFS, ['snapshot', '--config', f.conf, '--out', out], { encoding: 'utf8' });

  it('writes the whole view as files and rewrites them in place', () => {
    snap();
    const mem = path.join(out, 'proc/meminfo');
    expect(meminfo(fs.readFileSync(mem, 'utf8')).MemTotal).toBe(262144);
    expect(fs.readFileSync(path.join(out, 'sys/cpu/online'), 'utf8')).toBe('0-1\n');
    expect(fs.readlinkSync(path.join(out, 'sys/cpu/cpu0/node0'))).toBe('../../node/node0');
    expect(fs.readlinkSync(path.join(out, 'sys/node/node0/cpu1'))).toBe('../../cpu/cpu1');
    expect(fs.existsSync(path.join(out, 'sys/cpu/cpu1/topology/core_id'))).toBe(true);
    const ino = fs.statSync(mem).ino;

    // Limits change: same inode (containers bind-mount the file itself), new content.
    f.setConf(v1Fixture(f, { cpus: '2-3', quota: -1 }));
    f.write('cg/memory/parent/c1/memory.stat', 'hierarchical_memory_limit 536870912\n');
    f.setConf([...f.confLines, 'cpu_rule cpuset']);
    snap();
    expect(fs.statSync(mem).ino).toBe(ino);
    expect(meminfo(fs.readFileSync(mem, 'utf8')).MemTotal).toBe(524288);
    f.setConf(v1Fixture(f, { cpus: '3' }));
    snap();
    expect(fs.readFileSync(path.join(out, 'sys/cpu/online'), 'utf8')).toBe('0\n');
    expect(fs.existsSync(path.join(out, 'sys/cpu/cpu1'))).toBe(false); // CPUs that left are removed
  });
});
