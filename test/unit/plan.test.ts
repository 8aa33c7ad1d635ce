import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError } from '../../runtime/errors';
import { buildCreatePlan, buildExecPlan, labelMounts, type CreatePlanContext } from '../../runtime/init/from-spec';
import { encodePlan, frame } from '../../runtime/init/plan';
import type { InitPlan, PlanMount } from '../../runtime/init/plan-types';
import { defaultSpec } from '../../runtime/spec/defaults';
import { MS_BIND, MS_REC } from '../../runtime/spec/mount-options';

function basePlan(over: Partial<InitPlan> = {}): InitPlan {
  return {
    mode: 'create',
    cloneFlags: 0,
    joins: [],
    cgroupProcs: [],
    wait: false,
    syncHooks: false,
    preserveFds: 0,
    rootPropagation: 0,
    mounts: [],
    devices: [],
    symlinks: [],
    maskedPaths: [],
    readonlyPaths: [],
    sysctl: [],
    terminal: false,
    cwd: '/',
    args: ['sh'],
    env: [],
    rlimits: [],
    uid: 0,
    gid: 0,
    additionalGids: [],
    noNewPrivileges: false,
    createContainerHooks: [],
    startContainerHooks: [],
    ...over,
  };
}

/** Decode like vkinit does: [op, ...args] per record. */
function decode(buf: Buffer): string[][] {
  const strs = buf.toString('utf8').split('\0');
  expect(strs.pop()).toBe(''); // every string is NUL-terminated
  const out: string[][] = [];
  for (let i = 0; i < strs.length; ) {
    const op = strs[i++];
    const argc = Number(strs[i++]);
    expect(String(argc)).toMatch(/^\d+$/);
    out.push([op, ...strs.slice(i, i + argc)]);
    i += argc;
  }
  return out;
}

function records(plan: InitPlan, op: string): string[][] {
  return decode(encodePlan(plan))
    .filter((r) => r[0] === op)
    .map((r) => r.slice(1));
}

