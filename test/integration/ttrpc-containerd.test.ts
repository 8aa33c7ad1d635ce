// Interop with a real containerd (Debian's 1.6 here): our ttrpc client publishes a TaskExit
// through containerd's ttrpc events service and `ctr events` must show it; our proto bundle
// drives containerd's gRPC Version and Events services through @grpc/grpc-js.
//
// The other direction, containerd's Go ttrpc client calling our TtrpcServer, is driven by
// `ctr shim`, which dials /run/containerd/s/<sha256(address/namespace/id)> like containerd does.
//
// containerd runs with a private config: root, state and sockets under a temp dir, CRI off.
// It is stopped and the temp dir removed afterwards. Needs root and containerd + ctr on PATH.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { anyOf, decode, encode, timestamp, type ProtoInput, type ProtoTypeName, type ProtoTypes } from '../../shim/proto';
import { TtrpcClient } from '../../shim/ttrpc/client';
import { NAMESPACE_KEY } from '../../shim/ttrpc/metadata';
import { TtrpcServer, type CallContext } from '../../shim/ttrpc/server';
import { Code, TtrpcError } from '../../shim/ttrpc/status';
import { FailedPreconditionError } from '../../runtime/errors';

const EVENTS_TTRPC = 'containerd.services.events.ttrpc.v1.Events';
const NS = 'vktest';

