// Protocol negotiation in `start` (shim/bootstrap/negotiate.ts, docs/protocol.md): a fake
// containerd Version service (gRPC, on a temp socket) answers 1.6.x, 1.7.x, 2.0.x, 2.2.x and
// 2.3.x, or 2.3's BootstrapParams arrive on stdin, and each case checks the exact bytes
// `start` prints, the <bundle>/address file, the daemon config and the log lines. Then:
// forcing (annotation > environment > config), the version cache, grouping, and that the
// ttrpc path never loads grpc-js.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DaemonLaunch, DaemonLauncher } from '../../shim/bootstrap/daemon-config';
import { resolveInvocation } from '../../shim/bootstrap/flags';
import {
  clearVersionCache,
  decideProtocol,
  describeProtocolChoice,
  DEFECT_2X_IDLE_AT_START,
  lookupContainerdVersion,
  parseContainerdVersion,
  PRELOAD_GRPC_ENV,
  protocolFilePath,
  protocolForce,
} from '../../shim/bootstrap/negotiate';
import { groupSocketPath } from '../../shim/bootstrap/socket';
import { startShim, type StartContext } from '../../shim/bootstrap/start';
import { DEFAULT_SHIM_CONFIG, parseShimConfig } from '../../shim/config';
import { GrpcServer } from '../../shim/grpc';
import { anyOf, decode, encode } from '../../shim/proto';

const REPO = path.resolve(__dirname, '..', '..', '..');

/** containerd's Version service on a temp socket. */
class FakeContainerd {
  calls = 0;
  readonly server = new GrpcServer();
  constructor(
    readonly address: string,
    public version: string,
  ) {
    this.server.registerService('containerd.services.version.v1.Version', {
      Version: () => {
        this.calls++;
        return { version: this.version, revision: 'fake' };
      },
    });
  }
  static async start(address: string, version: string): Promise<FakeContainerd> {
    const f = new FakeContainerd(address, version);
    await f.server.listen(address);
    return f;
  }
  stop(): Promise<void> {
    return this.server.destroy();
  }
}

let tmp: string;
let bundle: string;
let sockets: string;
let launches: DaemonLaunch[];
const launcher: DaemonLauncher = {
  launch: async (l) => {
    launches.push({ ...l, config: { ...l.config } });
    return 4242;
  },
};

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-neg-'));
  bundle = path.join(tmp, 'bundle');
  sockets = path.join(tmp, 's');
  fs.mkdirSync(bundle);
  writeSpec({});
  launches = [];
  clearVersionCache();
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  delete process.env[PRELOAD_GRPC_ENV]; // start sets it after a gRPC answer
});

function writeSpec(annotations: Record<string, string>): void {
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations }));
}

function inv(address: string, env: Record<string, string> = {}) {
  return resolveInvocation(['-namespace', 'ns1', '-address', address, '-publish-binary', '/usr/bin/containerd', '-id', 'c1', 'start'], { GRPC_ADDRESS: address, MAX_SHIM_VERSION: '2', ...env }, bundle);
}

function ctx(extra: Partial<StartContext> = {}): StartContext {
  return { launcher, containerdPid: process.pid, socketDir: sockets, versionLookup: { cacheDir: path.join(tmp, 'cache') }, ...extra };
}

const socketOf = (address: string): string => groupSocketPath(address, 'ns1', 'c1', sockets);

/** The protobuf BootstrapResult, by hand: 1 version varint, 2 address, 3 protocol. */
function bootstrapResult(version: number, address: string, protocol: string): Buffer {
  const str = (field: number, s: string): Buffer => Buffer.concat([Buffer.from([(field << 3) | 2, Buffer.byteLength(s)]), Buffer.from(s)]);
  return Buffer.concat([Buffer.from([0x08, version]), str(2, address), str(3, protocol)]);
}

