// The task service over gRPC (shim/grpc): a grpc-js client calls every task method; the
// same bad requests give the same status codes over gRPC and ttrpc (one toStatus); bad input
// on the wire (unknown services and methods, malformed and oversized messages, garbage bytes)
// gets status codes and never takes the server down. Also the containerd side of gRPC mode:
// events by Events/Publish, the keep-alive's Tasks.Get, and the grpc-js-free unary call.
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { UnavailableError, NotFoundError } from '../../runtime/errors';
import { EventPublisher, emit } from '../../shim/events';
import { GrpcEventTransport, GrpcServer, h2Unary, KeepAlive, ContainerdGrpcClient, protoStrings, registerTaskServiceGrpc } from '../../shim/grpc';
import { anyOf, decode, encode, methodTypes, serviceMethods, TaskStatus, type ProtoInput, type ProtoTypeName, type ProtoTypes } from '../../shim/proto';
import { PROCESS_TYPE_URL, RESOURCES_TYPE_URL, registerTaskService } from '../../shim/task';
import { Code, TtrpcClient, TtrpcServer } from '../../shim/ttrpc';
import { createReq, makeService, tick, type Harness } from './shim-fakes';

const V3 = 'containerd.task.v3.Task';

const processAny = (args: string[]) => ({
  type_url: PROCESS_TYPE_URL,
  value: Buffer.from(JSON.stringify({ args, cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] })),
});