describe('encodePlan', () => {
  test('minimal plan: fixed records, argc framing, order kept', () => {
    const recs = decode(encodePlan(basePlan({ args: ['sh', '-c', 'echo hi'], env: ['PATH=/bin', 'A=b c'] })));
    expect(recs.map((r) => r[0])).toEqual([
      'mode',
      'clone_flags',
      'preserve_fds',
      'root_propagation',
      'cwd',
      'arg',
      'arg',
      'arg',
      'env',
      'env',
      'user',
      'groups',
    ]);
    expect(recs.filter((r) => r[0] === 'arg').map((r) => r[1])).toEqual(['sh', '-c', 'echo hi']);
    expect(recs.find((r) => r[0] === 'env' && r[1] === 'A=b c')).toBeTruthy();
    expect(recs.find((r) => r[0] === 'groups')).toEqual(['groups']); // argc 0: clear groups
  });

  test('exact bytes of a small record', () => {
    const buf = encodePlan(basePlan());
    expect(buf.subarray(0, 14).toString('latin1')).toBe('mode\x001\x00create\x00');
  });

  test('parent-stage records', () => {
    const plan = basePlan({
      mode: 'exec',
      cloneFlags: 0x20000 | 0x10000000,
      joins: [
        { nstype: 0x10000000, path: '/proc/9/ns/user' },
        { nstype: 0x20000, path: '/proc/9/ns/mnt' },
      ],
      uidMap: '0 1000 1\n',
      gidMap: '0 1000 1\n',
      setgroupsDeny: true,
      cgroupProcs: ['/sys/fs/cgroup/a/cgroup.procs', '/sys/fs/cgroup/b/cgroup.procs'],
      execFifo: '/run/x/exec.fifo',
      consoleSocket: '/tmp/c.sock',
      wait: true,
      syncHooks: true,
      preserveFds: 2,
    });
    expect(records(plan, 'mode')).toEqual([['exec']]);
    expect(records(plan, 'clone_flags')).toEqual([[String(0x10020000)]]);
    expect(records(plan, 'join')).toEqual([
      [String(0x10000000), '/proc/9/ns/user'],
      [String(0x20000), '/proc/9/ns/mnt'],
    ]);
    expect(records(plan, 'uid_map')).toEqual([['0 1000 1\n']]);
    expect(records(plan, 'gid_map')).toEqual([['0 1000 1\n']]);
    expect(records(plan, 'setgroups_deny')).toEqual([[]]);
    expect(records(plan, 'cgroup_procs').map((r) => r[0])).toEqual(plan.cgroupProcs);
    expect(records(plan, 'exec_fifo')).toEqual([['/run/x/exec.fifo']]);
    expect(records(plan, 'console_socket')).toEqual([['/tmp/c.sock']]);
    expect(records(plan, 'wait')).toEqual([[]]);
    expect(records(plan, 'sync_hooks')).toEqual([[]]);
    expect(records(plan, 'preserve_fds')).toEqual([['2']]);
  });

  test('mounts, devices and rootfs records', () => {
    const plan = basePlan({
      rootfs: '/b/rootfs',
      rootReadonly: true,
      noPivot: true,
      rootPropagation: 0x80000 | 0x4000,
      mounts: [
        { source: 'proc', destination: '/proc', fstype: 'proc', flags: 0xe, propagation: [], data: '', kind: 'dir' },
        {
          source: '/host/f',
          destination: '/etc/f',
          fstype: 'bind',
          flags: 0x1000 | 0x4000 | 1,
          propagation: [0x100000 | 0x4000, 0x40000],
          data: '',
          kind: 'file',
        },
        // bit 31 set: computed with `|` in JS this is negative; it must go out unsigned
        { source: 't', destination: '/t', fstype: 'tmpfs', flags: 1 | (1 << 31), propagation: [], data: 'size=1k,mode=755', kind: 'dir' },
      ],
      devices: [
        { path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o20666, uid: 0, gid: 0, bind: false },
        { path: '/dev/fuse', type: 'c', major: 10, minor: 229, mode: 0o600, uid: 5, gid: 6, bind: true },
      ],
      symlinks: [['/proc/self/fd', '/dev/fd']],
      maskedPaths: ['/proc/kcore'],
      readonlyPaths: ['/proc/sys', '/proc/bus'],
      sysctl: [['kernel/shmmax', '65536']],
      hostname: 'h',
      domainname: 'd',
    });
    expect(records(plan, 'rootfs')).toEqual([['/b/rootfs']]);
    expect(records(plan, 'root_readonly')).toEqual([[]]);
    expect(records(plan, 'no_pivot')).toEqual([[]]);
    expect(records(plan, 'root_propagation')).toEqual([[String(0x84000)]]);
    expect(records(plan, 'mount')).toEqual([
      ['proc', '/proc', 'proc', '14', '', '', 'dir'],
      ['/host/f', '/etc/f', 'bind', String(0x5001), `${0x104000},${0x40000}`, '', 'file'],
      ['t', '/t', 'tmpfs', String(0x80000001), '', 'size=1k,mode=755', 'dir'],
    ]);
    expect(records(plan, 'device')).toEqual([
      ['/dev/null', 'c', '1', '3', String(0o666), '0', '0', 'mknod'],
      ['/dev/fuse', 'c', '10', '229', String(0o600), '5', '6', 'bind'],
    ]);
    expect(records(plan, 'symlink')).toEqual([['/proc/self/fd', '/dev/fd']]);
    expect(records(plan, 'masked')).toEqual([['/proc/kcore']]);
    expect(records(plan, 'readonly')).toEqual([['/proc/sys'], ['/proc/bus']]);
    expect(records(plan, 'sysctl')).toEqual([['kernel/shmmax', '65536']]);
    expect(records(plan, 'hostname')).toEqual([['h']]);
    expect(records(plan, 'domainname')).toEqual([['d']]);
  });

  test('process records', () => {
    const plan = basePlan({
      terminal: true,
      consoleSize: { rows: 24, cols: 80 },
      cwd: '/work',
      rlimits: [{ resource: 7, soft: '1024', hard: '18446744073709551615' }],
      oomScoreAdj: -500,
      uid: 1000,
      gid: 100,
      additionalGids: [10, 20],
      umask: 0o22,
      caps: { bounding: 'A80425FB', effective: '0', inheritable: '0', permitted: 'a80425fb', ambient: '0', lastCap: 40 },
      noNewPrivileges: true,
      createContainerHooks: [{ path: '/bin/hook', args: ['hook', 'a'], env: ['X=1'], timeout: 5 }],
      startContainerHooks: [{ path: '/bin/start', args: [], env: [], timeout: 0 }],
      seccompBpf: '/run/x/seccomp.bpf',
      seccompFlags: 2,
    });
    expect(records(plan, 'terminal')).toEqual([[]]);
    expect(records(plan, 'console_size')).toEqual([['24', '80']]);
    expect(records(plan, 'cwd')).toEqual([['/work']]);
    expect(records(plan, 'rlimit')).toEqual([['7', '1024', '18446744073709551615']]);
    expect(records(plan, 'oom_score_adj')).toEqual([['-500']]);
    expect(records(plan, 'user')).toEqual([['1000', '100']]);
    expect(records(plan, 'groups')).toEqual([['10', '20']]);
    expect(records(plan, 'umask')).toEqual([['18']]);
    expect(records(plan, 'caps')).toEqual([['a80425fb', '0', '0', 'a80425fb', '0', '40']]);
    expect(records(plan, 'no_new_privs')).toEqual([[]]);
    expect(records(plan, 'hook')).toEqual([
      ['createContainer', '5', '/bin/hook', '2', 'hook', 'a', 'X=1'],
      // no args: argv[0] defaults to the path
      ['startContainer', '0', '/bin/start', '1', '/bin/start'],
    ]);
    expect(records(plan, 'seccomp')).toEqual([['/run/x/seccomp.bpf', '2']]);
  });

  test('session keyring, loopback and seccomp listener records', () => {
    const plan = basePlan({
      sessionKeyring: { name: '_ses.c1', addPerm: 0x80000 },
      loopbackUp: true,
      seccompBpf: '/run/x/seccomp.bpf',
      seccompFlags: 8,
      seccompListener: '/run/agent.sock',
    });
    expect(records(plan, 'session_keyring')).toEqual([['_ses.c1', String(0x80000)]]);
    expect(records(plan, 'loopback_up')).toEqual([[]]);
    expect(records(plan, 'seccomp')).toEqual([['/run/x/seccomp.bpf', '8']]);
    expect(records(plan, 'seccomp_listener')).toEqual([['/run/agent.sock']]);
    const none = basePlan();
    for (const op of ['session_keyring', 'loopback_up', 'seccomp_listener']) expect(records(none, op)).toEqual([]);
    expect(() => encodePlan(basePlan({ sessionKeyring: { name: '', addPerm: 0 } }))).toThrow(InvalidArgumentError);
    expect(() => encodePlan(basePlan({ sessionKeyring: { name: 'k', addPerm: 2 ** 32 } }))).toThrow(InvalidArgumentError);
  });

  test('apparmor_profile and selinux_label records: one argument each, absent when unset or empty', () => {
    const label = 'system_u:system_r:container_t:s0:c1,c2';
    const plan = basePlan({ apparmorProfile: 'docker-default', selinuxLabel: label });
    expect(records(plan, 'apparmor_profile')).toEqual([['docker-default']]);
    expect(records(plan, 'selinux_label')).toEqual([[label]]);
    for (const p of [basePlan(), basePlan({ apparmorProfile: '', selinuxLabel: '' })]) {
      expect(records(p, 'apparmor_profile')).toEqual([]);
      expect(records(p, 'selinux_label')).toEqual([]);
    }
    expect(() => encodePlan(basePlan({ apparmorProfile: 'a\0b' }))).toThrow(InvalidArgumentError);
  });

  test('strings keep any byte but NUL', () => {
    const plan = basePlan({ args: ['echo', 'héllo wörld\n\ttab', ''], env: ['E=a=b'] });
    expect(records(plan, 'arg').map((r) => r[0])).toEqual(['echo', 'héllo wörld\n\ttab', '']);
    expect(records(plan, 'env')).toEqual([['E=a=b']]);
  });

  test('rejects what vkinit could not read', () => {
    expect(() => encodePlan(basePlan({ args: ['a\0b'] }))).toThrow(InvalidArgumentError);
    expect(() => encodePlan(basePlan({ uid: -1 }))).toThrow(InvalidArgumentError);
    expect(() => encodePlan(basePlan({ uid: 1.5 }))).toThrow(InvalidArgumentError);
    expect(() => encodePlan(basePlan({ rlimits: [{ resource: 7, soft: '-1', hard: '1' }] }))).toThrow(InvalidArgumentError);
    expect(() => encodePlan(basePlan({ rlimits: [{ resource: 7, soft: '18446744073709551616', hard: '1' }] }))).toThrow(
      InvalidArgumentError,
    );
    expect(() =>
      encodePlan(basePlan({ caps: { bounding: '0x1', effective: '0', inheritable: '0', permitted: '0', ambient: '0', lastCap: 40 } })),
    ).toThrow(InvalidArgumentError);
  });
});