describe('start against a fake containerd Version service: the exact bytes', () => {
  let fake: FakeContainerd | undefined;
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });

  async function startWith(version: string, env: Record<string, string> = {}) {
    const address = path.join(tmp, `containerd-${version}.sock`);
    fake = await FakeContainerd.start(address, version);
    const r = await startShim(inv(address, env), Buffer.alloc(0), ctx());
    return { r, socket: socketOf(address), address };
  }

  test('1.6.20: the plain unix:// address (1.6 takes all of stdout as a ttrpc address)', async () => {
    const { r, socket } = await startWith('1.6.20~ds1');
    expect(r.output).toEqual(Buffer.from(`unix://${socket}`));
    expect(fs.readFileSync(path.join(bundle, 'address'), 'utf8')).toBe(`unix://${socket}`);
    expect(launches[0].config.protocol).toBe('ttrpc');
    expect(launches[0].config.keepAliveIntervalMs).toBeUndefined();
    expect(fs.existsSync(protocolFilePath(socket))).toBe(false); // only gRPC sockets get one
  });

  test('1.7.24: gRPC, bootstrap version 2, a bare socket path', async () => {
    const { r, socket } = await startWith('1.7.24~ds1');
    const expected = `{"version":2,"protocol":"grpc","address":"${socket}"}`;
    expect(r.output).toEqual(Buffer.from(expected));
    expect(fs.readFileSync(path.join(bundle, 'address'), 'utf8')).toBe(expected);
    expect(launches[0].config.protocol).toBe('grpc');
    expect(fs.readFileSync(protocolFilePath(socket), 'utf8')).toBe('grpc');
    expect(r.choice).toMatchObject({ protocol: 'grpc', version: 2, format: 'json', containerd: '1.7.24~ds1', versionSource: 'version-service', decidedBy: 'negotiated', warnings: [] });
  });

  test.each(['v2.0.0', '2.2.1'])('%s: ttrpc announced as bootstrap version 3 (task API v3 over ttrpc)', async (version) => {
    const { r, socket } = await startWith(version);
    const expected = `{"version":3,"protocol":"ttrpc","address":"unix://${socket}"}`;
    expect(r.output).toEqual(Buffer.from(expected));
    expect(fs.readFileSync(path.join(bundle, 'address'), 'utf8')).toBe(expected);
    expect(launches[0].config.protocol).toBe('ttrpc');
    expect(r.choice!.reason).toContain('tears a gRPC shim down right after start');
  });

  test('2.3.0 without BootstrapParams on stdin (a runtime options Any): JSON version 3, ttrpc', async () => {
    const address = path.join(tmp, 'c23.sock');
    fake = await FakeContainerd.start(address, '2.3.0');
    const stdin = encode('google.protobuf.Any', anyOf('runtimeoptions.v1.Options', { config_path: path.join(tmp, 'none.toml') }));
    const r = await startShim(inv(address), stdin, ctx());
    expect(r.output).toEqual(Buffer.from(`{"version":3,"protocol":"ttrpc","address":"unix://${socketOf(address)}"}`));
  });

  test('2.3.x with BootstrapParams on stdin: a protobuf BootstrapResult, no Version call', async () => {
    const address = path.join(tmp, 'c23p.sock');
    fake = await FakeContainerd.start(address, '2.3.4');
    const stdin = encode('containerd.runtime.bootstrap.v1.BootstrapParams', {
      instance_id: 'c1',
      namespace: 'ns1',
      containerd_version: '2.3.4',
      containerd_grpc_address: address,
      containerd_ttrpc_address: `${address}.ttrpc`,
      socket_dir: sockets,
    });
    const r = await startShim(inv(address), stdin, ctx());
    const socket = socketOf(address);
    expect(r.output).toEqual(bootstrapResult(3, `unix://${socket}`, 'ttrpc'));
    expect(decode('containerd.runtime.bootstrap.v1.BootstrapResult', r.output)).toEqual({ version: 3, address: `unix://${socket}`, protocol: 'ttrpc', capabilities: [], metadata: {} });
    // The address file takes the same answer as JSON (2.x migrates it with the legacy parse).
    expect(fs.readFileSync(path.join(bundle, 'address'), 'utf8')).toBe(`{"version":3,"protocol":"ttrpc","address":"unix://${socket}"}`);
    expect(fake.calls).toBe(0);
    expect(r.choice).toMatchObject({ versionSource: 'bootstrap-params', containerd: '2.3.4', format: 'protobuf' });
  });

  test('no MAX_SHIM_VERSION in the environment (containerd 1.6 sets none): the plain address, no Version call', async () => {
    const address = path.join(tmp, 'c16.sock');
    fake = await FakeContainerd.start(address, '1.7.24');
    const inv16 = resolveInvocation(['-namespace', 'ns1', '-address', address, '-id', 'c1', 'start'], { TTRPC_ADDRESS: `${address}.ttrpc` }, bundle);
    const r = await startShim(inv16, Buffer.alloc(0), ctx());
    expect(r.output).toEqual(Buffer.from(`unix://${socketOf(address)}`));
    expect(fake.calls).toBe(0);
    expect(r.choice).toMatchObject({ versionSource: 'environment', warnings: [] });
    const forced = await startShim({ ...inv16, id: 'c2', shimProtocol: 'grpc' }, Buffer.alloc(0), ctx());
    expect(forced.choice!.warnings).toEqual([expect.stringMatching(/^gRPC forced by environment VKERNEL_SHIM_PROTOCOL is ignored: containerd set no MAX_SHIM_VERSION/)]);
  });

  test('no containerd at -address (unknown version): the plain address, with a warning', async () => {
    const address = path.join(tmp, 'nobody.sock');
    const r = await startShim(inv(address), Buffer.alloc(0), ctx());
    expect(r.output).toEqual(Buffer.from(`unix://${socketOf(address)}`));
    expect(r.choice!.versionSource).toBe('unknown');
    expect(r.choice!.warnings[0]).toMatch(/cannot ask containerd at .* for its version/);
  });

  test('the decision and its warnings go to the bundle log (containerd copies it into its own)', async () => {
    fs.writeFileSync(path.join(bundle, 'log'), ''); // containerd's FIFO; a file records the same lines
    await startWith('2.1.9', { VKERNEL_SHIM_PROTOCOL: 'grpc' });
    const log = fs.readFileSync(path.join(bundle, 'log'), 'utf8');
    expect(log).toMatch(/level=info msg="shim protocol grpc, bootstrap version 3, answered as json \(forced by environment; containerd 2.1.9 \(version-service\)\)/);
    expect(log).toMatch(/level=warning msg="gRPC forced by environment VKERNEL_SHIM_PROTOCOL on containerd 2.1.9: containerd 2.0–2.3 tears a gRPC shim down right after start/);
    expect(log).toContain('id=c1');
  });
});

