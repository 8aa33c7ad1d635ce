// shim/bootstrap: flag parsing (Go flag semantics), stdin decoding (empty, Any, 2.3's
// BootstrapParams and the decode pitfall), socket naming (the runc shim's hash), the exact
// bytes `start` prints, DeleteResponse, -v and -info. Pure logic plus temp dirs: no root,
// no daemons (the launcher in these tests only records what it was asked).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError } from '../../runtime/errors';
import { features } from '../../runtime/features';
import { VKERNEL_VERSION } from '../../runtime/paths';
import { CAPABILITIES } from '../../runtime/spec/capabilities';
import type { DaemonLaunch, DaemonLauncher } from '../../shim/bootstrap/daemon-config';
import { DELETE_BUDGET_MS, DELETED_EXIT_STATUS, deleteBudgetAfter, deleteShim, encodeDeleteResponse, mountsUnder } from '../../shim/bootstrap/delete';
import { parseFlags, pickShimEnv, resolveInvocation, ShimUsageError } from '../../shim/bootstrap/flags';
import { FEATURES_TYPE_URL, runtimeInfo } from '../../shim/bootstrap/info';
import { managerFiles, managerSocketPath, stateRootFor } from '../../shim/bootstrap/paths';
import { runShim, type ShimRequest } from '../../shim/bootstrap/run';
import { goJoin, groupIdFor, groupSocketPath, socketAddress } from '../../shim/bootstrap/socket';
import { startOutput } from '../../shim/bootstrap/start';
import { configPathOf, decodeStartInput, protoFieldNumbers } from '../../shim/bootstrap/stdin';
import { versionText } from '../../shim/bootstrap/version';
import { anyOf, decode, encode } from '../../shim/proto';
import { TestContainerd } from '../harness/containerd';

const ADDRESS = '/run/containerd/containerd.sock';

describe('flags (Go flag semantics)', () => {
  test("containerd 1.6's start and delete command lines", () => {
    const start = parseFlags(['-namespace', 'k8s.io', '-address', ADDRESS, '-publish-binary', '/usr/bin/containerd', '-id', 'c1', '-debug', 'start']);
    expect(start).toMatchObject({ namespace: 'k8s.io', address: ADDRESS, publishBinary: '/usr/bin/containerd', id: 'c1', debug: true, rest: ['start'] });
    const del = parseFlags(['-namespace', 'default', '-address', ADDRESS, '-publish-binary', '/usr/bin/containerd', '-id', 'c1', '-bundle', '/b', 'delete']);
    expect(del).toMatchObject({ id: 'c1', bundle: '/b', debug: false, rest: ['delete'] });
  });

  test.each([
    [['-id', 'x']],
    [['--id', 'x']],
    [['-id=x']],
    [['--id=x']],
  ])('string flag form %j', (args) => {
    expect(parseFlags(args).id).toBe('x');
  });

  test('a value that looks like a flag is still the value; "=" keeps everything after the first one', () => {
    expect(parseFlags(['-id', '-debug']).id).toBe('-debug');
    expect(parseFlags(['-id=a=b']).id).toBe('a=b');
    expect(parseFlags(['-id=']).id).toBe('');
  });

  test('booleans: bare, =true/=false in every Go spelling', () => {
    expect(parseFlags(['-debug']).debug).toBe(true);
    expect(parseFlags(['--debug']).debug).toBe(true);
    for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True']) expect(parseFlags([`-debug=${v}`]).debug).toBe(true);
    for (const v of ['0', 'f', 'F', 'FALSE', 'false', 'False']) expect(parseFlags([`-debug=${v}`]).debug).toBe(false);
    expect(() => parseFlags(['-debug=yes'])).toThrow('invalid boolean value "yes" for -debug');
    // A bool flag never takes the next argument: "false" becomes the action.
    expect(parseFlags(['-debug', 'false']).rest).toEqual(['false']);
  });

  test('-v, -version and -info', () => {
    expect(parseFlags(['-v']).version).toBe(true);
    expect(parseFlags(['--version']).version).toBe(true);
    expect(parseFlags(['-info']).info).toBe(true);
  });

  test('the first non-flag ends the flags; so do "--" and a lone "-"', () => {
    expect(parseFlags(['-id', 'x', 'start', '-debug'])).toMatchObject({ debug: false, rest: ['start', '-debug'] });
    expect(parseFlags(['-id', 'x', '--', '-debug'])).toMatchObject({ debug: false, rest: ['-debug'] });
    expect(parseFlags(['-', 'start']).rest).toEqual(['-', 'start']);
    expect(parseFlags([]).rest).toEqual([]);
  });

  test('the last of a repeated flag wins; defaults match the runc shim', () => {
    expect(parseFlags(['-id', 'a', '-id', 'b']).id).toBe('b');
    expect(parseFlags([])).toMatchObject({ namespace: '', address: '', publishBinary: 'containerd', bundle: '', debug: false });
  });

  test.each([
    [['-nope'], 'flag provided but not defined: -nope'],
    [['--nope=1'], 'flag provided but not defined: -nope'],
    [['-id'], 'flag needs an argument: -id'],
    [['---id', 'x'], 'bad flag syntax: ---id'],
    [['-=x'], 'bad flag syntax: -=x'],
  ])('bad input %j: %s', (args, msg) => {
    expect(() => parseFlags(args)).toThrow(msg);
    expect(() => parseFlags(args)).toThrow(ShimUsageError);
  });

  test('-h and -help ask for usage', () => {
    expect(parseFlags(['-h']).help).toBe(true);
    expect(parseFlags(['--help']).help).toBe(true);
  });
});

