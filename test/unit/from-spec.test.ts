// Translation of config.json into the InitPlan, with the host facts faked where they
// matter (cgroup layout, kcore, namespace identities).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError } from '../../runtime/errors';
import {
  buildCaps,
  buildCreatePlan,
  buildExecPlan,
  cgroupV1Hierarchies,
  finalEnv,
  homeFromPasswd,
  resolveInRoot,
  type CreatePlanContext,
  type HostProbe,
} from '../../runtime/init/from-spec';
import { defaultSpec } from '../../runtime/spec/defaults';
import {
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_SHARED,
  MS_SLAVE,
  MS_STRICTATIME,
} from '../../runtime/spec/mount-options';
import {
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
  CLONE_NEWCGROUP,
} from '../../runtime/spec/namespaces';
import type { Spec } from '../../runtime/spec/types';

const MOUNTINFO = [
  '25 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  '42 25 0:32 / /mnt/other\\040memory rw,relatime - cgroup cgroup rw,memory',
].join('\n');
const SELF_CGROUP = ['3:name=systemd:/user.slice', '2:cpu,cpuacct:/', '1:memory:/mine', '0::/'].join('\n');

const PROBE: Partial<HostProbe> = {
  mountinfo: () => MOUNTINFO,
  selfCgroup: () => SELF_CGROUP,
  kcoreExists: () => false,
  runningInUserNs: () => false,
  cgroup2Unified: () => false,
  geteuid: () => 0,
};

let tmp: string;
let bundle: string;
let rootfs: string;