describe('forcing the protocol', () => {
  let fake: FakeContainerd;
  let address: string;
  beforeEach(async () => {
    address = path.join(tmp, 'c17.sock');
    fake = await FakeContainerd.start(address, '1.7.24');
  });
  afterEach(() => fake.stop());

  test('environment VKERNEL_SHIM_PROTOCOL=ttrpc on 1.7: the plain address', async () => {
    const r = await startShim(inv(address, { VKERNEL_SHIM_PROTOCOL: 'ttrpc' }), Buffer.alloc(0), ctx());
    expect(r.output).toEqual(Buffer.from(`unix://${socketOf(address)}`));
    expect(r.choice!.decidedBy).toBe('environment');
  });

  test('the annotation wins over the environment, which wins over the config file', async () => {
    const cfg = path.join(tmp, 'vk.toml');
    fs.writeFileSync(cfg, '[shim]\nprotocol = "ttrpc"\ngrpc_keepalive_interval_ms = 1500\n');
    const stdin = encode('google.protobuf.Any', anyOf('runtimeoptions.v1.Options', { config_path: cfg }));
    // config alone: ttrpc
    let r = await startShim(inv(address), stdin, ctx());
    expect(r.choice).toMatchObject({ protocol: 'ttrpc', decidedBy: 'config' });
    fs.rmSync(r.socketPath);
    // environment over config: grpc, and the config's keep-alive interval reaches the daemon
    r = await startShim(inv(address, { VKERNEL_SHIM_PROTOCOL: 'grpc' }), stdin, ctx());
    expect(r.choice).toMatchObject({ protocol: 'grpc', decidedBy: 'environment' });
    expect(launches[1].config).toMatchObject({ protocol: 'grpc', keepAliveIntervalMs: 1500 });
    fs.rmSync(r.socketPath);
    // annotation over environment: ttrpc
    writeSpec({ 'io.vkernel.shim-protocol': 'ttrpc' });
    r = await startShim(inv(address, { VKERNEL_SHIM_PROTOCOL: 'grpc' }), stdin, ctx());
    expect(r.choice).toMatchObject({ protocol: 'ttrpc', decidedBy: 'annotation' });
    fs.rmSync(r.socketPath);
    // annotation "auto": negotiated (gRPC on 1.7) whatever the others say
    writeSpec({ 'io.vkernel.shim-protocol': 'auto' });
    r = await startShim(inv(address, { VKERNEL_SHIM_PROTOCOL: 'ttrpc' }), stdin, ctx());
    expect(r.choice).toMatchObject({ protocol: 'grpc', decidedBy: 'negotiated' });
  });

  test('a bad value is warned about and skipped; a broken config file does not fail start', async () => {
    writeSpec({ 'io.vkernel.shim-protocol': 'http3' });
    const cfg = path.join(tmp, 'broken.toml');
    fs.writeFileSync(cfg, '[shim\n');
    const stdin = encode('google.protobuf.Any', anyOf('runtimeoptions.v1.Options', { config_path: cfg }));
    const r = await startShim(inv(address, { VKERNEL_SHIM_PROTOCOL: 'ttrpc' }), stdin, ctx());
    expect(r.choice).toMatchObject({ protocol: 'ttrpc', decidedBy: 'environment' });
    expect(r.choice!.warnings).toEqual([
      expect.stringContaining('shim config ignored'),
      'annotation io.vkernel.shim-protocol: "http3" is not grpc, ttrpc or auto; ignored',
    ]);
  });

  test('the config keys: [shim] protocol and grpc_keepalive_interval_ms', () => {
    expect(DEFAULT_SHIM_CONFIG).toMatchObject({ protocol: 'auto', grpcKeepAliveIntervalMs: 300_000 });
    expect(parseShimConfig('[shim]\nprotocol = "grpc"\ngrpc_keepalive_interval_ms = 2000\n', 'f')).toMatchObject({ protocol: 'grpc', grpcKeepAliveIntervalMs: 2000 });
    expect(parseShimConfig('[shim]\nprotocol = "ttrpc"\n', 'f').protocol).toBe('ttrpc');
    expect(() => parseShimConfig('[shim]\nprotocol = "http3"\n', 'f')).toThrow('f: shim.protocol: must be one of "auto", "grpc", "ttrpc" (got "http3")');
    expect(() => parseShimConfig('[shim]\nprotocol = 1\n', 'f')).toThrow('shim.protocol: must be one of');
    expect(() => parseShimConfig('[shim]\ngrpc_keepalive_interval_ms = -5\n', 'f')).toThrow('non-negative number');
  });

  test('protocolForce order and values', () => {
    const w: string[] = [];
    expect(protocolForce({ annotation: 'GRPC', environment: 'ttrpc' }, w)).toEqual({ protocol: 'grpc', source: 'annotation' });
    expect(protocolForce({ environment: ' ttrpc ', config: 'grpc' }, w)).toEqual({ protocol: 'ttrpc', source: 'environment' });
    expect(protocolForce({ config: 'grpc' }, w)).toEqual({ protocol: 'grpc', source: 'config' });
    expect(protocolForce({ environment: 'auto', config: 'grpc' }, w)).toBeUndefined();
    expect(protocolForce({}, w)).toBeUndefined();
    expect(w).toEqual([]);
  });
});

