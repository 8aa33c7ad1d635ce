// vkernel policy annotations, the vkfs config rendering and the bind-mount list.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CgroupDescription } from '../../runtime/cgroups/manager';
import { InvalidArgumentError } from '../../runtime/errors';
import { MS_BIND, MS_RDONLY } from '../../runtime/spec/mount-options';
import {
  ANNOTATIONS,
  DEFAULT_POLICY,
  VIEW_FILES,
  VIRTUAL_SYSCALLS,
  parseSyscalls,
  syscallsValue,
  parseViewPolicy,
  policyToAnnotations,
  unknownVkernelAnnotations,
} from '../../runtime/vkernel/policy';
import { renderConfig, viewMounts } from '../../runtime/vkernel/view';

function errorOf(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error('expected an error');
}

describe('parseViewPolicy', () => {
  it('defaults: view on, min rule, every file, mode auto', () => {
    expect(parseViewPolicy(undefined)).toEqual({ view: true, cpuRule: 'min', files: [...VIEW_FILES], mode: 'auto', syscalls: [...VIRTUAL_SYSCALLS] });
    expect(parseViewPolicy({ 'org.other': 'x' })).toEqual(DEFAULT_POLICY);
  });

  it('reads every annotation', () => {
    const p = parseViewPolicy({
      [ANNOTATIONS.view]: 'off',
      [ANNOTATIONS.cpuRule]: 'quota',
      [ANNOTATIONS.files]: 'meminfo, cpuinfo,sys-cpu',
      [ANNOTATIONS.mode]: 'notify',
      [ANNOTATIONS.syscalls]: 'sched_getaffinity',
    });
    expect(p).toEqual({ view: false, cpuRule: 'quota', files: ['cpuinfo', 'meminfo', 'sys-cpu'], mode: 'notify', syscalls: ['sched_getaffinity'] });
  });

  it('accepts upper case, spaces, "all", duplicates and path spellings', () => {
    expect(parseViewPolicy({ [ANNOTATIONS.view]: ' ON ' }).view).toBe(true);
    expect(parseViewPolicy({ [ANNOTATIONS.cpuRule]: 'CPUSET' }).cpuRule).toBe('cpuset');
    expect(parseViewPolicy({ [ANNOTATIONS.files]: 'all' }).files).toEqual([...VIEW_FILES]);
    expect(parseViewPolicy({ [ANNOTATIONS.files]: 'stat,stat,' }).files).toEqual(['stat']);
    expect(parseViewPolicy({ [ANNOTATIONS.files]: '/proc/meminfo,/sys/devices/system/node/,/proc/pressure' }).files).toEqual([
      'meminfo',
      'pressure',
      'sys-node',
    ]);
  });

  it.each([
    [ANNOTATIONS.view, 'yes', 'must be one of on, off'],
    [ANNOTATIONS.cpuRule, 'shares', 'must be one of cpuset, quota, min'],
    [ANNOTATIONS.mode, 'seccomp', 'must be one of auto, notify, ptrace, preload, off'],
    [ANNOTATIONS.files, 'meminfo,slabinfo', 'unknown file "slabinfo"'],
    [ANNOTATIONS.files, ' , ', 'is empty'],
    [ANNOTATIONS.syscalls, 'sysinfo,uname', 'unknown syscall "uname"; known: all, none, sysinfo, sched_getaffinity'],
    [ANNOTATIONS.syscalls, 'none,sysinfo', 'unknown syscall "none" ("none" goes alone)'],
    [ANNOTATIONS.syscalls, '', 'is empty'],
  ])('rejects %s=%s naming the annotation and the value', (key, value, why) => {
    const e = errorOf(() => parseViewPolicy({ [key]: value }));
    expect(e.message).toContain(`annotation ${key}`);
    expect(e.message).toContain(why);
    expect(e.message).toContain(JSON.stringify(value));
    expect(e.field).toBe(`annotations.${key}`);
  });

  it('io.vkernel.syscalls: all, none, a list (any order, case, spaces), in VIRTUAL_SYSCALLS order', () => {
    expect(parseSyscalls('all')).toEqual(['sysinfo', 'sched_getaffinity']);
    expect(parseSyscalls(' NONE ')).toEqual([]);
    expect(parseSyscalls('sched_getaffinity, SYSINFO,sysinfo')).toEqual(['sysinfo', 'sched_getaffinity']);
    expect(syscallsValue([])).toBe('none');
    expect(syscallsValue(['sysinfo', 'sched_getaffinity'])).toBe('all');
    expect(syscallsValue(['sched_getaffinity'])).toBe('sched_getaffinity');
    expect(syscallsValue(undefined)).toBe('all');
  });

  it('round-trips through annotations', () => {
    const s = parseViewPolicy({ [ANNOTATIONS.syscalls]: 'none' });
    expect(parseViewPolicy(policyToAnnotations(s))).toEqual(s);
    const p = parseViewPolicy({ [ANNOTATIONS.files]: 'uptime,loadavg', [ANNOTATIONS.cpuRule]: 'cpuset' });
    expect(parseViewPolicy(policyToAnnotations(p))).toEqual(p);
    expect(policyToAnnotations(DEFAULT_POLICY)[ANNOTATIONS.files]).toBe('all');
  });

  it('lists unknown io.vkernel.* keys (typos)', () => {
    expect(unknownVkernelAnnotations({ 'io.vkernel.cpurule': 'min', 'io.vkernel.view': 'on', other: 'x' })).toEqual([
      'io.vkernel.cpurule',
    ]);
    expect(unknownVkernelAnnotations({ 'io.vkernel.sysinfo': 'on' }, ['io.vkernel.sysinfo'])).toEqual([]);
  });
});

