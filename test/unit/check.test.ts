// `vkernel check` row logic (runtime/check) against fake machines: each row's statuses and
// the facts its detail names, the JSON shape and the exit code. The host itself is covered by
// test/integration/check.test.ts.
import { exitCode, formatReport, runChecks, containerdSnippet, type CheckProbe, type CheckReport } from '../../runtime/check';
import { cgroupRow, fuseRow, helpersRow, kernelRow, overlayRow, seccompRows, userNamespaceRow } from '../../runtime/check/host-rows';
import { configRow, containerdRow, protocolRow, shimBinaryRow } from '../../runtime/check/containerd-rows';
import { listeningSocketInode, configFlag, type ContainerdProcess, type HelperPaths } from '../../runtime/check/probe';
import { decideProtocol, parseContainerdVersion, type ProtocolDescription } from '../../shim/bootstrap/negotiate';
import type { SeccompProbe } from '../../runtime/seccomp/compile';

const V1 = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids'];
const HYBRID = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  ...V1.map((c, i) => `${32 + i} 31 0:${29 + i} / /sys/fs/cgroup/${c} rw,relatime - cgroup cgroup rw,${c}`),
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const UNIFIED = '30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate';

const ALL_FLAGS = 0x3f;
const ALL_ACTIONS = [0x80000000, 0, 0x30000, 0x50000, 0x7fc00000, 0x7ff00000, 0x7ffc0000, 0x7fff0000];
const seccomp = (flags = ALL_FLAGS, actions = ALL_ACTIONS): SeccompProbe => ({ flags, actions, libseccomp: '2.5.4 6' });

function description(version: string | undefined, extra: Partial<ProtocolDescription> = {}): ProtocolDescription {
  const choice = decideProtocol({ containerd: parseContainerdVersion(version), versionSource: version ? 'version-service' : 'unknown', bootstrapParams: false });
  if (!version) choice.warnings.push('cannot ask containerd at /run/c.sock for its version: grpc …: canceled (caused by: connect ENOENT /run/c.sock)');
  return { ...choice, address: '/run/c.sock', example: '<example>', lines: [], ...extra };
}

describe('kernel', () => {
  it.each([
    ['6.18.44-fc-v657', 'pass'],
    ['5.19.0', 'pass'],
    ['5.15.0-91-generic', 'warn'],
    ['4.19.0', 'fail'],
    ['garbage', 'warn'],
  ])('%s → %s', (release, status) => {
    expect(kernelRow(release)).toMatchObject({ name: 'kernel', status });
  });
});

describe('cgroups', () => {
  const controllers = (files: Record<string, string>) => (mp: string) => files[mp];

  it('hybrid: v1 controllers and what the v2 tree holds', () => {
    const r = cgroupRow(HYBRID, controllers({ '/sys/fs/cgroup/unified': 'hugetlb\n' }));
    expect(r).toEqual({
      name: 'cgroups',
      status: 'pass',
      detail: 'hybrid; v1: blkio,cpu,cpuacct,cpuset,devices,freezer,memory,pids; v2 /sys/fs/cgroup/unified: hugetlb',
    });
  });

  it('v1 without memory fails and names it', () => {
    const r = cgroupRow(HYBRID.split('\n').filter((l) => !l.includes('memory')).join('\n'), () => '');
    expect(r.status).toBe('fail');
    expect(r.detail).toMatch(/missing v1 controllers: memory$/);
  });

  it('pure v2 passes with cpu, cpuset, memory, pids (device rules are an eBPF program)', () => {
    const r = cgroupRow(UNIFIED, controllers({ '/sys/fs/cgroup': 'cpuset cpu io memory pids' }));
    expect(r).toMatchObject({ status: 'pass', detail: 'v2; v2 /sys/fs/cgroup: cpuset,cpu,io,memory,pids; device rules as an eBPF program' });
    const noPids = cgroupRow(UNIFIED, controllers({ '/sys/fs/cgroup': 'cpuset cpu io memory' }));
    expect(noPids).toMatchObject({ status: 'fail', detail: expect.stringMatching(/missing v2 controllers: pids$/) });
  });

  it('no cgroup file system fails', () => {
    expect(cgroupRow('', () => undefined).status).toBe('fail');
  });
});

