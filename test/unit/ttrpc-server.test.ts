// TtrpcServer + TtrpcClient on real unix sockets in a temp dir: round trips, concurrency, error
// codes, protocol rules (stream ids, streaming flags, oversize), deadlines, metadata, disconnects,
// graceful close and destroy, and serving an inherited listening fd.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  UnavailableError,
} from '../../runtime/errors';
import { decode, encode, timestamp } from '../../shim/proto';
import { TtrpcClient } from '../../shim/ttrpc/client';
import { Flag, FrameReader, MAX_MESSAGE_LENGTH, MessageType, encodeFrame, encodeHeader, type Frame } from '../../shim/ttrpc/frame';
import { TtrpcServer, unary, type CallContext } from '../../shim/ttrpc/server';
import { Code, TtrpcClosedError, TtrpcError } from '../../shim/ttrpc/status';

const TASK = 'containerd.task.v2.Task';

let dir: string;
let sockPath: string;
let server: TtrpcServer;
const clients: TtrpcClient[] = [];
const raws: RawConn[] = [];

async function client(): Promise<TtrpcClient> {
  const c = await TtrpcClient.connect(sockPath);
  clients.push(c);
  return c;
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** A frame-level peer, for what TtrpcClient never sends. */
class RawConn {
  readonly frames: Frame[] = [];
  #waiters: Array<() => void> = [];
  closed = false;
  private constructor(readonly sock: net.Socket) {
    const reader = new FrameReader({ frame: (f) => this.#push(f), oversize: () => undefined });
    sock.on('data', (c: Buffer) => reader.push(c));
    sock.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    sock.on('error', () => undefined);
  }
  static open(p: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ path: p, allowHalfOpen: true }, () => {
        const r = new RawConn(s);
        raws.push(r);
        resolve(r);
      });
      s.once('error', reject);
    });
  }
  #push(f: Frame): void {
    this.frames.push(f);
    this.#wake();
  }
  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
  send(buf: Buffer): void {
    this.sock.write(buf);
  }
  request(
    id: number,
    service: string,
    method: string,
    payload: Uint8Array,
    opts: { flags?: number; timeout_nano?: number; metadata?: Array<{ key: string; value: string }> } = {},
  ): void {
    const body = encode('ttrpc.Request', { service, method, payload, timeout_nano: opts.timeout_nano ?? 0, metadata: opts.metadata ?? [] });
    this.send(encodeFrame(id, MessageType.Request, opts.flags ?? 0, body));
  }
  async next(ms = 5000): Promise<Frame> {
    const until = Date.now() + ms;
    while (this.frames.length === 0) {
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > until) throw new Error('no frame in time');
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.frames.shift()!;
  }
  async response(ms?: number): Promise<{ streamId: number; code: number; message: string; payload: Uint8Array }> {
    const f = await this.next(ms);
    expect(f.type).toBe(MessageType.Response);
    expect(f.flags).toBe(0);
    const r = decode('ttrpc.Response', f.data);
    return { streamId: f.streamId, code: r.status?.code ?? 0, message: r.status?.message ?? '', payload: r.payload };
  }
  async waitClosed(ms = 5000): Promise<void> {
    await waitFor(() => this.closed, ms);
  }
}

const stateRequest = (id: string): Buffer => encode('containerd.task.v2.StateRequest', { id });

/** Handlers shared by most tests; `gate` lets a test hold a call open. */
let gate: Promise<void> = Promise.resolve();
let seenCtx: CallContext | undefined;
let handlerAborts: unknown[] = [];