function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const containerdBin = which('containerd');
const ctrBin = which('ctr');
const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot ? 'needs root' : !containerdBin ? 'containerd not installed' : !ctrBin ? 'ctr not installed' : undefined;
const suite = skipReason ? describe.skip : describe;
if (skipReason) {
  console.warn(`skipping ttrpc-containerd integration tests: ${skipReason}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function canConnect(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: p }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Collects a child's stdout lines and lets a test wait for one that matches. */
class LineWatcher {
  readonly lines: string[] = [];
  #partial = '';
  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (d: Buffer) => {
      const text = this.#partial + d.toString('utf8');
      const parts = text.split('\n');
      this.#partial = parts.pop()!;
      this.lines.push(...parts);
    });
  }
  find(pred: (line: string) => boolean): string | undefined {
    return this.lines.find(pred);
  }
}

async function stopChild(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

suite('ttrpc and gRPC interop with containerd', () => {
  let dir: string;
  let grpcAddress: string;
  let ttrpcAddress: string;
  let containerd: ChildProcess | undefined;
  let containerdLog = '';
  let ctrEvents: ChildProcess | undefined;
  let events: LineWatcher;
  let grpcClient: grpc.Client | undefined;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vk-ctd-'));
    grpcAddress = path.join(dir, 'containerd.sock');
    ttrpcAddress = `${grpcAddress}.ttrpc`;
    const config = [
      'version = 2',
      `root = ${JSON.stringify(path.join(dir, 'root'))}`,
      `state = ${JSON.stringify(path.join(dir, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(grpcAddress)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(ttrpcAddress)}`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(path.join(dir, 'opt'))}`,
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'config.toml'), config);
    containerd = spawn(containerdBin!, ['--config', path.join(dir, 'config.toml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keepLog = (d: Buffer): void => {
      containerdLog = (containerdLog + d.toString()).slice(-20000);
    };
    containerd.stdout!.on('data', keepLog);
    containerd.stderr!.on('data', keepLog);
    const until = Date.now() + 30_000;
    while (!((await canConnect(grpcAddress)) && (await canConnect(ttrpcAddress)))) {
      if (containerd.exitCode !== null) throw new Error(`containerd exited ${containerd.exitCode}:\n${containerdLog}`);
      if (Date.now() > until) throw new Error(`containerd did not come up:\n${containerdLog}`);
      await sleep(50);
    }
    ctrEvents = spawn(ctrBin!, ['-a', grpcAddress, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
    events = new LineWatcher(ctrEvents.stdout!);
    // no readiness signal from `ctr events`: give its Subscribe a moment, and publish repeatedly below
    await sleep(300);
  }, 60_000);

  afterAll(async () => {
    grpcClient?.close();
    await stopChild(ctrEvents, 2000);
    await stopChild(containerd, 10_000);
    if (dir) {
      // containerd mounts nothing without containers, but never leave a mount behind a rm -rf
      const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
      expect(mounts).toEqual([]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  /** Publishes with `publish` until `ctr events` prints a line that matches, or fails after 15 s. */
  async function publishUntilSeen(publish: () => Promise<unknown>, match: (line: string) => boolean): Promise<string> {
    const until = Date.now() + 15_000;
    for (;;) {
      await publish();
      for (let i = 0; i < 10; i++) {
        const line = events.find(match);
        if (line) return line;
        await sleep(50);
      }
      if (Date.now() > until) throw new Error(`event not seen; ctr printed:\n${events.lines.join('\n')}\ncontainerd log:\n${containerdLog}`);
    }
  }

  test('a TaskExit forwarded over ttrpc shows up in ctr events', async () => {
    const client = await TtrpcClient.connect(ttrpcAddress, { metadata: { [NAMESPACE_KEY]: NS } });
    try {
      const id = `vk-exit-${process.pid}`;
      const exitedAt = new Date('2024-05-06T07:08:09.123Z');
      const forward = (): Promise<ProtoTypes['google.protobuf.Empty']> =>
        client.call(
          EVENTS_TTRPC,
          'Forward',
          'containerd.services.events.ttrpc.v1.ForwardRequest',
          {
            envelope: {
              timestamp: timestamp(),
              namespace: NS,
              topic: '/tasks/exit',
              event: anyOf('containerd.events.TaskExit', { container_id: id, id, pid: 4242, exit_status: 137, exited_at: timestamp(exitedAt) }),
            },
          },
          'google.protobuf.Empty',
          { timeoutMs: 5000 },
        );
      const line = await publishUntilSeen(forward, (l) => l.includes(id));
      // "<timestamp> <namespace> <topic> <event as JSON>"
      expect(line).toContain(` ${NS} /tasks/exit `);
      const json = JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>;
      expect(json).toMatchObject({ container_id: id, id, pid: 4242, exit_status: 137 });
      expect(new Date(json.exited_at as string).toISOString()).toBe(exitedAt.toISOString());
    } finally {
      await client.close();
    }
  });

  test('containerd answers a bad envelope with InvalidArgument and an unknown method with Unimplemented', async () => {
    const client = await TtrpcClient.connect(`unix://${ttrpcAddress}`);
    try {
      const zeroTimestamp = client.call(
        EVENTS_TTRPC,
        'Forward',
        'containerd.services.events.ttrpc.v1.ForwardRequest',
        { envelope: { namespace: NS, topic: '/tasks/exit', event: anyOf('containerd.events.TaskOOM', { container_id: 'x' }) } },
        'google.protobuf.Empty',
      );
      await expect(zeroTimestamp).rejects.toBeInstanceOf(TtrpcError);
      await expect(zeroTimestamp).rejects.toMatchObject({ grpcCode: Code.InvalidArgument, code: 'INVALID_ARGUMENT' });
      // the same words our server uses for these
      await expect(client.call(EVENTS_TTRPC, 'Nope', 'google.protobuf.Empty', {}, 'google.protobuf.Empty')).rejects.toMatchObject({
        grpcCode: Code.Unimplemented,
        message: 'method Nope',
      });
      await expect(client.call('vk.no.Such', 'X', 'google.protobuf.Empty', {}, 'google.protobuf.Empty')).rejects.toMatchObject({
        grpcCode: Code.Unimplemented,
        message: 'service vk.no.Such',
      });
    } finally {
      await client.close();
    }
  });

  function grpcUnary<Req extends ProtoTypeName, Res extends ProtoTypeName>(
    method: string,
    requestType: Req,
    request: ProtoInput<ProtoTypes[Req]>,
    responseType: Res,
    metadata = new grpc.Metadata(),
  ): Promise<ProtoTypes[Res]> {
    grpcClient ??= new grpc.Client(`unix://${grpcAddress}`, grpc.credentials.createInsecure());
    return new Promise((resolve, reject) => {
      grpcClient!.makeUnaryRequest(
        method,
        (req: ProtoInput<ProtoTypes[Req]>) => encode(requestType, req),
        (buf: Buffer) => decode(responseType, buf),
        request,
        metadata,
        { deadline: Date.now() + 10_000 },
        (err, res) => (err ? reject(err) : resolve(res!)),
      );
    });
  }

  test('the gRPC Version service answers through @grpc/grpc-js and the bundle', async () => {
    const res = await grpcUnary('/containerd.services.version.v1.Version/Version', 'google.protobuf.Empty', {}, 'containerd.services.version.v1.VersionResponse');
    const cli = spawnSync(containerdBin!, ['--version'], { encoding: 'utf8' }).stdout;
    expect(res.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(cli).toContain(res.version);
    expect(res.revision).not.toBe('');
  });

  test('an event published through the gRPC Events service shows up in ctr events', async () => {
    const id = `vk-oom-${process.pid}`;
    const md = new grpc.Metadata();
    md.set('containerd-namespace', NS);
    const publish = (): Promise<unknown> =>
      grpcUnary(
        '/containerd.services.events.v1.Events/Publish',
        'containerd.services.events.v1.PublishRequest',
        { topic: '/tasks/oom', event: anyOf('containerd.events.TaskOOM', { container_id: id }) },
        'google.protobuf.Empty',
        md,
      );
    const line = await publishUntilSeen(publish, (l) => l.includes(id));
    expect(line).toContain(` ${NS} /tasks/oom `);
    expect(JSON.parse(line.slice(line.indexOf('{')))).toEqual({ container_id: id });
  });

  test("containerd's own ttrpc client (ctr shim) calls our server and reads our answers and errors", async () => {
    const id = `vk-shim-${process.pid}`;
    const socketDir = '/run/containerd/s';
    const created: string[] = [];
    for (const d of ['/run/containerd', socketDir]) {
      if (!fs.existsSync(d)) {
        fs.mkdirSync(d, { mode: 0o700 });
        created.unshift(d);
      }
    }
    // the address ctr derives for `-a ADDR -n NS shim --id ID` (runc shim convention)
    const sock = path.join(socketDir, crypto.createHash('sha256').update(`${grpcAddress}/${NS}/${id}`).digest('hex'));
    const seen: Array<{ method: string; id: string; ctx: CallContext }> = [];
    const server = new TtrpcServer();
    server.registerService('containerd.task.v2.Task', {
      State: (req, ctx) => {
        seen.push({ method: 'State', id: req.id, ctx });
        return { id: req.id, bundle: '/run/b', pid: 4321, status: 2, stdout: '/fifo/out', exited_at: { seconds: 1700000000, nanos: 0 } };
      },
      Delete: (req, ctx) => {
        seen.push({ method: 'Delete', id: req.id, ctx });
        throw new FailedPreconditionError('cannot delete a running process');
      },
    });
    await server.listen(sock);
    const ctr = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) =>
        execFile(ctrBin!, ['-a', grpcAddress, '-n', NS, 'shim', '--id', id, ...args], { timeout: 15_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
        ),
      );
    try {
      const state = await ctr('state');
      expect(state.stderr).toBe('');
      expect(JSON.parse(state.stdout)).toEqual({
        id,
        bundle: '/run/b',
        pid: 4321,
        status: 2,
        stdout: '/fifo/out',
        exited_at: '2023-11-14T22:13:20Z',
      });
      const del = await ctr('delete');
      expect(del.code).not.toBe(0);
      expect(del.stderr).toContain('code = FailedPrecondition desc = cannot delete a running process');
      const exec = await ctr('exec', '--exec-id', 'e1', '--spec', '/nonexistent.json');
      expect(exec.code).not.toBe(0); // ctr fails reading the spec before calling; nothing reaches us
      // (ctr's shim delete sends an empty DeleteRequest)
      expect(seen.map((s) => [s.method, s.id])).toEqual([
        ['State', id],
        ['Delete', ''],
      ]);
      expect(seen.every((s) => s.ctx.connectionId > 0 && s.ctx.streamId % 2 === 1)).toBe(true);
    } finally {
      await server.close({ timeoutMs: 2000 });
      expect(fs.existsSync(sock)).toBe(false);
      for (const d of created) fs.rmdirSync(d);
    }
  });
});