describe('decideProtocol (the table)', () => {
  const v = (s: string) => parseContainerdVersion(s);
  const d = (version: string | undefined, force?: 'grpc' | 'ttrpc', bootstrapParams = false) =>
    decideProtocol({ containerd: version ? v(version) : undefined, versionSource: version ? 'version-service' : 'unknown', bootstrapParams, force: force ? { protocol: force, source: 'config' } : undefined });

  test.each([
    ['1.5.18', undefined, 'ttrpc', 2, 'plain'],
    ['1.6.20~ds1', undefined, 'ttrpc', 2, 'plain'],
    ['1.7.0', undefined, 'grpc', 2, 'json'],
    ['v1.7.29', 'ttrpc', 'ttrpc', 2, 'plain'],
    ['2.0.0', undefined, 'ttrpc', 3, 'json'],
    ['2.2.0-rc.1', 'grpc', 'grpc', 3, 'json'],
    ['2.3.4', undefined, 'ttrpc', 3, 'json'],
    ['3.0.0', undefined, 'ttrpc', 3, 'json'],
    [undefined, undefined, 'ttrpc', 2, 'plain'],
  ] as const)('containerd %s, forced %s → %s version %d %s', (version, force, protocol, bv, format) => {
    expect(d(version, force)).toMatchObject({ protocol, version: bv, format });
  });

  test('forcing gRPC where containerd cannot speak it is refused with a warning', () => {
    expect(d('1.6.20', 'grpc')).toMatchObject({ protocol: 'ttrpc', format: 'plain', warnings: [expect.stringContaining('containerd 1.6.20 speaks only ttrpc')] });
    expect(d(undefined, 'grpc')).toMatchObject({ protocol: 'ttrpc', warnings: [expect.stringContaining("containerd's version is unknown")] });
  });

  test('forcing gRPC on 2.x warns, naming the defect; BootstrapParams means protobuf', () => {
    expect(d('2.1.9', 'grpc').warnings).toEqual([expect.stringContaining(DEFECT_2X_IDLE_AT_START)]);
    expect(d(undefined, undefined, true)).toMatchObject({ protocol: 'ttrpc', version: 3, format: 'protobuf' });
    expect(d(undefined, 'grpc', true)).toMatchObject({ protocol: 'grpc', version: 3, format: 'protobuf' });
  });

  test('parseContainerdVersion', () => {
    expect(v('1.7.24~ds1')).toEqual({ text: '1.7.24~ds1', major: 1, minor: 7, patch: 24 });
    expect(v('v2.1.9')).toMatchObject({ major: 2, minor: 1, patch: 9 });
    expect(v('2.3')).toMatchObject({ major: 2, minor: 3, patch: 0 });
    expect(v('')).toBeUndefined();
    expect(v('devel')).toBeUndefined();
  });
});