function makeServer(): TtrpcServer {
  const s = new TtrpcServer();
  s.registerService(TASK, {
    State: async (req, ctx) => {
      seenCtx = ctx;
      if (req.id.startsWith('slow:')) await sleep(Number(req.id.slice(5)));
      return { id: req.id, exec_id: req.exec_id, pid: 42, status: 2, exited_at: timestamp(1000), bundle: `/b/${req.id}` };
    },
    Wait: async (_req, ctx) => {
      ctx.signal.addEventListener('abort', () => handlerAborts.push(ctx.signal.reason));
      await gate;
      return { exit_status: 7, exited_at: timestamp(2000) };
    },
    Kill: (req) => {
      const errs: Record<string, unknown> = {
        notfound: new NotFoundError('process already finished'),
        exists: new AlreadyExistsError('id c1 is already in use'),
        precondition: new FailedPreconditionError('cannot delete a running process'),
        invalid: new InvalidArgumentError('signal: out of range', 'signal'),
        notimpl: new NotImplementedError('checkpoint is not supported'),
        unavailable: new UnavailableError('shim is shutting down'),
        internal: new InternalError('mount failed'),
        plain: new Error('something odd'),
        string: 'a thrown string',
      };
      if (req.id in errs) throw errs[req.id];
      return {};
    },
    Connect: () => ({ shim_pid: process.pid, task_pid: 0, version: 'vk' }),
    Stats: () => ({ stats: { type_url: 'x', value: Buffer.alloc(MAX_MESSAGE_LENGTH + 10) } }),
    Update: (_req, ctx) =>
      new Promise((resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          handlerAborts.push(ctx.signal.reason);
          reject(ctx.signal.reason);
        });
      }),
  });
  s.register('vk.test.Echo', {
    Echo: unary('ttrpc.KeyValue', 'ttrpc.KeyValue', (req) => ({ key: req.key, value: req.value.toUpperCase() })),
    Bad: unary('ttrpc.KeyValue', 'containerd.task.v2.WaitResponse', () => ({ exited_at: 'yesterday' as never })),
  });
  return s;
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vk-ttrpc-'));
  sockPath = path.join(dir, 's.sock');
  gate = Promise.resolve();
  seenCtx = undefined;
  handlerAborts = [];
  server = makeServer();
  await server.listen(sockPath);
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.destroy();
  for (const r of raws.splice(0)) r.sock.destroy();
  await server.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('round trips', () => {
  test('a typed call returns the decoded response', async () => {
    const c = await client();
    const res = await c.call(TASK, 'State', 'containerd.task.v2.StateRequest', { id: 'c1', exec_id: 'e1' }, 'containerd.task.v2.StateResponse');
    expect(res).toMatchObject({ id: 'c1', exec_id: 'e1', pid: 42, status: 2, bundle: '/b/c1', exited_at: { seconds: 1, nanos: 0 } });
    expect(res.stdin).toBe('');
  });

  test('methods returning Empty answer with an empty payload', async () => {
    const c = await client();
    await expect(c.call(TASK, 'Kill', 'containerd.task.v2.KillRequest', { id: 'ok', signal: 9 }, 'google.protobuf.Empty')).resolves.toEqual({});
  });

  test('the response carries status code 0 and the same stream id', async () => {
    const raw = await RawConn.open(sockPath);
    raw.request(7, TASK, 'State', stateRequest('x'));
    const r = await raw.response();
    expect(r.streamId).toBe(7);
    expect(r.code).toBe(0);
    expect(decode('containerd.task.v2.StateResponse', r.payload).id).toBe('x');
  });

  test('a service registered with unary() works', async () => {
    const c = await client();
    expect(await c.call('vk.test.Echo', 'Echo', 'ttrpc.KeyValue', { key: 'k', value: 'abc' }, 'ttrpc.KeyValue')).toEqual({ key: 'k', value: 'ABC' });
  });

  test('the same handlers can serve containerd.task.v3.Task', async () => {
    const s = new TtrpcServer();
    const impl = { Connect: () => ({ shim_pid: 1, task_pid: 2, version: '3' }) };
    s.registerService('containerd.task.v2.Task', impl).registerService('containerd.task.v3.Task', impl);
    const p = path.join(dir, 'v3.sock');
    await s.listen(p);
    const c = await TtrpcClient.connect(p);
    try {
      const res = await c.call('containerd.task.v3.Task', 'Connect', 'containerd.task.v3.ConnectRequest', { id: 'a' }, 'containerd.task.v3.ConnectResponse');
      expect(res).toEqual({ shim_pid: 1, task_pid: 2, version: '3' });
    } finally {
      await c.destroy();
      await s.destroy();
    }
  });

  test('registering a service twice or an unknown method is refused', () => {
    expect(() => server.register(TASK, {})).toThrow(AlreadyExistsError);
    expect(() => new TtrpcServer().registerService(TASK, { Nope: () => ({}) } as never)).toThrow(NotImplementedError);
  });
});