describe('seccomp', () => {
  it('everything accepted: three passes', () => {
    const rows = seccompRows(seccomp());
    expect(rows.map((r) => [r.name, r.status])).toEqual([
      ['seccomp', 'pass'],
      ['seccomp-notify', 'pass'],
      ['seccomp-wait-killable-recv', 'pass'],
    ]);
    expect(rows[0].detail).toBe('actions kill_process,kill_thread,trap,errno,user_notif,trace,log,allow; filter flags 0x3f; libseccomp 2.5.4 6');
  });

  it('no WAIT_KILLABLE_RECV (kernel < 5.19) warns', () => {
    const rows = seccompRows(seccomp(ALL_FLAGS & ~32));
    expect(rows[1].status).toBe('pass');
    expect(rows[2]).toMatchObject({ status: 'warn', detail: expect.stringContaining('vkinit drops the flag') });
  });

  it('no user notification warns and names what is missing', () => {
    const rows = seccompRows(seccomp(ALL_FLAGS & ~8, ALL_ACTIONS.filter((a) => a !== 0x7fc00000)));
    expect(rows[1]).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^SECCOMP_RET_USER_NOTIF and SECCOMP_FILTER_FLAG_NEW_LISTENER refused/) });
  });

  it('a probe that cannot run fails the seccomp row', () => {
    const rows = seccompRows(new Error('seccomp compiler /x/vkseccomp is missing'));
    expect(rows.map((r) => r.status)).toEqual(['fail', 'warn', 'warn']);
    expect(rows[0].detail).toContain('/x/vkseccomp');
  });
});

describe('fuse, overlayfs, user namespaces, helpers', () => {
  it('fuse: vkfs probe decides', () => {
    expect(fuseRow({ vkfs: { code: 0, stdout: 'fuse ok\n', stderr: '' }, devFuse: true, fusermount: '/usr/bin/fusermount3' })).toMatchObject({
      status: 'pass',
      detail: expect.stringContaining('fusermount3 at /usr/bin/fusermount3'),
    });
    expect(fuseRow({ vkfs: { code: 1, stdout: 'fuse unavailable: No such device\n', stderr: '' }, devFuse: false })).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('snapshot'),
    });
    const noLib = { code: 127, stdout: '', stderr: 'vkfs: error while loading shared libraries: libfuse3.so.3: cannot open shared object file\n' };
    expect(fuseRow({ vkfs: noLib, devFuse: true })).toMatchObject({ status: 'fail', detail: expect.stringContaining('libfuse3.so.3') });
    expect(fuseRow({ devFuse: true }).status).toBe('warn');
  });

  it('overlayfs: listed, module, or neither', () => {
    expect(overlayRow('nodev\tproc\nnodev\toverlay\n', false).status).toBe('pass');
    expect(overlayRow('nodev\tproc\n', true).status).toBe('pass');
    expect(overlayRow('nodev\tproc\n', false).status).toBe('warn');
  });

  it('user namespaces: present, disabled, absent', () => {
    expect(userNamespaceRow(true, '96365\n')).toMatchObject({ status: 'pass', detail: 'available (user.max_user_namespaces = 96365)' });
    expect(userNamespaceRow(true, '0\n').status).toBe('warn');
    expect(userNamespaceRow(false, undefined).status).toBe('warn');
  });

  it('helpers: a missing runtime helper fails, a missing launcher warns', () => {
    const paths: HelperPaths = { vkinit: '/b/vkinit', vkseccomp: '/b/vkseccomp', vknative: '/b/vknative.node', vkfs: '/b/vkfs', vkagent: '/b/vkagent', launcher: '/b/containerd-shim-vkernel-v2' };
    expect(helpersRow(paths, () => true).status).toBe('pass');
    expect(helpersRow(paths, (k) => k !== 'launcher')).toMatchObject({ status: 'warn', detail: expect.stringContaining('/b/containerd-shim-vkernel-v2') });
    expect(helpersRow(paths, (k) => k !== 'vkfs')).toEqual({ name: 'native-helpers', status: 'fail', detail: 'missing: /b/vkfs (make native)' });
  });

  it('the fix a missing helper names: make native in a build tree, reinstall in an installed copy', () => {
    const paths: HelperPaths = { vkinit: '/l/vkinit', vkseccomp: '/l/vkseccomp', vknative: '/l/vknative.node', vkfs: '/l/vkfs', vkagent: '/l/vkagent', launcher: '/l/containerd-shim-vkernel-v2' };
    expect(helpersRow(paths, (k) => k !== 'vkinit', 'reinstall vkernel (make install)')).toEqual({
      name: 'native-helpers',
      status: 'fail',
      detail: 'missing: /l/vkinit (reinstall vkernel (make install))',
    });
    expect(helpersRow(paths, (k) => k !== 'launcher', 'reinstall vkernel (make install)').detail).toBe(
      'missing: /l/containerd-shim-vkernel-v2 (the containerd shim needs it; reinstall vkernel (make install))',
    );
    expect(fuseRow({ devFuse: true })).toEqual({ name: 'fuse', status: 'warn', detail: 'vkfs is missing (make native); /dev/fuse exists' });
    expect(fuseRow({ devFuse: false }, 'reinstall vkernel (make install)')).toEqual({ name: 'fuse', status: 'fail', detail: 'vkfs is missing (reinstall vkernel (make install))' });
  });
});