describe('frame', () => {
  test('length header in bytes, then the body', () => {
    expect(frame(Buffer.from('abc')).toString()).toBe('3\nabc');
    expect(frame('go\n{"a":"é"}').toString()).toBe('13\ngo\n{"a":"é"}');
    expect(frame(Buffer.alloc(0)).toString()).toBe('0\n');
    const body = encodePlan(basePlan());
    const f = frame(body);
    const nl = f.indexOf(0x0a);
    expect(Number(f.subarray(0, nl).toString())).toBe(body.length);
    expect(f.subarray(nl + 1).equals(body)).toBe(true);
  });
});

describe('LSM fields from the spec', () => {
  const LABEL = 'system_u:object_r:container_file_t:s0:c1,c2';
  let tmp: string;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vk-plan-lsm-'));
    fs.mkdirSync(path.join(tmp, 'rootfs'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function ctx(): CreatePlanContext {
    return {
      bundle: tmp,
      execFifo: '/run/vkernel/c1/exec.fifo',
      cgroupProcs: [],
      noPivot: false,
      preserveFds: 0,
      wait: false,
      capLastCap: 40,
      probe: { cgroup2Unified: () => true, kcoreExists: () => false, runningInUserNs: () => false, geteuid: () => 0 },
    };
  }

  function m(fstype: string, data = '', flags = 0): PlanMount {
    return { source: fstype, destination: `/${fstype}`, fstype, flags, propagation: [], data, kind: 'dir' };
  }

  test('labelMounts: context="<label>" after the data of all but binds, proc, sysfs, cgroup and mqueue (runc\'s FormatMountLabel)', () => {
    const mounts = [
      m('tmpfs', 'mode=755,size=65536k'),
      m('devpts', ''),
      m('mqueue'),
      m('proc'),
      m('sysfs'),
      m('cgroup', 'memory'),
      m('cgroup2'),
      m('bind', '', MS_BIND | MS_REC),
      { ...m('', ''), fstype: '', flags: MS_BIND },
    ];
    labelMounts(mounts, LABEL);
    expect(mounts.map((x) => x.data)).toEqual([
      `mode=755,size=65536k,context="${LABEL}"`,
      `context="${LABEL}"`,
      '', // mqueue: labelled after the mount (mount_label)
      '',
      '',
      'memory',
      '',
      '',
      '',
    ]);
  });

  test('labelMounts: nothing without a label', () => {
    const mounts = [m('tmpfs', 'mode=755')];
    labelMounts(mounts, undefined);
    labelMounts(mounts, '');
    expect(mounts[0].data).toBe('mode=755');
  });

  test('create: the profile, the label and mountLabel reach the plan', () => {
    const s = defaultSpec({});
    s.process!.apparmorProfile = 'docker-default';
    s.process!.selinuxLabel = 'system_u:system_r:container_t:s0:c1,c2';
    s.linux!.mountLabel = LABEL;
    const plan = buildCreatePlan(s, ctx());
    expect(plan.apparmorProfile).toBe('docker-default');
    expect(plan.selinuxLabel).toBe('system_u:system_r:container_t:s0:c1,c2');
    const data = Object.fromEntries(plan.mounts.map((x) => [x.destination, x.data]));
    expect(data['/dev']).toBe(`mode=755,size=65536k,context="${LABEL}"`);
    expect(data['/dev/pts'].startsWith('newinstance,')).toBe(true);
    expect(data['/dev/pts'].endsWith(`,context="${LABEL}"`)).toBe(true);
    expect(data['/dev/shm']).toContain(`context="${LABEL}"`);
    expect(data['/dev/mqueue']).toBe(''); // labelled after the mount instead (mount_label)
    expect(plan.mountLabel).toBe(LABEL);
    expect(data['/proc']).toBe('');
    expect(data['/sys']).toBe('');
    expect(data['/sys/fs/cgroup']).not.toContain('context=');
    // the records vkinit gets
    const recs = decode(encodePlan(plan));
    expect(recs.filter((r) => r[0] === 'apparmor_profile')).toEqual([['apparmor_profile', 'docker-default']]);
    expect(recs.filter((r) => r[0] === 'mount_label')).toEqual([['mount_label', LABEL]]);

    const plain = buildCreatePlan(defaultSpec({}), ctx());
    expect(plain.apparmorProfile).toBeUndefined();
    expect(plain.selinuxLabel).toBeUndefined();
    expect(plain.mountLabel).toBeUndefined();
    expect(plain.mounts.some((x) => x.data.includes('context='))).toBe(false);
  });

  test('exec: the process\'s own profile and label, else the container\'s (as runc, also for --process)', () => {
    const container = defaultSpec({});
    container.process!.apparmorProfile = 'container-profile';
    container.process!.selinuxLabel = 'system_u:system_r:container_t:s0:c5';
    const base = { pid: process.pid, spec: container, cgroupProcs: [], preserveFds: 0, wait: false, capLastCap: 40 };
    const bare = { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/' };
    const inherited = buildExecPlan(bare, base);
    expect(inherited.apparmorProfile).toBe('container-profile');
    expect(inherited.selinuxLabel).toBe('system_u:system_r:container_t:s0:c5');
    const own = buildExecPlan({ ...bare, apparmorProfile: 'exec-profile', selinuxLabel: 'system_u:system_r:other_t:s0' }, base);
    expect(own.apparmorProfile).toBe('exec-profile');
    expect(own.selinuxLabel).toBe('system_u:system_r:other_t:s0');
    const none = buildExecPlan(bare, { ...base, spec: defaultSpec({}) });
    expect(none.apparmorProfile).toBeUndefined();
    expect(none.selinuxLabel).toBeUndefined();
  });
});