describe('resolveInvocation', () => {
  const env = { TTRPC_ADDRESS: `${ADDRESS}.ttrpc`, GRPC_ADDRESS: ADDRESS, NAMESPACE: 'default', MAX_SHIM_VERSION: '2' };

  test('start: flags, environment and cwd folded together', () => {
    const inv = resolveInvocation(['-namespace', 'ns1', '-address', ADDRESS, '-publish-binary', '/c', '-id', 'c1', 'start'], env, '/bundle');
    expect(inv).toEqual({
      action: 'start',
      namespace: 'ns1',
      address: ADDRESS,
      ttrpcAddress: `${ADDRESS}.ttrpc`,
      grpcAddress: ADDRESS,
      publishBinary: '/c',
      id: 'c1',
      bundle: '/bundle',
      debug: false,
      socket: '',
      maxShimVersion: 2,
    });
  });

  test('containerd 1.6 sets only TTRPC_ADDRESS; without it the ttrpc address is derived', () => {
    const inv = resolveInvocation(['-namespace', 'n', '-address', '/a.sock', '-id', 'c', 'start'], {}, '/b');
    expect(inv.ttrpcAddress).toBe('/a.sock.ttrpc');
    expect(inv.grpcAddress).toBeUndefined();
    expect(inv.maxShimVersion).toBeUndefined();
  });

  test('NAMESPACE is only a fallback for -namespace; -bundle wins over cwd', () => {
    expect(resolveInvocation(['-address', '/a', '-id', 'c', 'start'], { NAMESPACE: 'envns' }, '/b').namespace).toBe('envns');
    expect(resolveInvocation(['-namespace', 'n', '-id', 'c', '-bundle', '/x', 'delete'], { NAMESPACE: 'envns' }, '/b')).toMatchObject({
      namespace: 'n',
      bundle: '/x',
      action: 'delete',
    });
  });

  test.each([
    [['-address', '/a', '-id', 'c', 'start'], 'shim namespace cannot be empty'],
    [['-namespace', '', '-address', '/a', '-id', 'c', 'start'], 'shim namespace cannot be empty'],
    [['-namespace', 'n', '-address', '/a', 'start'], 'start: -id is required'],
    [['-namespace', 'n', 'delete'], 'delete: -id is required'],
    [['-namespace', 'n', '-id', 'c', 'start'], 'start: -address is required'],
    [['-namespace', 'n', '-id', 'c'], 'missing action'],
    [['-namespace', 'n', '-id', 'c', 'run'], 'unknown action "run"'],
    [['-namespace', '../etc', '-address', '/a', '-id', 'c', 'start'], 'invalid -id or -namespace'],
  ])('%j fails: %s', (args, msg) => {
    expect(() => resolveInvocation(args, {}, '/b')).toThrow(msg);
  });

  test('-v and -info need nothing else, and -v wins over -info', () => {
    expect(resolveInvocation(['-v'], {}, '').action).toBe('version');
    expect(resolveInvocation(['-info'], {}, '').action).toBe('info');
    expect(resolveInvocation(['-info', '-v'], {}, '').action).toBe('version');
  });

  test('pickShimEnv keeps only what containerd sets for shims', () => {
    expect(pickShimEnv({ TTRPC_ADDRESS: 't', PATH: '/bin', NAMESPACE: 'n', HOME: '/' })).toEqual({ TTRPC_ADDRESS: 't', NAMESPACE: 'n' });
  });
});