beforeAll(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vk-plan-')));
  bundle = path.join(tmp, 'bundle');
  rootfs = path.join(bundle, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(bundle, 'data'));
  fs.writeFileSync(path.join(bundle, 'hosts'), '127.0.0.1 localhost\n');
  fs.writeFileSync(
    path.join(rootfs, 'etc', 'passwd'),
    '# comment\nroot:x:0:0:root:/root:/bin/sh\nfoo:x:1000:1000::/home/foo:/bin/sh\nfoo2:x:1000:1000::/home/second:/bin/sh\nnohome:x:1001:1001:::/bin/sh\n',
  );
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function spec(): Spec {
  const s = defaultSpec({});
  s.process!.terminal = false;
  return s;
}

function ctx(over: Partial<CreatePlanContext> = {}): CreatePlanContext {
  return {
    bundle,
    execFifo: '/run/vkernel/c1/exec.fifo',
    cgroupProcs: ['/sys/fs/cgroup/memory/vkernel/c1/cgroup.procs', '/sys/fs/cgroup/cpu,cpuacct/vkernel/c1/cgroup.procs'],
    noPivot: false,
    preserveFds: 0,
    wait: false,
    capLastCap: 40,
    probe: PROBE,
    ...over,
  };
}

describe('buildCreatePlan with runc defaults', () => {
  test('namespaces, root, propagation and process', () => {
    const plan = buildCreatePlan(spec(), ctx({ consoleSocket: '/tmp/console.sock', preserveFds: 2, wait: true }));
    expect(plan.mode).toBe('create');
    expect(plan.cloneFlags).toBe(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS);
    expect(plan.joins).toEqual([]);
    expect(plan.uidMap).toBeUndefined();
    expect(plan.rootfs).toBe(rootfs);
    expect(plan.rootReadonly).toBe(true);
    expect(plan.rootPropagation).toBe(MS_SLAVE | MS_REC);
    expect(plan.execFifo).toBe('/run/vkernel/c1/exec.fifo');
    expect(plan.consoleSocket).toBe('/tmp/console.sock');
    expect(plan.preserveFds).toBe(2);
    expect(plan.wait).toBe(true);
    expect(plan.syncHooks).toBe(false);
    expect(plan.hostname).toBe('runc');
    expect(plan.domainname).toBeUndefined();
    expect(plan.args).toEqual(['sh']);
    expect(plan.cwd).toBe('/');
    expect(plan.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm', 'HOME=/root']);
    expect(plan.uid).toBe(0);
    expect(plan.gid).toBe(0);
    expect(plan.additionalGids).toEqual([]);
    expect(plan.umask).toBeUndefined();
    expect(plan.oomScoreAdj).toBeUndefined();
    expect(plan.noNewPrivileges).toBe(true);
    expect(plan.rlimits).toEqual([{ resource: 7, soft: '1024', hard: '1024' }]);
    expect(plan.caps).toEqual({
      bounding: '0000000020000420',
      effective: '0000000020000420',
      inheritable: '0000000000000000',
      permitted: '0000000020000420',
      ambient: '0000000000000000', // not inheritable: runc's raise fails silently
      lastCap: 40,
    });
    expect(plan.maskedPaths).toContain('/proc/kcore');
    expect(plan.readonlyPaths).toEqual(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    expect(plan.sysctl).toEqual([]);
    expect(plan.seccompBpf).toBeUndefined();
  });

  test('mounts, including the cgroup v1 tmpfs + bind emulation', () => {
    const plan = buildCreatePlan(spec(), ctx());
    const byDest = new Map(plan.mounts.map((m) => [m.destination, m]));
    expect(byDest.get('/proc')).toEqual({ source: 'proc', destination: '/proc', fstype: 'proc', flags: 0, propagation: [], data: '', kind: 'dir' });
    expect(byDest.get('/dev')).toEqual({
      source: 'tmpfs', destination: '/dev', fstype: 'tmpfs', flags: MS_NOSUID | MS_STRICTATIME, propagation: [], data: 'mode=755,size=65536k', kind: 'dir',
    });
    expect(byDest.get('/dev/pts')!.data).toBe('newinstance,ptmxmode=0666,mode=0620,gid=5');
    expect(byDest.get('/sys')!.flags).toBe(MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY);
    const cg = plan.mounts.filter((m) => m.destination.startsWith('/sys/fs/cgroup'));
    const ro = MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY;
    expect(cg).toEqual([
      { source: 'tmpfs', destination: '/sys/fs/cgroup', fstype: 'tmpfs', flags: MS_NOEXEC | MS_NOSUID | MS_NODEV, propagation: [], data: 'mode=755', kind: 'dir' },
      // the container's own cgroup, from the cgroup manager's procs files
      { source: '/sys/fs/cgroup/cpu,cpuacct/vkernel/c1', destination: '/sys/fs/cgroup/cpu,cpuacct', fstype: 'bind', flags: MS_BIND | MS_REC | ro, propagation: [], data: '', kind: 'dir' },
      { source: '/sys/fs/cgroup/memory/vkernel/c1', destination: '/sys/fs/cgroup/memory', fstype: 'bind', flags: MS_BIND | MS_REC | ro, propagation: [], data: '', kind: 'dir' },
      // a hierarchy the manager does not place us in: our own cgroup there
      { source: '/sys/fs/cgroup/systemd/user.slice', destination: '/sys/fs/cgroup/systemd', fstype: 'bind', flags: MS_BIND | MS_REC | ro, propagation: [], data: '', kind: 'dir' },
    ]);
    expect(plan.symlinks.slice(0, 2)).toEqual([
      ['cpu,cpuacct', '/sys/fs/cgroup/cpu'],
      ['cpu,cpuacct', '/sys/fs/cgroup/cpuacct'],
    ]);
  });

  test('cgroup mounts inside a cgroup namespace mount the hierarchies themselves', () => {
    const s = spec();
    s.linux!.namespaces!.push({ type: 'cgroup' });
    const plan = buildCreatePlan(s, ctx());
    expect(plan.cloneFlags & CLONE_NEWCGROUP).toBe(CLONE_NEWCGROUP);
    const cg = plan.mounts.filter((m) => m.destination.startsWith('/sys/fs/cgroup/'));
    const flags = MS_NOEXEC | MS_NOSUID | MS_NODEV | MS_RDONLY;
    expect(cg).toEqual([
      { source: 'cgroup', destination: '/sys/fs/cgroup/cpu,cpuacct', fstype: 'cgroup', flags, propagation: [], data: 'cpu,cpuacct', kind: 'dir' },
      { source: 'cgroup', destination: '/sys/fs/cgroup/memory', fstype: 'cgroup', flags, propagation: [], data: 'memory', kind: 'dir' },
      { source: 'systemd', destination: '/sys/fs/cgroup/systemd', fstype: 'cgroup', flags, propagation: [], data: 'name=systemd', kind: 'dir' },
    ]);
  });

  test('on a unified cgroup v2 host the cgroup mount is a cgroup2 mount', () => {
    const plan = buildCreatePlan(spec(), ctx({ probe: { ...PROBE, cgroup2Unified: () => true } }));
    const cg = plan.mounts.filter((m) => m.destination.startsWith('/sys/fs/cgroup'));
    expect(cg).toHaveLength(1);
    expect(cg[0].fstype).toBe('cgroup2');
  });

  test('default devices and /dev symlinks', () => {
    const plan = buildCreatePlan(spec(), ctx());
    expect(plan.devices.map((d) => [d.path, d.major, d.minor])).toEqual([
      ['/dev/null', 1, 3],
      ['/dev/random', 1, 8],
      ['/dev/full', 1, 7],
      ['/dev/tty', 5, 0],
      ['/dev/zero', 1, 5],
      ['/dev/urandom', 1, 9],
    ]);
    for (const d of plan.devices) expect(d).toMatchObject({ type: 'c', mode: 0o666, uid: 0, gid: 0, bind: false });
    expect(plan.symlinks.slice(2)).toEqual([
      ['pts/ptmx', '/dev/ptmx'],
      ['/proc/self/fd', '/dev/fd'],
      ['/proc/self/fd/0', '/dev/stdin'],
      ['/proc/self/fd/1', '/dev/stdout'],
      ['/proc/self/fd/2', '/dev/stderr'],
    ]);
    const withCore = buildCreatePlan(spec(), ctx({ probe: { ...PROBE, kcoreExists: () => true } }));
    expect(withCore.symlinks[withCore.symlinks.length - 1]).toEqual(['/proc/kcore', '/dev/core']);
  });

  test('spec devices: override defaults, u is a char device, type bits are stripped', () => {
    const s = spec();
    s.linux!.devices = [
      { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o20600, uid: 5, gid: 6 },
      { path: '/dev/fuse', type: 'u', major: 10, minor: 229 },
      { path: '/dev/fifo', type: 'p' },
    ];
    const plan = buildCreatePlan(s, ctx());
    expect(plan.devices.map((d) => d.path)).toEqual(['/dev/random', '/dev/full', '/dev/tty', '/dev/zero', '/dev/urandom', '/dev/null', '/dev/fuse', '/dev/fifo']);
    expect(plan.devices[5]).toEqual({ path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o600, uid: 5, gid: 6, bind: false });
    expect(plan.devices[6]).toMatchObject({ type: 'c', major: 10, minor: 229, mode: 0o666 });
    expect(plan.devices[7]).toMatchObject({ type: 'p', major: 0, minor: 0 });
  });

  test('a bind-mounted /dev: no devices and no /dev symlinks, as runc', () => {
    const s = spec();
    s.mounts!.splice(1, 1, { destination: '/dev', source: '/dev', options: ['rbind'] });
    const plan = buildCreatePlan(s, ctx());
    expect(plan.devices).toEqual([]);
    expect(plan.symlinks.some(([, l]) => l.startsWith('/dev/'))).toBe(false);
  });

  test('bind mounts: bundle-relative sources, file vs dir, propagation', () => {
    const s = spec();
    s.mounts!.push({ destination: '/etc/hosts', source: 'hosts', type: 'none', options: ['bind', 'ro'] });
    s.mounts!.push({ destination: '/data/./x/', source: 'data', type: 'bind', options: ['rbind', 'rshared', 'nosuid'] });
    const plan = buildCreatePlan(s, ctx());
    const hosts = plan.mounts.find((m) => m.destination === '/etc/hosts')!;
    expect(hosts).toEqual({ source: path.join(bundle, 'hosts'), destination: '/etc/hosts', fstype: 'bind', flags: MS_BIND | MS_RDONLY, propagation: [], data: '', kind: 'file' });
    const data = plan.mounts.find((m) => m.destination === '/data/x')!;
    expect(data).toEqual({
      source: path.join(bundle, 'data'), destination: '/data/x', fstype: 'bind', flags: MS_BIND | MS_REC | MS_NOSUID, propagation: [MS_SHARED | MS_REC], data: '', kind: 'dir',
    });
    s.mounts!.push({ destination: '/gone', source: 'missing', options: ['bind'] });
    expect(() => buildCreatePlan(s, ctx())).toThrow(InvalidArgumentError);
  });

  test('read-only tmpfs mounts are mounted writable and made read-only last', () => {
    const s = spec();
    s.mounts!.push({ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'nosuid'] });
    const plan = buildCreatePlan(s, ctx());
    const run = plan.mounts.find((m) => m.destination === '/run')!;
    expect(run.flags).toBe(MS_NOSUID);
    expect(plan.readonlyPaths[plan.readonlyPaths.length - 1]).toBe('/run');
  });

  test('user namespace: maps, bind devices, joins ordered user first and mount last', () => {
    const s = spec();
    s.linux!.namespaces = [
      { type: 'mount', path: '/proc/self/ns/mnt' },
      { type: 'pid' },
      { type: 'network', path: '/var/run/netns/x' },
      { type: 'user' },
      { type: 'uts', path: '/proc/self/ns/uts' },
    ];
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }, { containerID: 65536, hostID: 1000, size: 1 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    const plan = buildCreatePlan(s, ctx());
    expect(plan.cloneFlags).toBe(CLONE_NEWPID | CLONE_NEWUSER);
    expect(plan.joins).toEqual([
      { nstype: CLONE_NEWUTS, path: '/proc/self/ns/uts' },
      { nstype: CLONE_NEWNET, path: '/var/run/netns/x' },
      { nstype: CLONE_NEWNS, path: '/proc/self/ns/mnt' },
    ]);
    expect(plan.uidMap).toBe('0 100000 65536\n65536 1000 1\n');
    expect(plan.gidMap).toBe('0 100000 65536\n');
    expect(plan.setgroupsDeny).toBeUndefined();
    expect(plan.devices.every((d) => d.bind)).toBe(true);
    const rootless = buildCreatePlan(s, ctx({ probe: { ...PROBE, geteuid: () => 1000 } }));
    expect(rootless.setgroupsDeny).toBe(true);
    const nested = buildCreatePlan(spec(), ctx({ probe: { ...PROBE, runningInUserNs: () => true } }));
    expect(nested.devices.every((d) => d.bind)).toBe(true);
  });

  test('joining a user namespace by path writes no maps', () => {
    const s = spec();
    s.linux!.namespaces!.push({ type: 'user', path: '/proc/self/ns/user' });
    const plan = buildCreatePlan(s, ctx());
    expect(plan.uidMap).toBeUndefined();
    expect(plan.joins[0]).toEqual({ nstype: CLONE_NEWUSER, path: '/proc/self/ns/user' });
  });

  test('rootfsPropagation and no-pivot', () => {
    const s = spec();
    s.linux!.rootfsPropagation = 'rshared';
    expect(buildCreatePlan(s, ctx()).rootPropagation).toBe(MS_SHARED | MS_REC);
    expect(buildCreatePlan(s, ctx({ noPivot: true })).noPivot).toBe(true);
    s.linux!.rootfsPropagation = 'private';
    expect(buildCreatePlan(s, ctx()).rootPropagation).toBe(MS_PRIVATE);
    expect(() => buildCreatePlan(s, ctx({ noPivot: true }))).toThrow('linux.rootfsPropagation');
  });

  test('process details: user, umask, oom, console size, rlimits, sysctl', () => {
    const s = spec();
    const p = s.process!;
    p.user = { uid: 1000, gid: 1000, umask: 0o27, additionalGids: [10, 20] };
    p.oomScoreAdj = -500;
    p.terminal = true;
    p.consoleSize = { height: 40, width: 120 };
    p.rlimits = [
      { type: 'RLIMIT_CORE', soft: 0, hard: 18446744073709551615 },
      { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
    ];
    s.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '65536' };
    s.domainname = 'example.org';
    const plan = buildCreatePlan(s, ctx());
    expect(plan).toMatchObject({ uid: 1000, gid: 1000, umask: 0o27, additionalGids: [10, 20], oomScoreAdj: -500, terminal: true, domainname: 'example.org' });
    expect(plan.consoleSize).toEqual({ rows: 40, cols: 120 });
    expect(plan.rlimits).toEqual([
      { resource: 4, soft: '0', hard: '18446744073709551615' },
      { resource: 6, soft: '100', hard: '200' },
    ]);
    expect(plan.sysctl).toEqual([['net/ipv4/ip_forward', '1'], ['kernel/shmmax', '65536']]);
    expect(plan.env).toContain('HOME=/home/foo'); // first passwd entry for uid 1000
    p.terminal = false;
    expect(buildCreatePlan(s, ctx()).consoleSize).toBeUndefined();
  });

  test('capabilities: none at all drops everything; ambient needs inheritable; lastCap masks', () => {
    const s = spec();
    delete s.process!.capabilities;
    const none = buildCreatePlan(s, ctx()).caps!;
    expect([none.bounding, none.effective, none.inheritable, none.permitted, none.ambient]).toEqual(Array(5).fill('0000000000000000'));
    s.process!.capabilities = {
      bounding: ['CAP_KILL', 'CAP_BPF'],
      permitted: ['CAP_KILL', 'CAP_BPF'],
      inheritable: ['CAP_KILL', 'CAP_BPF'],
      ambient: ['CAP_KILL', 'CAP_BPF'],
    };
    const caps = buildCreatePlan(s, ctx({ capLastCap: 38 })).caps!;
    expect(caps).toEqual({
      bounding: '0000000000000020',
      effective: '0000000000000000',
      inheritable: '0000000000000020',
      permitted: '0000000000000020',
      ambient: '0000000000000020',
      lastCap: 38,
    });
    expect(buildCaps({ ambient: ['CAP_KILL'], permitted: ['CAP_KILL'] }, 40).ambient).toBe('0000000000000000');
  });

  test('hooks and syncHooks', () => {
    const s = spec();
    s.hooks = { poststop: [{ path: '/bin/true' }] };
    expect(buildCreatePlan(s, ctx()).syncHooks).toBe(true);
    s.hooks = {
      createContainer: [{ path: '/bin/hook', args: ['hook', 'create'], env: ['A=1'], timeout: 5 }],
      startContainer: [{ path: '/bin/start' }],
    };
    const plan = buildCreatePlan(s, ctx());
    expect(plan.syncHooks).toBe(true);
    expect(plan.createContainerHooks).toEqual([{ path: '/bin/hook', args: ['hook', 'create'], env: ['A=1'], timeout: 5 }]);
    expect(plan.startContainerHooks).toEqual([{ path: '/bin/start', args: ['/bin/start'], env: [], timeout: 0 }]);
    s.hooks = {};
    expect(buildCreatePlan(s, ctx()).syncHooks).toBe(false);
  });

  test('seccomp: the compiled program and its flags', () => {
    const s = spec();
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW' };
    expect(buildCreatePlan(s, ctx({ seccompBpf: '/run/x/seccomp.bpf' }))).toMatchObject({ seccompBpf: '/run/x/seccomp.bpf', seccompFlags: 4 });
    s.linux!.seccomp.flags = ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_TSYNC'];
    expect(buildCreatePlan(s, ctx({ seccompBpf: '/b' })).seccompFlags).toBe(3);
    s.linux!.seccomp.flags = [];
    expect(buildCreatePlan(s, ctx({ seccompBpf: '/b' })).seccompFlags).toBe(0);
  });

  test('session keyring as runc names it (unless --no-new-keyring), loopback for a new netns', () => {
    const plan = buildCreatePlan(spec(), ctx({ containerId: 'c1' }));
    expect(plan.sessionKeyring).toEqual({ name: '_ses.c1', addPerm: 0x80000 });
    expect(plan.loopbackUp).toBe(true);
    expect(buildCreatePlan(spec(), ctx({ containerId: 'c1', noNewKeyring: true })).sessionKeyring).toBeUndefined();
    expect(buildCreatePlan(spec(), ctx()).sessionKeyring).toBeUndefined();

    const userns = spec();
    userns.linux!.namespaces!.push({ type: 'user' });
    userns.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    userns.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    expect(buildCreatePlan(userns, ctx({ containerId: 'c1' })).sessionKeyring).toEqual({ name: '_ses.c1', addPerm: 0x8 });

    const joinedNet = spec();
    joinedNet.linux!.namespaces = joinedNet.linux!.namespaces!.map((n) => (n.type === 'network' ? { ...n, path: '/run/netns/x' } : n));
    expect(buildCreatePlan(joinedNet, ctx()).loopbackUp).toBeUndefined();
    const hostNet = spec();
    hostNet.linux!.namespaces = hostNet.linux!.namespaces!.filter((n) => n.type !== 'network');
    expect(buildCreatePlan(hostNet, ctx()).loopbackUp).toBeUndefined();
  });

  test('HOME comes from a passwd bind-mounted over the rootfs one', () => {
    const alt = path.join(bundle, 'passwd.alt');
    fs.writeFileSync(alt, 'root:x:0:0:root:/elsewhere:/bin/sh\n');
    const s = spec();
    s.mounts!.push({ destination: '/etc/passwd', source: 'passwd.alt', options: ['bind'] });
    expect(buildCreatePlan(s, ctx()).env).toContain('HOME=/elsewhere');
    s.mounts!.push({ destination: '/etc', type: 'tmpfs', source: 'tmpfs' });
    expect(buildCreatePlan(s, ctx()).env).toContain('HOME=/');
  });
});

describe('environment and passwd helpers', () => {
  test('finalEnv: later duplicates win in place, HOME added when unset or empty', () => {
    expect(finalEnv(['A=1', 'B=2', 'A=3'], () => '/h')).toEqual(['A=3', 'B=2', 'HOME=/h']);
    expect(finalEnv(['HOME=', 'X=1'], () => '/h')).toEqual(['HOME=/h', 'X=1']);
    expect(finalEnv(['HOME=/mine'], () => '/h')).toEqual(['HOME=/mine']);
    expect(finalEnv(undefined, () => '/')).toEqual(['HOME=/']);
    expect(finalEnv(['X=a=b'], () => '/')).toEqual(['X=a=b', 'HOME=/']);
  });

  test('homeFromPasswd', () => {
    const text = '# c\nroot:x:0:0:root:/root:/bin/sh\nbad:x:notanumber:0::/bad:/bin/sh\nshort:x:7\nu:x:7:7::/seven:/bin/sh\n';
    expect(homeFromPasswd(text, 0)).toBe('/root');
    expect(homeFromPasswd(text, 7)).toBe('');
    expect(homeFromPasswd(text, 8)).toBeUndefined();
  });

  test('resolveInRoot keeps symlinks inside the root', () => {
    const root = path.join(tmp, 'r');
    fs.mkdirSync(path.join(root, 'real', 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'real', 'etc', 'passwd'), 'x');
    fs.symlinkSync('/real/etc', path.join(root, 'etc'));
    fs.symlinkSync('../../../../../../etc/passwd', path.join(root, 'escape'));
    expect(resolveInRoot(root, '/etc/passwd')).toBe(path.join(root, 'real', 'etc', 'passwd'));
    // the relative link climbs to the root and stops there: /etc/passwd inside the root
    expect(resolveInRoot(root, '/escape')).toBe(path.join(root, 'real', 'etc', 'passwd'));
    expect(resolveInRoot(root, '/nope/passwd')).toBeUndefined();
    fs.symlinkSync('loop', path.join(root, 'loop'));
    expect(resolveInRoot(root, '/loop')).toBeUndefined();
  });

  test('a passwd symlink pointing out of the rootfs is read inside it', () => {
    const r = path.join(tmp, 'r2');
    fs.mkdirSync(path.join(r, 'etc'), { recursive: true });
    fs.symlinkSync('/etc/passwd', path.join(r, 'etc', 'passwd')); // would be the host's file
    const b = path.join(tmp, 'b2');
    fs.mkdirSync(b);
    fs.symlinkSync(r, path.join(b, 'rootfs'));
    const plan = buildCreatePlan(spec(), ctx({ bundle: b }));
    expect(plan.rootfs).toBe(r);
    expect(plan.env).toContain('HOME=/'); // the link resolves to itself inside r: a loop, no entry
  });
});

describe('cgroupV1Hierarchies', () => {
  test('parses mountinfo and /proc/self/cgroup, first mount of each hierarchy', () => {
    expect(cgroupV1Hierarchies(MOUNTINFO, SELF_CGROUP)).toEqual([
      { mountpoint: '/sys/fs/cgroup/cpu,cpuacct', root: '/', subsystems: ['cpu', 'cpuacct'], ownPath: '/' },
      { mountpoint: '/sys/fs/cgroup/memory', root: '/', subsystems: ['memory'], ownPath: '/mine' },
      { mountpoint: '/sys/fs/cgroup/systemd', root: '/', subsystems: ['name=systemd'], ownPath: '/user.slice' },
    ]);
  });
});

describe('buildExecPlan', () => {
  const NS: Record<string, string> = {
    '/proc/4242/ns/user': '1:100',
    '/proc/4242/ns/ipc': '1:101',
    '/proc/4242/ns/uts': '1:102',
    '/proc/4242/ns/net': '1:9', // shared with us: skipped
    '/proc/4242/ns/pid': '1:104',
    '/proc/4242/ns/cgroup': '1:105',
    '/proc/4242/ns/time': '1:6',
    '/proc/4242/ns/mnt': '1:107',
  };
  const SELF: Record<string, string> = { user: '1:1', ipc: '1:2', uts: '1:3', net: '1:9', pid: '1:4', cgroup: '1:5', time: '1:6', mnt: '1:7' };
  const probe: Partial<HostProbe> = {
    nsId: (p) => NS[p] ?? (p.startsWith('/proc/self/ns/') ? SELF[p.slice(14)] : undefined),
  };

  function container(): Spec {
    const s = spec();
    s.process!.oomScoreAdj = 100;
    return s;
  }

  test('joins the container namespaces it does not share, user first, mount last', () => {
    const proc = { ...container().process!, args: ['ps'], terminal: true, consoleSize: { height: 10, width: 20 } };
    const plan = buildExecPlan(proc, { pid: 4242, spec: container(), cgroupProcs: ['/sys/fs/cgroup/pids/c/cgroup.procs'], preserveFds: 1, wait: true, capLastCap: 40, probe });
    expect(plan.mode).toBe('exec');
    expect(plan.cloneFlags).toBe(0);
    expect(plan.joins).toEqual([
      { nstype: CLONE_NEWUSER, path: '/proc/4242/ns/user' },
      { nstype: CLONE_NEWIPC, path: '/proc/4242/ns/ipc' },
      { nstype: CLONE_NEWUTS, path: '/proc/4242/ns/uts' },
      { nstype: CLONE_NEWPID, path: '/proc/4242/ns/pid' },
      { nstype: CLONE_NEWCGROUP, path: '/proc/4242/ns/cgroup' },
      { nstype: CLONE_NEWNS, path: '/proc/4242/ns/mnt' },
    ]);
    expect(plan).toMatchObject({
      cgroupProcs: ['/sys/fs/cgroup/pids/c/cgroup.procs'],
      preserveFds: 1,
      wait: true,
      syncHooks: false,
      mounts: [],
      devices: [],
      symlinks: [],
      args: ['ps'],
      terminal: true,
      consoleSize: { rows: 10, cols: 20 },
      oomScoreAdj: 100,
    });
    expect(plan.rootfs).toBeUndefined();
    expect(plan.execFifo).toBeUndefined();
    expect(plan.env[plan.env.length - 1]).toBe('HOME=/'); // no /proc/4242/root/etc/passwd
  });

  test('falls back to the container process for caps and rlimits', () => {
    const c = container();
    const proc = { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/', env: ['HOME=/x'] };
    const plan = buildExecPlan(proc, { pid: 4242, spec: c, cgroupProcs: [], preserveFds: 0, wait: false, capLastCap: 40, probe });
    expect(plan.caps!.bounding).toBe('0000000020000420');
    expect(plan.rlimits).toEqual([{ resource: 7, soft: '1024', hard: '1024' }]);
    expect(plan.env).toEqual(['HOME=/x']);
    expect(plan.noNewPrivileges).toBe(false);
    const own = buildExecPlan({ ...proc, capabilities: {}, rlimits: [{ type: 'RLIMIT_NOFILE', soft: 5, hard: 5 }] }, {
      pid: 4242, spec: c, cgroupProcs: [], preserveFds: 0, wait: false, capLastCap: 40, probe,
    });
    expect(own.caps!.bounding).toBe('0000000000000000');
    expect(own.rlimits).toEqual([{ resource: 7, soft: '5', hard: '5' }]);
  });

  test('joins the container session keyring as it is', () => {
    const base = { pid: 4242, spec: container(), cgroupProcs: [], preserveFds: 0, wait: false, capLastCap: 40, probe };
    expect(buildExecPlan(container().process!, { ...base, containerId: 'c1' }).sessionKeyring).toEqual({ name: '_ses.c1', addPerm: 0 });
    expect(buildExecPlan(container().process!, { ...base, containerId: 'c1', noNewKeyring: true }).sessionKeyring).toBeUndefined();
    expect(buildExecPlan(container().process!, base).loopbackUp).toBeUndefined();
  });

  test('our own process: every namespace is shared, nothing to join', () => {
    const plan = buildExecPlan(container().process!, { pid: process.pid, spec: container(), cgroupProcs: [], preserveFds: 0, wait: false, capLastCap: 40 });
    expect(plan.joins).toEqual([]);
  });

  test('a dead container is refused', () => {
    expect(() =>
      buildExecPlan(container().process!, { pid: 4243, spec: container(), cgroupProcs: [], preserveFds: 0, wait: false, capLastCap: 40, probe }),
    ).toThrow('not running');
  });
});