describe('containerd', () => {
  const proc: ContainerdProcess = { pid: 42, exe: '/opt/c17/usr/bin/containerd', path: '/opt/shims:/usr/bin', configFile: '/tmp/x/config.toml' };

  it('unreachable: warn with the errno, not the whole client error', () => {
    expect(containerdRow(description(undefined), undefined)).toEqual({
      name: 'containerd',
      status: 'warn',
      detail: 'no containerd answers at /run/c.sock (connect ENOENT /run/c.sock); vkernel still works as an OCI runtime',
    });
  });

  it('1.7 with its process: pass naming pid and config; 1.5 is not supported', () => {
    expect(containerdRow(description('1.7.24~ds1'), proc)).toMatchObject({
      status: 'pass',
      detail: 'containerd 1.7.24~ds1 at /run/c.sock (pid 42, /opt/c17/usr/bin/containerd, config /tmp/x/config.toml)',
    });
    expect(containerdRow(description('1.5.9'), undefined).status).toBe('warn');
  });

  it('shim protocol: the decision and why; the unreachable warning is left to the containerd row', () => {
    const r = protocolRow(description('1.7.24'));
    expect(r.status).toBe('pass');
    expect(r.detail).toMatch(/^grpc, bootstrap version 2 \(negotiated\); start answers <example>; why: containerd 1\.7\.24 accepts a gRPC shim/);
    expect(protocolRow(description(undefined)).status).toBe('pass');
    expect(protocolRow(description('1.6.20', { warnings: ['gRPC forced by x is ignored'] }))).toMatchObject({ status: 'warn', detail: expect.stringContaining('; warning: gRPC forced') });
  });

  it("shim binary: containerd's PATH, then next to containerd, else warn", () => {
    expect(shimBinaryRow(proc, '', (f) => f === '/opt/shims/containerd-shim-vkernel-v2')).toMatchObject({ status: 'pass', detail: expect.stringContaining("containerd's PATH") });
    expect(shimBinaryRow(proc, '', (f) => f === '/opt/c17/usr/bin/containerd-shim-vkernel-v2').status).toBe('pass');
    expect(shimBinaryRow(proc, '/usr/local/bin', (f) => f === '/usr/local/bin/containerd-shim-vkernel-v2').status).toBe('warn');
    expect(shimBinaryRow(undefined, '/usr/local/bin', (f) => f === '/usr/local/bin/containerd-shim-vkernel-v2')).toMatchObject({
      status: 'pass',
      detail: expect.stringContaining('containerd is not running'),
    });
  });
});