describe('stdin', () => {
  const runtimeOptions = anyOf('runtimeoptions.v1.Options', { config_path: '/etc/vkernel/config.toml' });
  const anyBytes = encode('google.protobuf.Any', runtimeOptions);
  const params = {
    instance_id: 'c1',
    namespace: 'default',
    log_level: -4,
    containerd_version: '2.3.0',
    containerd_ttrpc_address: '/run/containerd/containerd.sock.ttrpc',
    containerd_grpc_address: '/run/containerd/containerd.sock',
    containerd_binary: '/usr/bin/containerd',
    extensions: [{ value: runtimeOptions }],
  };
  const paramBytes = encode('containerd.runtime.bootstrap.v1.BootstrapParams', params);

  test('empty: no options', () => {
    expect(decodeStartInput(Buffer.alloc(0))).toEqual({ kind: 'empty' });
  });

  test('1.6–2.2: an Any of runtime options, whose ConfigPath we read', () => {
    const input = decodeStartInput(anyBytes);
    expect(input.kind).toBe('options');
    if (input.kind !== 'options') return;
    expect(input.options.type_url).toBe('runtimeoptions.v1.Options');
    expect(configPathOf(input.options)).toBe('/etc/vkernel/config.toml');
  });

  test('the pitfall: BootstrapParams also decodes "successfully" as an Any', () => {
    const wrong = decode('google.protobuf.Any', paramBytes);
    expect(wrong.type_url).toBe('c1'); // instance_id
    expect(Buffer.from(wrong.value).toString()).toBe('default'); // namespace
  });

  test('2.3: BootstrapParams is told apart by its fields numbered 3 and up', () => {
    expect(protoFieldNumbers(anyBytes)).toEqual([1, 2]);
    expect(protoFieldNumbers(paramBytes)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const input = decodeStartInput(paramBytes);
    expect(input.kind).toBe('bootstrap');
    if (input.kind !== 'bootstrap') return;
    expect(input.params).toMatchObject({ instance_id: 'c1', namespace: 'default', log_level: -4, containerd_version: '2.3.0' });
    expect(configPathOf(input.options)).toBe('/etc/vkernel/config.toml');
  });

  test('options of other types carry no ConfigPath', () => {
    expect(configPathOf(anyOf('containerd.runc.v1.Options', { binary_name: 'runc' }))).toBeUndefined();
    expect(configPathOf(undefined)).toBeUndefined();
  });

  test.each([
    ['a truncated varint', Buffer.from([0x08, 0x80])],
    ['a length past the end', Buffer.from([0x0a, 0x05, 0x61])],
    ['a group wire type', Buffer.from([0x0b])],
    ['field number 0', Buffer.from([0x00, 0x01])],
  ])('malformed stdin (%s) is InvalidArgument', (_what, buf) => {
    expect(() => decodeStartInput(buf)).toThrow(InvalidArgumentError);
  });

  test('an Any without a type_url is refused', () => {
    expect(() => decodeStartInput(encode('google.protobuf.Any', { value: Buffer.from('x') }))).toThrow('without a type_url');
  });
});

describe('socket naming', () => {
  test.each([
    [ADDRESS, 'default', 'c1'],
    ['/tmp/vkt-1/containerd.sock', 'vkt-abc', 'pod-sandbox-0123456789abcdef'],
    ['/run/containerd/containerd.sock/', 'k8s.io', 'x'],
  ])('matches the runc shim: sha256(filepath.Join(%s, %s, %s))', (address, ns, group) => {
    expect(groupSocketPath(address, ns, group)).toBe(TestContainerd.shimSocketPath(address, ns, group));
    expect(groupSocketPath(address, ns, group)).toMatch(/^\/run\/containerd\/s\/[0-9a-f]{64}$/);
  });

  test('known value', () => {
    // printf '%s' /run/containerd/containerd.sock/default/c1 | sha256sum
    expect(groupSocketPath(ADDRESS, 'default', 'c1')).toBe('/run/containerd/s/d25aa4ef11a84e954e74a5bcff06557d0b6ea8d0c00243896f29826694bbd888');
  });

  test("goJoin is Go's filepath.Join", () => {
    expect(goJoin('/a/', 'b', 'c')).toBe('/a/b/c');
    expect(goJoin('/a//b', '', 'c/')).toBe('/a/b/c');
    expect(goJoin('/a', '../b')).toBe('/b');
    expect(goJoin('', '')).toBe('');
  });

  test('a socket dir too long for a unix socket is refused', () => {
    expect(() => groupSocketPath(ADDRESS, 'n', 'g', '/x'.repeat(30))).toThrow(InvalidArgumentError);
  });

  test('group: runc.v2 group, then the CRI sandbox id, then io.vkernel.group, else the id', () => {
    const all = { 'io.vkernel.group': 'v', 'io.kubernetes.cri.sandbox-id': 'pod', 'io.containerd.runc.v2.group': 'g' };
    expect(groupIdFor(all, 'c')).toBe('g');
    expect(groupIdFor({ 'io.vkernel.group': 'v', 'io.kubernetes.cri.sandbox-id': 'pod' }, 'c')).toBe('pod');
    expect(groupIdFor({ 'io.vkernel.group': 'v' }, 'c')).toBe('v');
    expect(groupIdFor({ other: 'x' }, 'c')).toBe('c');
    expect(groupIdFor(undefined, 'c')).toBe('c');
  });

  test('paths the processes agree on', () => {
    expect(managerSocketPath({})).toBe('/run/vkernel/shim-manager.sock');
    expect(managerSocketPath({ VKERNEL_SHIM_MANAGER: '/tmp/m.sock' })).toBe('/tmp/m.sock');
    expect(managerSocketPath({ VKERNEL_SHIM_MANAGER: 'off' })).toBeUndefined();
    expect(managerFiles('/run/vkernel/shim-manager.sock')).toEqual({
      socket: '/run/vkernel/shim-manager.sock',
      pidFile: '/run/vkernel/shim-manager.pid',
      controlSocket: '/run/vkernel/shim-manager.ctl',
    });
    expect(stateRootFor('k8s.io')).toBe('/run/vkernel/shim/k8s.io');
  });
});

describe('start through runShim (temp socket dir via BootstrapParams.socket_dir, recording launcher)', () => {
  let tmp: string;
  let bundle: string;
  let launches: DaemonLaunch[];
  const launcher: DaemonLauncher = {
    launch: async (l) => {
      launches.push({ ...l, config: { ...l.config } });
      return 4242;
    },
  };

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-boot-'));
    bundle = path.join(tmp, 'bundle');
    fs.mkdirSync(bundle);
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations: { 'io.kubernetes.cri.sandbox-id': 'pod1' } }));
    launches = [];
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const request = (stdin: Buffer, extra: string[] = []): ShimRequest => ({
    args: ['-namespace', 'ns1', '-address', '/tmp/c.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'c1', ...extra, 'start'],
    cwd: bundle,
    env: { TTRPC_ADDRESS: '/tmp/c.sock.ttrpc', GRPC_ADDRESS: '/tmp/c.sock' },
    stdin,
    containerdPid: process.pid,
  });
  const params = (socketDir: string): Buffer =>
    encode('containerd.runtime.bootstrap.v1.BootstrapParams', {
      instance_id: 'c1',
      namespace: 'ns1',
      containerd_version: '2.3.0',
      extensions: [{ value: anyOf('runtimeoptions.v1.Options', { config_path: '/etc/vk.toml' }) }],
      socket_dir: socketDir,
    });

  test('2.3 (BootstrapParams): prints exactly a protobuf BootstrapResult (ttrpc, version 3), nothing on stderr; writes <bundle>/address', async () => {
    const dir = path.join(tmp, 's');
    const reply = await runShim(request(params(dir)), { launcher });
    const expected = `unix://${groupSocketPath('/tmp/c.sock', 'ns1', 'pod1', dir)}`;
    // The exact bytes of every answer are checked in shim-negotiate.test.ts.
    const result = encode('containerd.runtime.bootstrap.v1.BootstrapResult', { version: 3, address: expected, protocol: 'ttrpc' });
    expect(reply).toEqual({ stdout: result, stderr: Buffer.alloc(0), exitCode: 0, action: 'start' });
    expect(fs.readFileSync(path.join(bundle, 'address'), 'utf8')).toBe(`{"version":3,"protocol":"ttrpc","address":"${expected}"}`);
    expect(fs.readdirSync(bundle).sort()).toEqual(['address', 'config.json']); // no temp file left
    expect(fs.statSync(path.join(dir, path.basename(expected))).mode & 0o777).toBe(0o600);
    expect(launches).toHaveLength(1);
    expect(launches[0].config).toEqual({
      namespace: 'ns1',
      address: '/tmp/c.sock',
      ttrpcAddress: '/tmp/c.sock.ttrpc',
      grpcAddress: '/tmp/c.sock',
      publishBinary: '/usr/bin/containerd',
      socketPath: expected.slice('unix://'.length),
      debug: false,
      groupId: 'pod1',
      stateRoot: '/run/vkernel/shim/ns1',
      configPath: '/etc/vk.toml',
      bundle,
      protocol: 'ttrpc',
    });
    expect(launches[0].containerdPid).toBe(process.pid);
  });

  test('a group that is already served is answered without a launch (grouping)', async () => {
    const dir = path.join(tmp, 's');
    fs.mkdirSync(dir);
    const sock = groupSocketPath('/tmp/c.sock', 'ns1', 'pod1', dir);
    const server = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const reply = await runShim(request(params(dir)), { launcher });
      expect(decode('containerd.runtime.bootstrap.v1.BootstrapResult', reply.stdout).address).toBe(socketAddress(sock));
      expect(launches).toHaveLength(0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('a stale socket (nobody listening) is replaced', async () => {
    const dir = path.join(tmp, 's');
    const first = await runShim(request(params(dir)), { launcher }); // recorded launcher: nobody serves afterwards
    const second = await runShim(request(params(dir)), { launcher });
    expect(second.stdout).toEqual(first.stdout);
    expect(launches).toHaveLength(2);
  });

  test('a failed launch removes the socket and fails start with the reason on stderr', async () => {
    const dir = path.join(tmp, 's');
    const failing: DaemonLauncher = { launch: async () => Promise.reject(new Error('no daemon today')) };
    const reply = await runShim(request(params(dir)), { launcher: failing });
    expect(reply).toMatchObject({ stdout: Buffer.alloc(0), exitCode: 1, action: 'start' });
    expect(reply.stderr.toString()).toBe('containerd-shim-vkernel-v2: no daemon today\n');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('BootstrapParams log level DEBUG turns on daemon debug', async () => {
    const dir = path.join(tmp, 's');
    const stdin = encode('containerd.runtime.bootstrap.v1.BootstrapParams', { instance_id: 'c1', namespace: 'ns1', log_level: -4, socket_dir: dir });
    await runShim(request(stdin), { launcher });
    expect(launches[0].config.debug).toBe(true);
  });

  test('no config.json: start fails and says which file', async () => {
    fs.rmSync(path.join(bundle, 'config.json'));
    const reply = await runShim(request(params(path.join(tmp, 's'))), { launcher });
    expect(reply.exitCode).toBe(1);
    expect(reply.stderr.toString()).toContain(`cannot read ${path.join(bundle, 'config.json')}`);
  });

  test('usage errors exit 2 with the message on stderr', async () => {
    const reply = await runShim({ ...request(Buffer.alloc(0)), args: ['-bogus', 'start'] }, { launcher });
    expect(reply).toEqual({ stdout: Buffer.alloc(0), stderr: Buffer.from('containerd-shim-vkernel-v2: flag provided but not defined: -bogus\n'), exitCode: 2, action: undefined });
  });

  test('startOutput is the plain address', () => {
    const inv = resolveInvocation(['-namespace', 'n', '-address', '/a', '-id', 'c', 'start'], {}, '/b');
    expect(startOutput('unix:///run/containerd/s/ab', inv, { kind: 'empty' })).toEqual(Buffer.from('unix:///run/containerd/s/ab'));
  });
});

describe('delete', () => {
  test.each([
    [0, DELETE_BUDGET_MS], // the manager's warm path: nothing spent yet
    [300, DELETE_BUDGET_MS], // a cold boot on an idle host
    [1500, 2500], // a slow boot: what is left of containerd's 5 s, less 1 s for the rest
    [3800, 500], // never under the floor
    [-50, DELETE_BUDGET_MS], // a clock step backwards counts as nothing spent
  ])('the removal budget after %p ms spent is %p ms', (spent, budget) => expect(deleteBudgetAfter(spent)).toBe(budget));

  test('DeleteResponse: pid, exit_status, exited_at', () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const bytes = encodeDeleteResponse(1234, DELETED_EXIT_STATUS, at);
    expect(DELETED_EXIT_STATUS).toBe(137);
    expect(decode('containerd.task.v2.DeleteResponse', bytes)).toEqual({
      pid: 1234,
      exit_status: 137,
      exited_at: { seconds: Math.floor(at.getTime() / 1000), nanos: 678_000_000 },
    });
    // Wire bytes: 08 d2 09 | 10 89 01 | 1a 0b (08 <seconds varint> 10 <nanos varint>)
    expect(bytes.subarray(0, 6).toString('hex')).toBe('08d209108901');
  });

  test('a container that is not there: exit 0, pid 0, status 137, no warnings; idempotent', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-del-'));
    try {
      for (let i = 0; i < 2; i++) {
        const before = Date.now();
        const reply = await runShim(
          { args: ['-namespace', 'n', '-address', '/a', '-id', 'gone', '-bundle', tmp, 'delete'], cwd: '/', env: {}, stdin: Buffer.alloc(0), containerdPid: 1 },
          { launcher: { launch: () => Promise.reject(new Error('delete never launches')) }, stateRoot: path.join(tmp, 'state') },
        );
        expect(reply.exitCode).toBe(0);
        expect(reply.stderr.toString()).toBe('');
        const r = decode('containerd.task.v2.DeleteResponse', reply.stdout);
        expect(r.pid).toBe(0);
        expect(r.exit_status).toBe(137);
        expect(r.exited_at!.seconds * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      }
      const direct = await deleteShim(resolveInvocation(['-namespace', 'n', '-id', 'gone', '-bundle', tmp, 'delete'], {}, '/'), { stateRoot: tmp });
      expect(direct).toMatchObject({ pid: 0, exitStatus: 137, warnings: [] });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('mountsUnder: the dir and below, deepest first, octal escapes decoded', () => {
    const info = [
      '36 25 0:32 / /b/rootfs rw - overlay overlay rw',
      '37 36 0:33 / /b/rootfs/proc rw - proc proc rw',
      '38 25 0:34 / /b/rootfs2 rw - tmpfs tmpfs rw',
      '39 36 0:35 / /b/rootfs/with\\040space rw - tmpfs tmpfs rw',
    ].join('\n');
    expect(mountsUnder('/b/rootfs', info)).toEqual(['/b/rootfs/with space', '/b/rootfs/proc', '/b/rootfs']);
  });
});

describe('-v and -info', () => {
  test('-v looks like the runc shim', () => {
    expect(versionText()).toMatch(new RegExp(`^containerd-shim-vkernel-v2:\\n  Version:  ${VKERNEL_VERSION.replace(/\./g, '\\.')}\\n  Revision: .*\\n  Node\\.js version: v\\d+\\.\\d+\\.\\d+\\n\\n$`));
  });

  test('RuntimeInfo: name, version, the options echoed, features as a JSON Any', () => {
    const options = anyOf('runtimeoptions.v1.Options', { config_path: '/x.toml' });
    for (const stdin of [encode('google.protobuf.Any', options), Buffer.alloc(0)]) {
      const info = decode('containerd.types.RuntimeInfo', runtimeInfo(stdin));
      expect(info.name).toBe('io.containerd.vkernel.v2');
      expect(info.version?.version).toBe(VKERNEL_VERSION);
      expect(info.features?.type_url).toBe(FEATURES_TYPE_URL);
      expect(FEATURES_TYPE_URL).toBe('types.containerd.io/opencontainers/runtime-spec/1/features/Features');
      expect(JSON.parse(Buffer.from(info.features!.value).toString())).toEqual(features(Object.keys(CAPABILITIES)));
      if (stdin.length) expect(info.options).toEqual({ type_url: 'runtimeoptions.v1.Options', value: Buffer.from(options.value) });
      else expect(info.options).toBeNull();
    }
  });
});