describe('concurrency', () => {
  test('100 parallel calls on one connection all get their own answer', async () => {
    const c = await client();
    const calls = Array.from({ length: 100 }, (_, i) =>
      c.call(TASK, 'State', 'containerd.task.v2.StateRequest', { id: `slow:${(i * 7) % 23}`, exec_id: String(i) }, 'containerd.task.v2.StateResponse'),
    );
    const res = await Promise.all(calls);
    res.forEach((r, i) => expect(r.exec_id).toBe(String(i)));
    expect(c.pending).toBe(0);
  });

  test('a pending Wait does not hold back other calls', async () => {
    const open = deferred();
    gate = open.promise;
    const c = await client();
    const wait = c.call(TASK, 'Wait', 'containerd.task.v2.WaitRequest', { id: 'c1' }, 'containerd.task.v2.WaitResponse');
    for (let i = 0; i < 5; i++) {
      await c.call(TASK, 'State', 'containerd.task.v2.StateRequest', { id: 'c1' }, 'containerd.task.v2.StateResponse');
    }
    open.resolve();
    expect(await wait).toEqual({ exit_status: 7, exited_at: { seconds: 2, nanos: 0 } });
  });

  test('many clients at once', async () => {
    const cs = await Promise.all(Array.from({ length: 10 }, () => client()));
    const res = await Promise.all(
      cs.flatMap((c, i) => Array.from({ length: 10 }, (_, j) => c.call('vk.test.Echo', 'Echo', 'ttrpc.KeyValue', { value: `v${i}-${j}` }, 'ttrpc.KeyValue'))),
    );
    expect(new Set(res.map((r) => r.value)).size).toBe(100);
    expect(server.connections).toBe(10);
  });
});

describe('errors', () => {
  test.each([
    ['notfound', Code.NotFound, 'NOT_FOUND', 'process already finished'],
    ['exists', Code.AlreadyExists, 'ALREADY_EXISTS', 'id c1 is already in use'],
    ['precondition', Code.FailedPrecondition, 'FAILED_PRECONDITION', 'cannot delete a running process'],
    ['invalid', Code.InvalidArgument, 'INVALID_ARGUMENT', 'signal: out of range'],
    ['notimpl', Code.Unimplemented, 'NOT_IMPLEMENTED', 'checkpoint is not supported'],
    ['unavailable', Code.Unavailable, 'UNAVAILABLE', 'shim is shutting down'],
    ['internal', Code.Internal, 'INTERNAL', 'mount failed'],
    ['plain', Code.Unknown, 'INTERNAL', 'something odd'],
    ['string', Code.Unknown, 'INTERNAL', 'a thrown string'],
  ])('a handler throwing %s answers code %d', async (id, grpcCode, code, message) => {
    const c = await client();
    const err = await c.call(TASK, 'Kill', 'containerd.task.v2.KillRequest', { id }, 'google.protobuf.Empty').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TtrpcError);
    expect(err).toMatchObject({ grpcCode, code, message });
  });

  test('unknown service and unknown method answer Unimplemented in ttrpc words', async () => {
    const c = await client();
    await expect(c.call('no.such.Service', 'State', 'google.protobuf.Empty', {}, 'google.protobuf.Empty')).rejects.toMatchObject({
      grpcCode: Code.Unimplemented,
      message: 'service no.such.Service',
    });
    await expect(c.call(TASK, 'Frobnicate', 'google.protobuf.Empty', {}, 'google.protobuf.Empty')).rejects.toMatchObject({
      grpcCode: Code.Unimplemented,
      message: 'method Frobnicate',
    });
    // registerService leaves methods without a handler unregistered
    await expect(c.call(TASK, 'Pause', 'containerd.task.v2.PauseRequest', {}, 'google.protobuf.Empty')).rejects.toMatchObject({
      grpcCode: Code.Unimplemented,
      message: 'method Pause',
    });
    // prototype names are not methods
    await expect(c.call(TASK, 'constructor', 'google.protobuf.Empty', {}, 'google.protobuf.Empty')).rejects.toMatchObject({
      grpcCode: Code.Unimplemented,
    });
  });

  test('a malformed request payload answers InvalidArgument', async () => {
    const raw = await RawConn.open(sockPath);
    raw.request(1, TASK, 'State', Buffer.from([0x0a, 0x7f, 0x41])); // id: string claims 127 bytes, has 1
    const r = await raw.response();
    expect(r.code).toBe(Code.InvalidArgument);
    expect(r.message).toMatch(/^ttrpc: error unmarshalling payload: malformed containerd.task.v2.StateRequest/);
  });

  test('a malformed ttrpc.Request answers InvalidArgument on its stream', async () => {
    const raw = await RawConn.open(sockPath);
    raw.send(encodeFrame(5, MessageType.Request, 0, Buffer.from([0xff, 0xff, 0xff])));
    const r = await raw.response();
    expect(r).toMatchObject({ streamId: 5, code: Code.InvalidArgument });
    expect(r.message).toMatch(/^unmarshal request error: /);
  });

  test('a response the handler cannot encode answers Internal', async () => {
    const c = await client();
    await expect(c.call('vk.test.Echo', 'Bad', 'ttrpc.KeyValue', {}, 'containerd.task.v2.WaitResponse')).rejects.toMatchObject({
      grpcCode: Code.Internal,
      message: expect.stringMatching(/^ttrpc: error marshaling payload: cannot encode containerd.task.v2.WaitResponse: .*exited_at: object expected/),
    });
  });

  test('a response over 4 MiB answers ResourceExhausted instead', async () => {
    const c = await client();
    await expect(c.call(TASK, 'Stats', 'containerd.task.v2.StatsRequest', { id: 'x' }, 'containerd.task.v2.StatsResponse')).rejects.toMatchObject({
      grpcCode: Code.ResourceExhausted,
    });
    await expect(c.call(TASK, 'Connect', 'containerd.task.v2.ConnectRequest', {}, 'containerd.task.v2.ConnectResponse')).resolves.toMatchObject({
      version: 'vk',
    });
  });
});