/** A plain grpc-js client of the shim: generic unary calls, messages through shim/proto. */
class TaskClient {
  readonly client: grpc.Client;
  constructor(socket: string) {
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  }
  call<M extends string>(method: M, req: object, opts: { service?: string; metadata?: grpc.Metadata } = {}): Promise<Record<string, unknown>> {
    const service = opts.service ?? V3;
    const { requestType, responseType } = methodTypes(service, method);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/${service}/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        encode(requestType, req as never),
        opts.metadata ?? new grpc.Metadata(),
        {},
        (err: grpc.ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(decode(responseType, res!) as unknown as Record<string, unknown>)),
      );
    });
  }
  close(): void {
    this.client.close();
  }
}

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: number; grpcCode?: number };
    return e.grpcCode ?? e.code ?? -1;
  }
  return Code.OK;
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-grpc-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the task service over gRPC', () => {
  let h: Harness;
  let server: GrpcServer;
  let client: TaskClient;
  let socket: string;

  beforeEach(async () => {
    h = makeService();
    server = new GrpcServer({ defaultNamespace: 'unit' });
    registerTaskServiceGrpc(server, h.svc);
    socket = path.join(dir, `t${Date.now()}.sock`);
    await server.listen(socket);
    client = new TaskClient(socket);
  });
  afterEach(async () => {
    client.close();
    await server.destroy();
  });

  test('a grpc-js client calls every method of containerd.task.v3.Task', async () => {
    const called = new Set<string>();
    const call = (m: string, req: object) => {
      called.add(m);
      return client.call(m, req);
    };
    const { pid } = await call('Create', createReq('c1'));
    expect(pid).toBeGreaterThan(0);
    expect(await call('Connect', { id: 'c1' })).toEqual({ shim_pid: process.pid, task_pid: pid, version: '' });
    expect(await call('Start', { id: 'c1', exec_id: '' })).toEqual({ pid });
    expect(await call('State', { id: 'c1', exec_id: '' })).toMatchObject({ id: 'c1', pid, status: TaskStatus.RUNNING, bundle: '/tmp/c1' });
    expect(((await call('Pids', { id: 'c1' })).processes as Array<{ pid: number }>).map((p) => p.pid)).toContain(pid);
    await call('Exec', { id: 'c1', exec_id: 'e1', terminal: false, stdin: '', stdout: '', stderr: '', spec: processAny(['/bin/sh']) });
    const { pid: execPid } = await call('Start', { id: 'c1', exec_id: 'e1' });
    expect(execPid).toBeGreaterThan(pid as number);
    expect(await codeOf(call('ResizePty', { id: 'c1', exec_id: 'e1', width: 80, height: 24 }))).not.toBe(Code.Unimplemented);
    expect(await call('CloseIO', { id: 'c1', exec_id: 'e1', stdin: true })).toEqual({});
    expect(await call('Pause', { id: 'c1' })).toEqual({});
    expect((await call('State', { id: 'c1', exec_id: '' })).status).toBe(TaskStatus.PAUSED);
    expect(await call('Resume', { id: 'c1' })).toEqual({});
    expect(await call('Update', { id: 'c1', resources: { type_url: RESOURCES_TYPE_URL, value: Buffer.from('{}') }, annotations: {} })).toEqual({});
    const stats = await call('Stats', { id: 'c1' });
    expect((stats.stats as { type_url: string }).type_url).toBe('io.containerd.cgroups.v1.Metrics');
    expect(await codeOf(call('Checkpoint', { id: 'c1', path: '/x', options: null }))).toBe(Code.Unimplemented);
    // Wait blocks until the exit, over gRPC as over ttrpc.
    const waited = call('Wait', { id: 'c1', exec_id: 'e1' });
    await call('Kill', { id: 'c1', exec_id: 'e1', signal: 9, all: false });
    h.rt.exit(execPid as number, 137);
    expect(await waited).toMatchObject({ exit_status: 137 });
    expect(await call('Delete', { id: 'c1', exec_id: 'e1' })).toMatchObject({ pid: execPid, exit_status: 137 });
    const initWait = call('Wait', { id: 'c1', exec_id: '' });
    await call('Kill', { id: 'c1', exec_id: '', signal: 15, all: false });
    h.rt.exit(pid as number, 143);
    expect(await initWait).toMatchObject({ exit_status: 143 });
    expect(await call('Delete', { id: 'c1', exec_id: '' })).toMatchObject({ pid, exit_status: 143 });
    expect(await call('Shutdown', { id: 'c1', now: false })).toEqual({});
    expect(h.shutdowns).toBe(1);
    expect([...called].sort()).toEqual([...serviceMethods(V3)].sort());
    expect(h.events.topics()).toEqual(['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/exit', '/tasks/delete']);
  });

  test('the v2 service name answers too (the same handlers)', async () => {
    await client.call('Create', createReq('c2'), { service: 'containerd.task.v2.Task' });
    expect(await client.call('State', { id: 'c2', exec_id: '' }, { service: 'containerd.task.v2.Task' })).toMatchObject({ id: 'c2', status: TaskStatus.CREATED });
  });

  test('the same bad requests give the same codes over gRPC and ttrpc', async () => {
    const ttrpcServer = new TtrpcServer();
    registerTaskService(ttrpcServer, h.svc);
    const tsock = path.join(dir, `tt${Date.now()}.sock`);
    await ttrpcServer.listen(tsock);
    const tclient = await TtrpcClient.connect(tsock);
    try {
      await client.call('Create', createReq('c1'));
      await client.call('Start', { id: 'c1', exec_id: '' });
      const cases: Array<[string, object]> = [
        ['State', { id: 'nope', exec_id: '' }],
        ['Create', createReq('c1')],
        ['Create', { ...createReq('bad/id') }],
        ['Create', { ...createReq('c3'), checkpoint: '/x' }],
        ['Delete', { id: 'c1', exec_id: '' }],
        ['Start', { id: 'c1', exec_id: '' }],
        ['Resume', { id: 'c1' }],
        ['Checkpoint', { id: 'c1', path: '/x' }],
        ['Exec', { id: 'c1', exec_id: 'x', spec: { type_url: 'bogus', value: Buffer.from('{}') } }],
        ['Kill', { id: 'c1', exec_id: 'e9', signal: 9 }],
        ['Update', { id: 'c1', resources: { type_url: RESOURCES_TYPE_URL, value: Buffer.from('[1]') } }],
      ];
      const viaGrpc: number[] = [];
      const viaTtrpc: number[] = [];
      for (const [m, req] of cases) {
        viaGrpc.push(await codeOf(client.call(m, req)));
        const { requestType, responseType } = methodTypes(V3, m);
        viaTtrpc.push(await codeOf(tclient.call(V3, m, requestType, req as never, responseType)));
      }
      expect(viaGrpc).toEqual(viaTtrpc);
      expect(viaGrpc).toEqual([
        Code.NotFound,
        Code.AlreadyExists,
        Code.InvalidArgument,
        Code.Unimplemented,
        Code.FailedPrecondition,
        Code.FailedPrecondition,
        Code.FailedPrecondition,
        Code.Unimplemented,
        Code.InvalidArgument,
        Code.NotFound,
        Code.InvalidArgument,
      ]);
    } finally {
      await tclient.destroy();
      await ttrpcServer.destroy();
    }
  });

  test('bad input on the wire: status codes, and the server keeps serving', async () => {
    const raw = (p: string, body: Uint8Array) => h2Unary(socket, p, body, { timeoutMs: 5000 });
    await client.call('Create', createReq('c1'));
    // Unknown service and method.
    expect(await codeOf(raw('/containerd.task.v9.Task/State', Buffer.alloc(0)))).toBe(Code.Unimplemented);
    expect(await codeOf(raw(`/${V3}/Explode`, Buffer.alloc(0)))).toBe(Code.Unimplemented);
    // Malformed messages: a truncated string, a bad wire type, a varint that never ends.
    for (const body of [Buffer.from([0x0a, 0x50, 0x41]), Buffer.from([0x0f, 0x01]), Buffer.from([0x18, ...new Array<number>(11).fill(0xff)])]) {
      expect(await codeOf(raw(`/${V3}/State`, body))).toBe(Code.InvalidArgument);
    }
    // A well-formed message with wrong contents is the handler's InvalidArgument.
    expect(await codeOf(raw(`/${V3}/Create`, encode('containerd.task.v3.CreateTaskRequest', { id: '../x', bundle: '/b' })))).toBe(Code.InvalidArgument);
    // Oversized: 5 MiB against the 4 MiB limit.
    expect(await codeOf(client.call('State', { id: 'x'.repeat(5 << 20), exec_id: '' }))).toBe(Code.ResourceExhausted);
    // Garbage instead of HTTP/2, and a connection dropped mid-preface.
    for (const junk of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.alloc(64 * 1024, 0xff), Buffer.from('PRI * HTTP/2.0\r\n')]) {
      await new Promise<void>((resolve) => {
        const s = net.connect(socket, () => s.end(junk));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
      });
    }
    // Still serving, on the old connection and on new ones.
    expect(await client.call('State', { id: 'c1', exec_id: '' })).toMatchObject({ id: 'c1' });
    const fresh = new TaskClient(socket);
    try {
      expect(await fresh.call('Connect', { id: 'c1' })).toMatchObject({ shim_pid: process.pid });
    } finally {
      fresh.close();
    }
  });

  test('a cancelled Wait aborts the handler, and close() drains then refuses', async () => {
    const { pid } = await client.call('Create', createReq('c1'));
    await client.call('Start', { id: 'c1', exec_id: '' });
    const call = client.client.makeUnaryRequest(
      `/${V3}/Wait`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      encode('containerd.task.v3.WaitRequest', { id: 'c1' }),
      () => undefined,
    );
    await tick(50);
    expect(server.callsInFlight).toBe(1);
    call.cancel();
    await tick(50);
    expect(server.callsInFlight).toBe(0);
    h.rt.exit(pid as number, 0);
    await h.svc.wait({ id: 'c1', exec_id: '' });
    expect(server.connections).toBe(1);
    await server.close({ timeoutMs: 2000 });
    expect(server.connections).toBe(0);
    const late = new TaskClient(socket);
    try {
      expect(await codeOf(late.call('Connect', { id: 'c1' }))).toBe(Code.Unavailable);
    } finally {
      late.close();
    }
  });
});