describe('containerd config', () => {
  const snippet = (v: string, withRunc = true): string =>
    containerdSnippet({ containerd: parseContainerdVersion(v)!, addDefaultRuntime: withRunc ? '/etc/c.toml' : undefined });
  const base = 'version = 2\nroot = "/var/lib/containerd"\n';

  it('the 1.6/1.7 snippet (with runc, which this file lacks) in a version 2 config passes', () => {
    for (const v of ['1.6.20', '1.7.24']) {
      expect(configRow('/etc/c.toml', base + snippet(v))).toEqual({
        name: 'containerd-config',
        status: 'pass',
        detail: '/etc/c.toml (version 2): runtime vkernel in plugins."io.containerd.grpc.v1.cri".containerd.runtimes; passes io.vkernel.* annotations',
      });
    }
  });

  it('the 2.x snippet in a version 3 config passes', () => {
    expect(configRow('/etc/c.toml', 'version = 3\n' + snippet('2.1.0')).detail).toContain('plugins."io.containerd.cri.v1.runtime".containerd.runtimes');
    expect(configRow('/etc/c.toml', 'version = 3\n' + snippet('2.1.0')).status).toBe('pass');
  });

  it('warns: missing file, no entry, entry without the annotations, CRI disabled, bad TOML', () => {
    expect(configRow('/etc/c.toml', undefined)).toMatchObject({ status: 'warn', detail: expect.stringContaining('vkernel containerd-config') });
    expect(configRow('/etc/c.toml', base).detail).toContain('no runtime with runtime_type io.containerd.vkernel.v2');
    const bare = base + '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vk]\nruntime_type = "io.containerd.vkernel.v2"\npod_annotations = ["io.vkernel.*"]\n';
    expect(configRow('/etc/c.toml', bare)).toMatchObject({ status: 'warn', detail: expect.stringContaining('container_annotations lack "io.vkernel.*"') });
    const disabled = 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' + snippet('1.7.24');
    expect(configRow('/etc/c.toml', disabled)).toMatchObject({ status: 'warn', detail: expect.stringContaining('the CRI plugin is disabled') });
    expect(configRow('/etc/c.toml', 'version = = 2').detail).toMatch(/^\/etc\/c\.toml: cannot parse: /);
  });

  it('a runtimes table without runc: CRI will not load (default_runtime_name has no entry)', () => {
    expect(configRow('/etc/c.toml', base + snippet('1.7.24', false))).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/; CRI will not load: default_runtime_name "runc" has no entry in plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes$/),
    });
  });

  it('a 2.x snippet in a version 2 file is not where 1.x looks', () => {
    expect(configRow('/etc/c.toml', base + snippet('2.0.0')).status).toBe('warn');
  });
});

describe('probe helpers', () => {
  it('finds the listening socket inode in /proc/net/unix', () => {
    const netUnix = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '0000000000000000: 00000003 00000000 00000000 0001 03 9001 /run/c.sock',
      '0000000000000000: 00000002 00000000 00010000 0001 01 9000 /run/c.sock',
    ].join('\n');
    expect(listeningSocketInode(netUnix, '/run/c.sock')).toBe('9000');
    expect(listeningSocketInode(netUnix, '/run/other.sock')).toBeUndefined();
  });

  it("reads containerd's --config in its spellings", () => {
    expect(configFlag(['--config', 'a.toml'])).toBe('a.toml');
    expect(configFlag(['-c', '/b.toml', '--log-level', 'debug'])).toBe('/b.toml');
    expect(configFlag(['--config=/c.toml'])).toBe('/c.toml');
    expect(configFlag(['--log-level', 'debug'])).toBeUndefined();
  });
});

/** A whole fake machine: this host's shape, containerd 1.7 with the snippet, shim on its PATH. */
function fakeProbe(over: Partial<CheckProbe> = {}): CheckProbe {
  const files: Record<string, string> = {
    '/proc/sys/kernel/osrelease': '6.18.44\n',
    '/proc/self/mountinfo': HYBRID,
    '/sys/fs/cgroup/unified/cgroup.controllers': 'hugetlb\n',
    '/proc/filesystems': 'nodev\toverlay\n',
    '/proc/sys/user/max_user_namespaces': '100\n',
    '/tmp/x/config.toml': 'version = 2\n' + containerdSnippet({ containerd: parseContainerdVersion('1.7.24')!, addDefaultRuntime: 'x' }),
  };
  const exe = new Set(['/b/vkinit', '/b/vkseccomp', '/b/vkfs', '/b/vkagent', '/b/containerd-shim-vkernel-v2', '/shims/containerd-shim-vkernel-v2']);
  return {
    readFile: (f) => files[f],
    exists: (f) => f === '/proc/self/ns/user' || f === '/dev/fuse' || f === '/b/vknative.node',
    executable: (f) => exe.has(f),
    envPath: () => '/usr/bin',
    helpers: () => ({ vkinit: '/b/vkinit', vkseccomp: '/b/vkseccomp', vknative: '/b/vknative.node', vkfs: '/b/vkfs', vkagent: '/b/vkagent', launcher: '/b/containerd-shim-vkernel-v2' }),
    seccomp: async () => seccomp(),
    run: async () => ({ code: 0, stdout: 'fuse ok\n', stderr: '' }),
    protocol: async (address) => ({ ...description('1.7.24'), address }),
    containerdProcess: () => ({ pid: 7, exe: '/opt/c17/containerd', path: '/shims:/usr/bin', configFile: '/tmp/x/config.toml' }),
    ...over,
  };
}