describe('protocol rules', () => {
  test('even stream ids are refused', async () => {
    const raw = await RawConn.open(sockPath);
    raw.request(2, TASK, 'State', stateRequest('x'));
    expect(await raw.response()).toMatchObject({ streamId: 2, code: Code.InvalidArgument, message: 'StreamID must be odd for client initiated streams' });
  });

  test('stream ids must increase', async () => {
    const raw = await RawConn.open(sockPath);
    raw.request(5, TASK, 'State', stateRequest('a'));
    expect(await raw.response()).toMatchObject({ streamId: 5, code: 0 });
    raw.request(5, TASK, 'State', stateRequest('b'));
    expect(await raw.response()).toMatchObject({ streamId: 5, code: Code.InvalidArgument, message: 'StreamID cannot be re-used and must increment' });
    raw.request(3, TASK, 'State', stateRequest('c'));
    expect(await raw.response()).toMatchObject({ streamId: 3, code: Code.InvalidArgument });
    raw.request(9, TASK, 'State', stateRequest('d'));
    expect(await raw.response()).toMatchObject({ streamId: 9, code: 0 });
  });

  test('a client-streaming request is refused and its data frames are dropped', async () => {
    const raw = await RawConn.open(sockPath);
    raw.request(1, TASK, 'State', stateRequest('x'), { flags: Flag.RemoteOpen });
    const r = await raw.response();
    expect(r).toMatchObject({ streamId: 1, code: Code.Unimplemented });
    expect(r.message).toMatch(/streaming/);
    raw.send(encodeFrame(1, MessageType.Data, 0, stateRequest('more')));
    raw.send(encodeFrame(1, MessageType.Data, Flag.RemoteClosed | Flag.NoData));
    raw.request(3, TASK, 'State', stateRequest('y'));
    expect(await raw.response()).toMatchObject({ streamId: 3, code: 0 });
    expect(raw.frames).toHaveLength(0);
  });

  test('a remote-closed request is served like a unary one', async () => {
    const raw = await RawConn.open(sockPath);
    raw.request(1, TASK, 'State', stateRequest('x'), { flags: Flag.RemoteClosed });
    expect(await raw.response()).toMatchObject({ streamId: 1, code: 0 });
  });

  test('data for a stream that is not open answers InvalidArgument', async () => {
    const raw = await RawConn.open(sockPath);
    raw.send(encodeFrame(11, MessageType.Data, 0, Buffer.from('x')));
    expect(await raw.response()).toMatchObject({ streamId: 11, code: Code.InvalidArgument, message: 'StreamID is no longer active' });
  });

  test('unknown message types are ignored', async () => {
    const raw = await RawConn.open(sockPath);
    raw.send(encodeFrame(1, 0x7f, 0, Buffer.from('future')));
    raw.send(encodeFrame(1, MessageType.Response, 0));
    raw.request(3, TASK, 'State', stateRequest('x'));
    expect(await raw.response()).toMatchObject({ streamId: 3, code: 0 });
  });

  test('an oversized frame answers ResourceExhausted and the connection keeps working', async () => {
    const raw = await RawConn.open(sockPath);
    const big = MAX_MESSAGE_LENGTH + 1;
    raw.send(encodeHeader({ length: big, streamId: 1, type: MessageType.Request, flags: 0 }));
    expect(await raw.response()).toMatchObject({
      streamId: 1,
      code: Code.ResourceExhausted,
      message: `message length ${big} exceed maximum message size of 4194304`,
    });
    raw.send(Buffer.alloc(big));
    raw.request(3, TASK, 'State', stateRequest('after'));
    const r = await raw.response();
    expect(r).toMatchObject({ streamId: 3, code: 0 });
  });

  test('the client refuses to send a request over 4 MiB', async () => {
    const c = await client();
    await expect(
      c.call('vk.test.Echo', 'Echo', 'ttrpc.KeyValue', { value: 'x'.repeat(MAX_MESSAGE_LENGTH) }, 'ttrpc.KeyValue'),
    ).rejects.toMatchObject({ grpcCode: Code.ResourceExhausted });
    await expect(c.call('vk.test.Echo', 'Echo', 'ttrpc.KeyValue', { value: 'ok' }, 'ttrpc.KeyValue')).resolves.toMatchObject({ value: 'OK' });
  });
});