const v1Desc: CgroupDescription = {
  version: 1,
  mode: 'v1',
  id: 'c1',
  root: '/sys/fs/cgroup',
  cgroupsPath: '/c1',
  paths: {
    cpu: '/sys/fs/cgroup/cpu,cpuacct/c1',
    cpuacct: '/sys/fs/cgroup/cpu,cpuacct/c1',
    cpuset: '/sys/fs/cgroup/cpuset/c1',
    memory: '/sys/fs/cgroup/memory/c1',
    pids: '/sys/fs/cgroup/pids/c1',
    '': '/sys/fs/cgroup/unified/c1',
  },
  mounts: {
    cpu: '/sys/fs/cgroup/cpu,cpuacct',
    cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
    cpuset: '/sys/fs/cgroup/cpuset',
    memory: '/sys/fs/cgroup/memory',
    pids: '/sys/fs/cgroup/pids',
    '': '/sys/fs/cgroup/unified',
  },
  created: [],
};

describe('renderConfig', () => {
  it('maps v1 controllers (and the hybrid unified dir) to roles with their hierarchy roots', () => {
    const text = renderConfig({ policy: DEFAULT_POLICY, cgroup: v1Desc, startTicks: '12345' });
    const lines = text.split('\n');
    expect(lines).toContain('view on');
    expect(lines).toContain('cpu_rule min');
    expect(lines).toContain(`files ${VIEW_FILES.join(',')}`);
    expect(lines).toContain('syscalls all');
    expect(lines).toContain('cgroup_mode v1');
    expect(lines).toContain('cg.cpu /sys/fs/cgroup/cpu,cpuacct/c1');
    expect(lines).toContain('root.cpuacct /sys/fs/cgroup/cpu,cpuacct');
    expect(lines).toContain('cg.unified /sys/fs/cgroup/unified/c1');
    expect(lines).toContain('start_ticks 12345');
    expect(lines.some((l) => l.startsWith('cg.blkio'))).toBe(false); // no blkio controller
  });

  it('points every role at the one v2 directory', () => {
    const v2: CgroupDescription = { ...v1Desc, mode: 'v2', paths: { '': '/sys/fs/cgroup/c1' }, mounts: { '': '/sys/fs/cgroup' } };
    const lines = renderConfig({ policy: DEFAULT_POLICY, cgroup: v2 }).split('\n');
    for (const role of ['cpu', 'cpuacct', 'cpuset', 'memory', 'blkio', 'pids', 'unified']) {
      expect(lines).toContain(`cg.${role} /sys/fs/cgroup/c1`);
      expect(lines).toContain(`root.${role} /sys/fs/cgroup`);
    }
  });

  it('refuses newlines and non-numeric start times', () => {
    const bad: CgroupDescription = { ...v1Desc, paths: { memory: '/x\nview off' }, mounts: {} };
    expect(() => renderConfig({ policy: DEFAULT_POLICY, cgroup: bad })).toThrow(/newline/);
    expect(() => renderConfig({ policy: DEFAULT_POLICY, cgroup: v1Desc, startTicks: '1.5' })).toThrow(/tick count/);
  });
});

describe('viewMounts', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkview-mounts-'));
  const proc = path.join(tmp, 'proc');
  const sys = path.join(tmp, 'sys');
  beforeAll(() => {
    fs.mkdirSync(path.join(proc, 'pressure'), { recursive: true });
    for (const f of ['cpuinfo', 'meminfo', 'stat', 'uptime', 'loadavg', 'swaps']) fs.writeFileSync(path.join(proc, f), '');
    for (const r of ['cpu', 'io', 'memory']) fs.writeFileSync(path.join(proc, 'pressure', r), '');
    fs.mkdirSync(path.join(sys, 'cpu'), { recursive: true }); // no node dir: a kernel without NUMA
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('binds each virtualized file the kernel has, read-only, after nothing else', () => {
    const m = viewMounts('/run/v/view', DEFAULT_POLICY, proc, sys);
    expect(m.map((x) => x.destination)).toEqual([
      '/proc/cpuinfo',
      '/proc/meminfo',
      '/proc/stat',
      '/proc/uptime',
      '/proc/loadavg',
      '/proc/swaps',
      '/proc/pressure/cpu',
      '/proc/pressure/io',
      '/proc/pressure/memory',
      '/sys/devices/system/cpu',
    ]); // no diskstats (absent), no node
    expect(m[1]).toEqual({
      source: '/run/v/view/proc/meminfo',
      destination: '/proc/meminfo',
      fstype: 'bind',
      flags: expect.any(Number),
      propagation: [],
      data: '',
      kind: 'file',
    });
    expect(m[1].flags & (MS_BIND | MS_RDONLY)).toBe(MS_BIND | MS_RDONLY);
    expect(m[9]).toMatchObject({ source: '/run/v/view/sys/cpu', kind: 'dir' });
  });

  it('follows the files policy and view=off', () => {
    const p = parseViewPolicy({ [ANNOTATIONS.files]: 'meminfo,sys-cpu' });
    expect(viewMounts('/v', p, proc, sys).map((x) => x.destination)).toEqual(['/proc/meminfo', '/sys/devices/system/cpu']);
    expect(viewMounts('/v', { ...p, view: false }, proc, sys)).toEqual([]);
  });
});