describe('runChecks', () => {
  const NAMES = [
    'kernel',
    'cgroups',
    'seccomp',
    'seccomp-notify',
    'seccomp-wait-killable-recv',
    'fuse',
    'overlayfs',
    'user-namespaces',
    'native-helpers',
    'containerd',
    'shim-protocol',
    'shim-binary',
    'containerd-config',
  ];

  it("shim protocol: decided with containerd's environment and its vkernel runtime's ConfigPath, and says so", async () => {
    const contexts: unknown[] = [];
    const config = 'version = 2\n' + containerdSnippet({ containerd: parseContainerdVersion('1.7.24')!, addDefaultRuntime: 'x', configPath: '/etc/vk/pod.toml' });
    const probe = fakeProbe({
      readFile: (f) => (f === '/tmp/x/config.toml' ? config : undefined),
      protocol: async (address, context) => (contexts.push(context), { ...description('1.7.24'), address }),
      containerdProcess: () => ({ pid: 7, exe: '/opt/c17/containerd', path: '/shims', configFile: '/tmp/x/config.toml', shimProtocol: 'ttrpc' }),
    });
    const r = await runChecks({ address: '/run/x.sock', probe });
    expect(contexts).toEqual([{ configPath: '/etc/vk/pod.toml', env: { VKERNEL_SHIM_PROTOCOL: 'ttrpc' } }]);
    expect(r.rows.find((x) => x.name === 'shim-protocol')?.detail).toContain("; read: containerd's environment (VKERNEL_SHIM_PROTOCOL=ttrpc), shim config /etc/vk/pod.toml");
    // No containerd process seen: this shell's environment and the default shim config.
    contexts.length = 0;
    const alone = await runChecks({ address: '/run/x.sock', probe: fakeProbe({ containerdProcess: () => undefined, protocol: async (a, c) => (contexts.push(c), description('1.6.20')) }) });
    expect(contexts).toEqual([{ configPath: undefined }]);
    expect(alone.rows.find((x) => x.name === 'shim-protocol')?.detail).toMatch(/; read: shim config \/etc\/vkernel\/config\.toml$/);
  });

  it('a good machine: every row passes, exit 0, the documented JSON shape', async () => {
    const r = await runChecks({ address: '/run/x.sock', probe: fakeProbe() });
    expect(r.rows.map((x) => x.name)).toEqual(NAMES);
    expect(r.rows.filter((x) => x.status !== 'pass')).toEqual([]);
    expect(r.summary).toEqual({ status: 'pass', pass: NAMES.length, warn: 0, fail: 0 });
    expect(exitCode(r)).toBe(0);
    const json = JSON.parse(JSON.stringify(r)) as CheckReport;
    expect(Object.keys(json)).toEqual(['rows', 'summary']);
    for (const x of json.rows) expect(Object.keys(x)).toEqual(['name', 'status', 'detail']);
  });

  it.each([
    [undefined, 'make native'],
    [false, 'make native'],
    [true, 'reinstall vkernel (make install)'],
  ])('installed() %s: missing helpers say %s', async (installed, fix) => {
    const r = await runChecks({
      probe: fakeProbe({ executable: (f) => f !== '/b/vkseccomp' && f !== '/b/vkfs', ...(installed === undefined ? {} : { installed: () => installed }) }),
    });
    expect(r.rows.find((x) => x.name === 'native-helpers')?.detail).toBe(`missing: /b/vkseccomp, /b/vkfs (${fix})`);
    expect(r.rows.find((x) => x.name === 'fuse')?.detail).toBe(`vkfs is missing (${fix}); /dev/fuse exists`);
  });

  it('warnings keep exit 0; one failure makes it 1', async () => {
    const warned = await runChecks({ probe: fakeProbe({ containerdProcess: () => undefined, protocol: async () => description(undefined) }) });
    expect(warned.summary.status).toBe('warn');
    expect(exitCode(warned)).toBe(0);
    const failed = await runChecks({ probe: fakeProbe({ seccomp: async () => Promise.reject(new Error('no vkseccomp')) }) });
    expect(failed.summary).toMatchObject({ status: 'fail', fail: 1 });
    expect(exitCode(failed)).toBe(1);
  });

  it('the table: one line per row, then the summary', async () => {
    const text = formatReport(await runChecks({ probe: fakeProbe() }));
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+STATUS\s+DETAIL$/);
    expect(lines[1]).toMatch(/^kernel\s+PASS\s+6\.18\.44$/);
    expect(lines.at(-1)).toBe(`PASS: ${NAMES.length} passed, 0 warnings, 0 failed`);
  });
});