describe('the version cache', () => {
  test('one Version call per containerd process: memory, then the file for a new (cold) process', async () => {
    const address = path.join(tmp, 'cache.sock');
    const fake = await FakeContainerd.start(address, '1.7.24');
    const cacheDir = path.join(tmp, 'cache');
    try {
      expect(await lookupContainerdVersion(address, { containerdPid: process.pid, cacheDir })).toEqual({ version: '1.7.24', source: 'version-service' });
      expect(await lookupContainerdVersion(address, { containerdPid: process.pid, cacheDir })).toEqual({ version: '1.7.24', source: 'cache' });
      expect(fake.calls).toBe(1);
      clearVersionCache(); // as a new cold-path process would start
      expect(await lookupContainerdVersion(address, { containerdPid: process.pid, cacheDir })).toEqual({ version: '1.7.24', source: 'cache' });
      expect(fake.calls).toBe(1);
      // A cache entry of another containerd process (before a restart or an upgrade) is not used.
      fake.version = '2.0.1';
      clearVersionCache();
      fs.writeFileSync(fs.readdirSync(cacheDir).map((f) => path.join(cacheDir, f))[0], JSON.stringify({ address, identity: 'stale:1', version: '1.7.24' }));
      expect(await lookupContainerdVersion(address, { containerdPid: process.pid, cacheDir })).toEqual({ version: '2.0.1', source: 'version-service' });
      expect(fake.calls).toBe(2);
    } finally {
      await fake.stop();
    }
  });

  test('an unknown version is not cached', async () => {
    const address = path.join(tmp, 'late.sock');
    expect((await lookupContainerdVersion(address, { cacheDir: null })).source).toBe('unknown');
    const fake = await FakeContainerd.start(address, '1.6.20');
    try {
      expect(await lookupContainerdVersion(address, { cacheDir: null })).toEqual({ version: '1.6.20', source: 'version-service' });
    } finally {
      await fake.stop();
    }
  });

  test('a Version service that never answers costs at most the timeout', async () => {
    const address = path.join(tmp, 'mute.sock');
    const net = await import('node:net');
    const mute = net.createServer(() => undefined);
    await new Promise<void>((r) => mute.listen(address, r));
    try {
      const t0 = Date.now();
      const r = await lookupContainerdVersion(address, { cacheDir: null, timeoutMs: 300 });
      expect(r.source).toBe('unknown');
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      mute.close();
    }
  });
});