describe('call context', () => {
  test('metadata, namespace, deadline and ids reach the handler', async () => {
    const c = new TtrpcClient(await new Promise<net.Socket>((r) => {
      const s = net.createConnection({ path: sockPath }, () => r(s));
    }), { metadata: { 'containerd-namespace-ttrpc': 'default', 'X-Multi': 'client' } });
    clients.push(c);
    const before = Date.now();
    await c.call(TASK, 'State', 'containerd.task.v2.StateRequest', { id: 'x' }, 'containerd.task.v2.StateResponse', {
      timeoutMs: 5000,
      metadata: { 'x-multi': ['a', 'b'], traceparent: '00-abc' },
    });
    const ctx = seenCtx!;
    expect(ctx.service).toBe(TASK);
    expect(ctx.method).toBe('State');
    expect(ctx.streamId).toBe(1);
    expect(ctx.namespace).toBe('default');
    expect(ctx.metadata.getAll('X-MULTI')).toEqual(['a', 'b']);
    expect(ctx.metadata.get('traceparent')).toBe('00-abc');
    expect(ctx.deadline).toBeGreaterThanOrEqual(before + 4900);
    expect(ctx.deadline).toBeLessThanOrEqual(Date.now() + 5000);
    expect(ctx.signal.aborted).toBe(false);
    expect(ctx.connectionId).toBeGreaterThan(0);
  });

  test('without timeout_nano there is no deadline', async () => {
    const c = await client();
    await c.call(TASK, 'State', 'containerd.task.v2.StateRequest', { id: 'x' }, 'containerd.task.v2.StateResponse');
    expect(seenCtx!.deadline).toBeUndefined();
    expect(seenCtx!.namespace).toBeUndefined();
  });

  test('a passed deadline answers DeadlineExceeded and aborts the handler', async () => {
    const raw = await RawConn.open(sockPath);
    raw.request(1, TASK, 'Update', encode('containerd.task.v2.UpdateTaskRequest', { id: 'x' }), { timeout_nano: 50e6 });
    const t0 = Date.now();
    const r = await raw.response();
    expect(r).toMatchObject({ streamId: 1, code: Code.DeadlineExceeded, message: 'context deadline exceeded' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(40);
    await waitFor(() => handlerAborts.length === 1);
    expect((handlerAborts[0] as TtrpcError).grpcCode).toBe(Code.DeadlineExceeded);
    // the late rejection of the handler sends nothing more
    await sleep(50);
    expect(raw.frames).toHaveLength(0);
  });

  test('a negative timeout is already past', async () => {
    const raw = await RawConn.open(sockPath);
    raw.request(1, TASK, 'State', stateRequest('x'), { timeout_nano: -1 });
    expect(await raw.response()).toMatchObject({ code: Code.DeadlineExceeded });
  });

  test('the client enforces its own timeout', async () => {
    gate = new Promise(() => undefined);
    const c = await client();
    const t0 = Date.now();
    await expect(
      c.call(TASK, 'Wait', 'containerd.task.v2.WaitRequest', { id: 'x' }, 'containerd.task.v2.WaitResponse', { timeoutMs: 100 }),
    ).rejects.toMatchObject({ grpcCode: Code.DeadlineExceeded });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(c.pending).toBe(0);
    // the connection is still good
    await expect(c.call(TASK, 'Connect', 'containerd.task.v2.ConnectRequest', {}, 'containerd.task.v2.ConnectResponse')).resolves.toBeTruthy();
  });

  test('an aborted signal cancels the call on the client', async () => {
    gate = new Promise(() => undefined);
    const c = await client();
    const ac = new AbortController();
    const p = c.call(TASK, 'Wait', 'containerd.task.v2.WaitRequest', { id: 'x' }, 'containerd.task.v2.WaitResponse', { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ grpcCode: Code.Canceled });
  });
});

describe('connections and shutdown', () => {
  test('a client that disconnects aborts its in-flight handlers', async () => {
    gate = new Promise(() => undefined);
    const c = await client();
    const p = c.call(TASK, 'Wait', 'containerd.task.v2.WaitRequest', { id: 'x' }, 'containerd.task.v2.WaitResponse').catch((e: unknown) => e);
    await waitFor(() => server.connections === 1);
    await sleep(20);
    await c.destroy();
    expect(await p).toBeInstanceOf(TtrpcClosedError);
    await waitFor(() => handlerAborts.length === 1 && server.connections === 0);
    expect(handlerAborts[0]).toBeInstanceOf(TtrpcClosedError);
  });

  test('end of input closes the connection and aborts what is in flight, as ttrpc does', async () => {
    gate = new Promise(() => undefined);
    const raw = await RawConn.open(sockPath);
    raw.request(1, TASK, 'State', stateRequest('now'));
    expect(await raw.response()).toMatchObject({ streamId: 1, code: 0 });
    raw.request(3, TASK, 'Wait', encode('containerd.task.v2.WaitRequest', { id: 'x' }));
    await sleep(20);
    raw.sock.end();
    await raw.waitClosed();
    await waitFor(() => handlerAborts.length === 1 && server.connections === 0);
  });

  test('close() drains: in-flight calls finish, new ones are refused, the socket file goes away', async () => {
    const open = deferred();
    gate = open.promise;
    const c = await client();
    const wait = c.call(TASK, 'Wait', 'containerd.task.v2.WaitRequest', { id: 'x' }, 'containerd.task.v2.WaitResponse');
    await waitFor(() => server.connections === 1);
    await sleep(20);
    const closing = server.close();
    expect(server.close()).toBe(closing);
    await waitFor(() => !fs.existsSync(sockPath));
    await expect(c.call(TASK, 'State', 'containerd.task.v2.StateRequest', { id: 'x' }, 'containerd.task.v2.StateResponse')).rejects.toMatchObject({
      grpcCode: Code.Unavailable,
    });
    await expect(TtrpcClient.connect(sockPath)).rejects.toBeInstanceOf(TtrpcClosedError);
    open.resolve();
    expect(await wait).toMatchObject({ exit_status: 7 });
    await closing;
    expect(server.connections).toBe(0);
    await waitFor(() => c.closed);
    await expect(server.listen(path.join(dir, 'again.sock'))).rejects.toBeInstanceOf(UnavailableError);
    await server.destroy();
  });

  test('close() with a timeout falls back to destroy()', async () => {
    gate = new Promise(() => undefined);
    const c = await client();
    const wait = c.call(TASK, 'Wait', 'containerd.task.v2.WaitRequest', { id: 'x' }, 'containerd.task.v2.WaitResponse').catch((e: unknown) => e);
    await waitFor(() => server.connections === 1);
    await sleep(20);
    await server.close({ timeoutMs: 100 });
    expect(await wait).toBeInstanceOf(TtrpcClosedError);
    expect(server.connections).toBe(0);
  });

  test('destroy() aborts everything and is idempotent', async () => {
    gate = new Promise(() => undefined);
    const c = await client();
    const waits = [1, 2, 3].map(() =>
      c.call(TASK, 'Wait', 'containerd.task.v2.WaitRequest', { id: 'x' }, 'containerd.task.v2.WaitResponse').catch((e: unknown) => e),
    );
    await waitFor(() => server.connections === 1);
    await sleep(20);
    const d = server.destroy();
    expect(server.destroy()).toBe(d);
    await d;
    for (const w of waits) expect(await w).toBeInstanceOf(TtrpcClosedError);
    await waitFor(() => handlerAborts.length === 3);
    await server.close();
    expect(fs.existsSync(sockPath)).toBe(false);
  });

  test('client close() waits for pending calls, then refuses new ones', async () => {
    const c = await client();
    const p = c.call(TASK, 'State', 'containerd.task.v2.StateRequest', { id: 'slow:50' }, 'containerd.task.v2.StateResponse');
    const closed = c.close();
    await expect(c.call(TASK, 'State', 'containerd.task.v2.StateRequest', {}, 'containerd.task.v2.StateResponse')).rejects.toBeInstanceOf(
      TtrpcClosedError,
    );
    expect((await p).id).toBe('slow:50');
    await closed;
    expect(c.closed).toBe(true);
    const seen = deferred<Error | undefined>();
    c.onClose((e) => seen.resolve(e));
    expect(await seen.promise).toBeUndefined();
  });

  test('the client reports a server that goes away', async () => {
    const c = await client();
    const gone = deferred();
    c.onClose(() => gone.resolve());
    await server.destroy();
    await gone.promise;
    expect(c.closed).toBe(true);
    await expect(c.call(TASK, 'State', 'containerd.task.v2.StateRequest', {}, 'containerd.task.v2.StateResponse')).rejects.toBeInstanceOf(
      TtrpcClosedError,
    );
  });

  test('connecting to a missing socket fails with Unavailable', async () => {
    await expect(TtrpcClient.connect(`unix://${dir}/missing.sock`)).rejects.toMatchObject({ grpcCode: Code.Unavailable });
  });

  test('listen() on a path in use fails', async () => {
    await expect(new TtrpcServer().listen(sockPath)).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  test('listen({ path, mode }) sets the socket mode', async () => {
    const s = new TtrpcServer();
    const p = path.join(dir, 'mode.sock');
    await s.listen({ path: p, mode: 0o600 });
    expect(fs.statSync(p).mode & 0o777).toBe(0o600);
    await s.destroy();
  });

  test('serves a listening socket inherited as fd 3 (the shim daemon hand-over)', async () => {
    const handoff = net.createServer();
    const first = path.join(dir, 'handoff.sock');
    await new Promise<void>((r) => handoff.listen(first, r));
    const fd = (handoff as unknown as { _handle: { fd: number } })._handle.fd;
    const serverModule = path.resolve(__dirname, '../../shim/ttrpc/server.js');
    const script = `
      const { TtrpcServer, unary } = require(${JSON.stringify(serverModule)});
      const s = new TtrpcServer();
      s.register('vk.test.Echo', { Echo: unary('ttrpc.KeyValue', 'ttrpc.KeyValue', (r) => ({ key: 'pid', value: String(process.pid) })) });
      s.listen({ fd: 3 }).then(() => process.stdout.write('ready\\n'));
      process.stdin.on('end', () => s.destroy().then(() => process.exit(0)));
      process.stdin.resume();`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit', fd] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      // keep the socket file (the parent's close would unlink it), then let go of the parent's copy
      const kept = path.join(dir, 'kept.sock');
      fs.renameSync(first, kept);
      await new Promise<void>((r) => handoff.close(() => r()));
      const c = await TtrpcClient.connect(kept);
      clients.push(c);
      const res = await c.call('vk.test.Echo', 'Echo', 'ttrpc.KeyValue', {}, 'ttrpc.KeyValue');
      expect(res.value).toBe(String(child.pid));
    } finally {
      child.stdin!.end();
      if (handoff.listening) handoff.close();
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
  });
});