describe('containerd over gRPC: events, keep-alive, the unary call', () => {
  test('EventPublisher with the gRPC transport: Events/Publish in order, namespace in metadata, retried', async () => {
    const received: Array<{ topic: string; ns: string | undefined; type: string }> = [];
    let failNext = 2;
    const fake = new GrpcServer();
    fake.registerService('containerd.services.events.v1.Events', {
      Publish: (req, ctx) => {
        if (failNext > 0) {
          failNext--;
          throw new UnavailableError('containerd restarting');
        }
        received.push({ topic: req.topic, ns: ctx.metadata.get('containerd-namespace'), type: req.event!.type_url });
        return {};
      },
    });
    const sock = path.join(dir, 'events.sock');
    await fake.listen(sock);
    const pub = new EventPublisher({ address: 'unused', transport: new GrpcEventTransport(sock), namespace: 'ns1', retryDelayMs: 10 });
    try {
      expect(pub.transport).toBe('gRPC Publish');
      emit(pub, '/tasks/create', { container_id: 'c1', pid: 1 });
      emit(pub, '/tasks/start', { container_id: 'c1', pid: 1 });
      emit(pub, '/tasks/exit', { container_id: 'c1', id: 'c1', pid: 1, exit_status: 0 });
      await pub.flush();
      expect(received).toEqual([
        { topic: '/tasks/create', ns: 'ns1', type: 'containerd.events.TaskCreate' },
        { topic: '/tasks/start', ns: 'ns1', type: 'containerd.events.TaskStart' },
        { topic: '/tasks/exit', ns: 'ns1', type: 'containerd.events.TaskExit' },
      ]);
      expect(pub.stats).toEqual({ sent: 3, dropped: 0, retries: 2 });
    } finally {
      await pub.close(1000);
      await fake.destroy();
    }
  });

  test('KeepAlive: Tasks.Get for every task served, each interval, with the namespace', async () => {
    const gets: string[] = [];
    const fake = new GrpcServer();
    fake.registerService('containerd.services.tasks.v1.Tasks', {
      Get: (req, ctx) => {
        gets.push(`${ctx.metadata.get('containerd-namespace')}/${req.container_id}`);
        if (req.container_id === 'gone') throw new NotFoundError('no such task');
        return { process: { id: req.container_id, pid: 1, status: TaskStatus.RUNNING } };
      },
    });
    const sock = path.join(dir, 'tasks.sock');
    await fake.listen(sock);
    const client = new ContainerdGrpcClient(sock, 'ns1');
    const lines: string[] = [];
    const log = { debug: (m: string) => lines.push(`debug ${m}`), info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`) };
    let tasks = ['a', 'gone'];
    const ka = new KeepAlive({ client, intervalMs: 100, tasks: () => tasks, log }); // raised to the 1 s minimum
    expect(ka.intervalMs).toBe(1000);
    try {
      ka.start();
      for (let i = 0; i < 400 && gets.length < 4; i++) await tick(25);
      tasks = [];
      await tick(150); // a round already under way finishes
      const before = gets.length;
      await tick(1200);
      ka.stop();
      expect(gets.length).toBe(before);
      expect(before).toBeGreaterThanOrEqual(4);
      expect(new Set(gets)).toEqual(new Set(['ns1/a', 'ns1/gone']));
      expect(lines.filter((l) => l.startsWith('info'))).toEqual([`info ${KeepAlive.describe(1000, sock)}`]);
      expect(lines).toContain('warn keep-alive interval 100 ms is below 1000 ms: using 1000 ms');
      expect(lines.some((l) => l.startsWith('warn keep-alive: Tasks.Get ns1/gone') || l.startsWith('debug keep-alive: Tasks.Get ns1/gone'))).toBe(true);
      expect(ka.stats.gets).toBeGreaterThanOrEqual(2);
    } finally {
      ka.stop();
      client.close();
      await fake.destroy();
    }
  });

  test('KeepAlive: a task failing every round beside healthy ones is warned about (3rd round, then every 20th)', async () => {
    const fake = new GrpcServer();
    fake.registerService('containerd.services.tasks.v1.Tasks', {
      Get: (req) => {
        if (req.container_id === 'gone') throw new NotFoundError('no such task');
        return { process: { id: req.container_id, pid: 1, status: TaskStatus.RUNNING } };
      },
    });
    const sock = path.join(dir, 'tasks-fail.sock');
    await fake.listen(sock);
    const client = new ContainerdGrpcClient(sock, 'ns1');
    const warns: string[] = [];
    const log = { debug: () => undefined, info: () => undefined, warn: (m: string) => warns.push(m) };
    const ka = new KeepAlive({ client, intervalMs: 1000, tasks: () => ['a', 'gone', 'b'], log });
    try {
      for (let round = 1; round <= 23; round++) await ka.tick();
      expect(warns).toHaveLength(2); // rounds 3 and 23
      expect(warns[0]).toMatch(/^keep-alive: Tasks.Get ns1\/gone: .*no such task.* \(3 rounds in a row: containerd may tear this shim down when idle\)$/);
      expect(warns[1]).toContain('(23 rounds in a row');
      expect(ka.stats.gets).toBe(46);
    } finally {
      client.close();
      await fake.destroy();
    }
  });

  test('h2Unary: answers, status codes, and a dead socket', async () => {
    const fake = new GrpcServer();
    fake.registerService('containerd.services.version.v1.Version', {
      Version: (_req, ctx) => {
        if (ctx.metadata.get('x-fail')) throw new NotFoundError('told to fail');
        return { version: '1.7.24', revision: 'abc' };
      },
    });
    const sock = path.join(dir, 'version.sock');
    await fake.listen(sock);
    try {
      const body = await h2Unary(`unix://${sock}`, '/containerd.services.version.v1.Version/Version', Buffer.alloc(0));
      expect(protoStrings(body)).toEqual(new Map([[1, '1.7.24'], [2, 'abc']]));
      expect(decode('containerd.services.version.v1.VersionResponse', body)).toEqual({ version: '1.7.24', revision: 'abc' });
      await expect(h2Unary(sock, '/containerd.services.version.v1.Version/Version', Buffer.alloc(0), { metadata: { 'x-fail': '1' } })).rejects.toMatchObject({
        grpcCode: Code.NotFound,
        message: 'told to fail',
      });
    } finally {
      await fake.destroy();
    }
    await expect(h2Unary(path.join(dir, 'none.sock'), '/x/y', Buffer.alloc(0))).rejects.toMatchObject({ grpcCode: Code.Unavailable });
  });

  test('ContainerdGrpcClient maps failures to TtrpcError codes', async () => {
    const client = new ContainerdGrpcClient(path.join(dir, 'absent.sock'), 'ns1');
    try {
      await expect(
        client.call('containerd.services.tasks.v1.Tasks', 'Get', 'containerd.services.tasks.v1.GetRequest', { container_id: 'x' }, 'containerd.services.tasks.v1.GetResponse', { timeoutMs: 500 }),
      ).rejects.toMatchObject({ grpcCode: expect.any(Number) });
    } finally {
      client.close();
    }
    expect(anyOf('containerd.events.TaskOOM', { container_id: 'x' }).type_url).toBe('containerd.events.TaskOOM');
  });
});

// Type-level check: the helper request types line up with the bundle.
export type _Check = ProtoInput<ProtoTypes['containerd.task.v3.StateRequest']> extends object ? ProtoTypeName : never;