describe('grouping: a container joining a running daemon gets the daemon protocol', () => {
  test('the group daemon serves gRPC: its answer, whatever this container would have negotiated', async () => {
    const address = path.join(tmp, 'grp.sock');
    const fake = await FakeContainerd.start(address, '1.7.24');
    const net = await import('node:net');
    const socket = socketOf(address);
    fs.mkdirSync(sockets, { recursive: true });
    const daemon = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => daemon.listen(socket, r));
    try {
      fs.writeFileSync(protocolFilePath(socket), 'grpc');
      writeSpec({ 'io.vkernel.shim-protocol': 'ttrpc' });
      const r = await startShim(inv(address), Buffer.alloc(0), ctx());
      expect(r.reused).toBe(true);
      expect(r.output.toString()).toBe(`{"version":2,"protocol":"grpc","address":"${socket}"}`);
      expect(launches).toHaveLength(0);
      // A daemon from before negotiation (no protocol file) serves ttrpc.
      fs.rmSync(protocolFilePath(socket));
      writeSpec({});
      const old = await startShim(inv(address), Buffer.alloc(0), ctx());
      expect(old.output.toString()).toBe(`unix://${socket}`);
    } finally {
      await new Promise<void>((r) => daemon.close(() => r()));
      await fake.stop();
    }
  });

  test('a failed launch removes the socket and its protocol file', async () => {
    const r = startShim(inv(path.join(tmp, 'x.sock')), Buffer.alloc(0), ctx({ launcher: { launch: async () => Promise.reject(new Error('no')) } }));
    await expect(r).rejects.toThrow('no');
    expect(fs.readdirSync(sockets)).toEqual([]);
  });
});

describe('describeProtocolChoice (for `vkernel check`)', () => {
  test('says what the local containerd gets, and why', async () => {
    const address = path.join(tmp, 'check.sock');
    const fake = await FakeContainerd.start(address, '1.7.24~ds1');
    try {
      const d = await describeProtocolChoice(address, { env: {}, configPath: path.join(tmp, 'none.toml') });
      expect(d).toMatchObject({ protocol: 'grpc', version: 2, containerd: '1.7.24~ds1', example: '{"version":2,"protocol":"grpc","address":"<socket>"}' });
      expect(d.lines[0]).toBe(`containerd at ${address}: 1.7.24~ds1 (version-service)`);
      expect(d.lines.join('\n')).toContain('why: containerd 1.7.24~ds1 accepts a gRPC shim');
      const forced = await describeProtocolChoice(address, { env: { VKERNEL_SHIM_PROTOCOL: 'ttrpc' }, configPath: path.join(tmp, 'none.toml') });
      expect(forced).toMatchObject({ protocol: 'ttrpc', decidedBy: 'environment', example: 'unix://<socket>' });
    } finally {
      await fake.stop();
    }
    const none = await describeProtocolChoice(path.join(tmp, 'gone.sock'), { env: {}, configPath: path.join(tmp, 'none.toml') });
    expect(none).toMatchObject({ protocol: 'ttrpc', versionSource: 'unknown' });
    expect(none.lines.some((l) => l.startsWith('warning: cannot ask containerd'))).toBe(true);
  });
});

describe('grpc-js stays off the ttrpc path', () => {
  test('a ttrpc start, and a ttrpc daemon booting, never load @grpc/grpc-js', () => {
    const script = `
      const fs = require('fs'), path = require('path');
      const dist = ${JSON.stringify(path.join(REPO, 'dist'))};
      const { startShim } = require(dist + '/shim/bootstrap/start');
      const { resolveInvocation } = require(dist + '/shim/bootstrap/flags');
      const { serveTasks } = require(dist + '/shim/daemon/serve');
      const { native } = require(dist + '/runtime/native');
      const tmp = fs.mkdtempSync('/tmp/vkt-nogrpc-');
      fs.writeFileSync(tmp + '/config.json', '{"ociVersion":"1.0.2"}');
      const inv = resolveInvocation(['-namespace', 'ns1', '-address', tmp + '/none.sock', '-id', 'c1', 'start'], {}, tmp);
      (async () => {
        await startShim(inv, Buffer.alloc(0), { launcher: { launch: async () => 1 }, containerdPid: 0, socketDir: tmp + '/s', versionLookup: { cacheDir: null } });
        const sock = tmp + '/d.sock';
        const d = await serveTasks({ namespace: 'ns1', address: tmp + '/none.sock', ttrpcAddress: tmp + '/none.sock.ttrpc', publishBinary: 'x',
          socketPath: sock, debug: false, groupId: 'g', stateRoot: tmp + '/state', protocol: 'ttrpc' }, native().listenUnix(sock), { exitProcess: false });
        const loaded = Object.keys(require.cache).filter((k) => k.includes('@grpc'));
        await d.close();
        fs.rmSync(tmp, { recursive: true, force: true });
        process.stdout.write(JSON.stringify(loaded));
        process.exit(0);
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const env = { ...process.env };
    delete env[PRELOAD_GRPC_ENV];
    expect(JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000, env }))).toEqual([]);
  });

  test('after a gRPC answer, daemons spawned from then on load grpc-js while they boot', async () => {
    const address = path.join(tmp, 'pre.sock');
    const fake = await FakeContainerd.start(address, '1.7.24');
    try {
      await startShim(inv(address), Buffer.alloc(0), ctx());
      expect(process.env[PRELOAD_GRPC_ENV]).toBe('1');
      const script = `require(${JSON.stringify(path.join(REPO, 'dist', 'shim', 'daemon', 'serve'))});
        process.stdout.write(String(Object.keys(require.cache).some((k) => k.includes('@grpc/grpc-js'))));`;
      expect(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000, env: { ...process.env } })).toBe('true');
      // A ttrpc answer clears it again.
      await startShim({ ...inv(address, { VKERNEL_SHIM_PROTOCOL: 'ttrpc' }), id: 'c2' }, Buffer.alloc(0), ctx());
      expect(process.env[PRELOAD_GRPC_ENV]).toBeUndefined();
    } finally {
      await fake.stop();
    }
  });
});
