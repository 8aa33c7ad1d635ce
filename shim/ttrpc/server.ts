// A ttrpc server over unix sockets: unary methods, any number of concurrent requests per
// connection (Wait stays pending for a container's whole life), errors as google.rpc.Status
// through toStatus. A peer that sends garbage gets error responses where ttrpc sends them (bad
// stream ids, unparsable requests, oversized frames); end of input or an internal failure closes
// only that connection and aborts its handlers. Nothing a peer sends can take the server down.
//
// Lifecycle: listen()/accept() -> close() drains (no new connections or requests, in-flight
// requests finish, then connections end) -> destroy() aborts everything. Both are idempotent.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { AlreadyExistsError, NotImplementedError, UnavailableError } from '../../runtime/errors';
import {
  decode,
  encode,
  methodTypes,
  serviceMethods,
  type ProtoInput,
  type ProtoServiceName,
  type ProtoServices,
  type ProtoTypeName,
  type ProtoTypes,
} from '../proto';
import { Flag, FrameReader, MAX_MESSAGE_LENGTH, MessageType, encodeFrame, oversizeError, type Frame } from './frame';
import { silentLogger, type TtrpcLogger } from './logger';
import { Metadata, NAMESPACE_KEY } from './metadata';
import { Code, TtrpcClosedError, TtrpcError, toStatus, type RpcStatus } from './status';

/** What a handler learns about its call besides the request. */
export interface CallContext {
  readonly service: string;
  readonly method: string;
  readonly streamId: number;
  readonly metadata: Metadata;
  /** The `containerd-namespace-ttrpc` metadata value, if sent. */
  readonly namespace: string | undefined;
  /** Epoch milliseconds after which the caller has given up (from timeout_nano), if it set one. */
  readonly deadline: number | undefined;
  /** Aborted when the deadline passes, the client disconnects, or the server is destroyed. */
  readonly signal: AbortSignal;
  /** Distinguishes the connections of one server (containerd opens one per task in 1.6/1.7). */
  readonly connectionId: number;
}

export interface UnaryMethod<Req extends ProtoTypeName = ProtoTypeName, Res extends ProtoTypeName = ProtoTypeName> {
  requestType: Req;
  responseType: Res;
  handler(req: ProtoTypes[Req], ctx: CallContext): Promise<ProtoInput<ProtoTypes[Res]>> | ProtoInput<ProtoTypes[Res]>;
}

export type ServiceMethods = Record<string, UnaryMethod>;

/** Builds a UnaryMethod with the request and response shapes inferred from the type names. */
export function unary<Req extends ProtoTypeName, Res extends ProtoTypeName>(
  requestType: Req,
  responseType: Res,
  handler: (req: ProtoTypes[Req], ctx: CallContext) => Promise<ProtoInput<ProtoTypes[Res]>> | ProtoInput<ProtoTypes[Res]>,
): UnaryMethod<Req, Res> {
  return { requestType, responseType, handler };
}

type MethodOf<S extends ProtoServiceName, M extends keyof ProtoServices[S]> = ProtoServices[S][M];
type ReqOf<S extends ProtoServiceName, M extends keyof ProtoServices[S]> =
  MethodOf<S, M> extends { request: infer R extends ProtoTypeName } ? R : never;
type ResOf<S extends ProtoServiceName, M extends keyof ProtoServices[S]> =
  MethodOf<S, M> extends { response: infer R extends ProtoTypeName } ? R : never;

/** Handlers for (some of) the methods of a bundled service; missing ones answer Unimplemented. */
export type ServiceImpl<S extends ProtoServiceName> = {
  [M in keyof ProtoServices[S]]?: (
    req: ProtoTypes[ReqOf<S, M>],
    ctx: CallContext,
  ) => Promise<ProtoInput<ProtoTypes[ResOf<S, M>]>> | ProtoInput<ProtoTypes[ResOf<S, M>]>;
};

export type ListenTarget = string | { path: string; mode?: number } | { fd: number };

export interface TtrpcServerOptions {
  logger?: TtrpcLogger;
  /** Requests one connection may have in flight; more get ResourceExhausted. Default 1024. */
  maxConcurrentRequests?: number;
}

type Lookup = UnaryMethod | { unimplemented: string };

interface ServerHooks {
  readonly logger: TtrpcLogger;
  readonly maxConcurrentRequests: number;
  lookup(service: string, method: string): Lookup;
  accepting(): boolean;
}

export class TtrpcServer {
  readonly #services = new Map<string, ServiceMethods>();
  readonly #listeners = new Map<net.Server, Promise<void>>();
  readonly #connections = new Set<ServerConnection>();
  readonly #hooks: ServerHooks;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  #nextConnectionId = 1;

  constructor(opts: TtrpcServerOptions = {}) {
    const self = this;
    this.#hooks = {
      logger: opts.logger ?? silentLogger,
      maxConcurrentRequests: opts.maxConcurrentRequests ?? 1024,
      lookup: (service, method) => self.#lookup(service, method),
      accepting: () => self.#state === 'open',
    };
  }

  /** Registers `methods` under `serviceName`, the name on the wire (e.g. "containerd.task.v2.Task"). */
  register(serviceName: string, methods: ServiceMethods): this {
    if (this.#services.has(serviceName)) throw new AlreadyExistsError(`ttrpc: service ${serviceName} is already registered`);
    this.#services.set(serviceName, { ...methods });
    return this;
  }

  /** Registers handlers for a service from the proto bundle; request/response types come from the bundle. */
  registerService<S extends ProtoServiceName>(serviceName: S, impl: ServiceImpl<S>): this {
    const methods: ServiceMethods = {};
    const known = new Set<string>(serviceMethods(serviceName));
    for (const [name, handler] of Object.entries(impl)) {
      if (typeof handler !== 'function') continue;
      if (!known.has(name)) throw new NotImplementedError(`ttrpc: ${serviceName} has no method ${name}`);
      const mt = methodTypes(serviceName, name);
      methods[name] = { ...mt, handler: handler as UnaryMethod['handler'] };
    }
    return this.register(serviceName, methods);
  }

  /** Starts accepting on a unix socket path (created; `mode` applied) or an inherited listening fd. */
  async listen(target: ListenTarget): Promise<void> {
    this.#assertOpen();
    const srv = net.createServer({ allowHalfOpen: true }, (sock) => this.accept(sock));
    const spec = typeof target === 'string' ? { path: target } : 'fd' in target ? { fd: target.fd } : { path: target.path };
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(spec, () => {
        srv.off('error', reject);
        resolve();
      });
    });
    if (typeof target === 'object' && 'mode' in target && target.mode !== undefined) fs.chmodSync(target.path, target.mode);
    srv.on('error', (err) => this.#hooks.logger.error(`ttrpc: listener: ${err.message}`));
    this.#listeners.set(srv, new Promise((resolve) => srv.once('close', () => resolve())));
    if (this.#state !== 'open') srv.close();
  }

  /** Serves an already connected socket (tests, socketpairs, an fd handed over by another process). */
  accept(socket: net.Socket): void {
    if (this.#state !== 'open') {
      socket.destroy();
      return;
    }
    const conn = new ServerConnection(this.#nextConnectionId++, socket, this.#hooks);
    this.#connections.add(conn);
    void conn.closed.then(() => this.#connections.delete(conn));
  }

  /** Open connections. */
  get connections(): number {
    return this.#connections.size;
  }

  /**
   * Graceful shutdown: stop listening (a listening path is removed), answer new requests with
   * Unavailable, let in-flight ones finish, then end each connection. After `timeoutMs`, destroy().
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#state === 'open') this.#state = 'closing';
    const done = Promise.all([...this.#closeListeners(), ...[...this.#connections].map((c) => c.drain())]).then(() => {
      this.#state = 'closed';
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout =
      opts.timeoutMs === undefined
        ? undefined
        : new Promise<void>((resolve) => {
            timer = setTimeout(() => resolve(this.destroy(new TtrpcClosedError('ttrpc: server close timed out'))), opts.timeoutMs);
          });
    this.#closing = (timeout ? Promise.race([done, timeout]) : done).finally(() => clearTimeout(timer));
    return this.#closing;
  }

  /** Immediate shutdown: closes listeners and connections, aborts every handler's signal. */
  destroy(err?: Error): Promise<void> {
    if (this.#destroying) return this.#destroying;
    this.#state = 'closed';
    const reason = err ?? new TtrpcClosedError('ttrpc: server destroyed');
    const waits = [...this.#closeListeners(), ...[...this.#connections].map((c) => c.destroy(reason))];
    this.#destroying = Promise.all(waits).then(() => undefined);
    return this.#destroying;
  }

  #closeListeners(): Promise<void>[] {
    for (const srv of this.#listeners.keys()) if (srv.listening) srv.close();
    return [...this.#listeners.values()];
  }

  #assertOpen(): void {
    if (this.#state !== 'open') throw new UnavailableError('ttrpc: server is closed');
  }

  #lookup(service: string, method: string): Lookup {
    const svc = this.#services.get(service);
    if (!svc) return { unimplemented: `service ${service}` };
    const m = Object.prototype.hasOwnProperty.call(svc, method) ? svc[method] : undefined;
    if (!m) return { unimplemented: `method ${method}` };
    return m;
  }
}

interface Inflight {
  readonly controller: AbortController;
  timer?: NodeJS.Timeout;
}

/** Encodes as an empty google.rpc.Status, as ttrpc's Go server sends for success. */
const OK: Partial<RpcStatus> = {};

/** Streams that opened with remote-open (client streaming) were refused; their data frames are dropped. */
const MAX_REFUSED_STREAMS = 256;

class ServerConnection {
  readonly id: number;
  readonly closed: Promise<void>;
  readonly #socket: net.Socket;
  readonly #hooks: ServerHooks;
  readonly #reader: FrameReader;
  readonly #inflight = new Map<number, Inflight>();
  readonly #refused = new Set<number>();
  #lastStreamId = 0;
  #peerEnded = false;
  #draining = false;
  #ending = false;

  constructor(id: number, socket: net.Socket, hooks: ServerHooks) {
    this.id = id;
    this.#socket = socket;
    this.#hooks = hooks;
    this.#reader = new FrameReader({
      frame: (f) => this.#onFrame(f),
      oversize: (h) => this.#respond(h.streamId, toStatus(oversizeError(h.length))),
    });
    this.closed = socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk);
      } catch (err) {
        hooks.logger.warn(`ttrpc: connection ${id}: ${(err as Error).message}: closing it`);
        this.destroy();
      }
    });
    // Like ttrpc, end of input ends the connection: a peer that went away cannot be told apart
    // from one that half-closed, and handlers waiting on it (Wait) must not pin it open.
    socket.on('end', () => {
      this.#peerEnded = true;
      if (this.#inflight.size > 0) hooks.logger.debug(`ttrpc: connection ${id}: peer closed with ${this.#inflight.size} calls in flight`);
      this.destroy();
    });
    socket.on('error', (err) => hooks.logger.debug(`ttrpc: connection ${id}: ${err.message}`));
    socket.on('drain', () => socket.resume());
    socket.once('close', () => this.#abortAll(new TtrpcClosedError('ttrpc: connection closed')));
  }

  drain(): Promise<void> {
    this.#draining = true;
    this.#maybeEnd();
    return this.closed;
  }

  destroy(reason?: Error): Promise<void> {
    this.#abortAll(reason ?? new TtrpcClosedError('ttrpc: connection closed'));
    this.#socket.destroy();
    return this.closed;
  }

  #abortAll(reason: Error): void {
    for (const entry of this.#inflight.values()) {
      clearTimeout(entry.timer);
      entry.controller.abort(reason);
    }
    this.#inflight.clear();
  }

  /** Ends a draining connection once nothing is in flight. */
  #maybeEnd(): void {
    if (this.#ending || this.#peerEnded || this.#inflight.size > 0 || !this.#draining) return;
    this.#ending = true;
    this.#socket.end(() => this.#socket.destroy());
  }

  #onFrame(f: Frame): void {
    if (f.streamId % 2 !== 1) {
      this.#respond(f.streamId, { code: Code.InvalidArgument, message: 'StreamID must be odd for client initiated streams' });
      return;
    }
    if (f.type === MessageType.Request) this.#onRequest(f);
    else if (f.type === MessageType.Data) this.#onData(f);
    else this.#hooks.logger.debug(`ttrpc: connection ${this.id}: ignoring message type ${f.type} on stream ${f.streamId}`);
  }

  #onData(f: Frame): void {
    if (this.#refused.has(f.streamId)) {
      if (f.flags & Flag.RemoteClosed) this.#refused.delete(f.streamId);
      return;
    }
    if (this.#inflight.has(f.streamId)) return; // data on a unary stream: nothing reads it
    this.#respond(f.streamId, { code: Code.InvalidArgument, message: 'StreamID is no longer active' });
  }

  #onRequest(f: Frame): void {
    const id = f.streamId;
    if (id <= this.#lastStreamId) {
      this.#respond(id, { code: Code.InvalidArgument, message: 'StreamID cannot be re-used and must increment' });
      return;
    }
    this.#lastStreamId = id;
    if (this.#draining || !this.#hooks.accepting()) {
      this.#respond(id, { code: Code.Unavailable, message: 'ttrpc: server shutting down' });
      return;
    }
    let req: ProtoTypes['ttrpc.Request'];
    try {
      req = decode('ttrpc.Request', f.data);
    } catch (err) {
      this.#respond(id, { code: Code.InvalidArgument, message: `unmarshal request error: ${(err as Error).message}` });
      return;
    }
    const found = this.#hooks.lookup(req.service, req.method);
    if ('unimplemented' in found) {
      this.#respond(id, { code: Code.Unimplemented, message: found.unimplemented });
      return;
    }
    if (f.flags & Flag.RemoteOpen) {
      if (this.#refused.size >= MAX_REFUSED_STREAMS) this.#refused.delete(this.#refused.values().next().value!);
      this.#refused.add(id);
      this.#respond(id, { code: Code.Unimplemented, message: `method ${req.method}: streaming requests are not supported` });
      return;
    }
    if (this.#inflight.size >= this.#hooks.maxConcurrentRequests) {
      this.#respond(id, { code: Code.ResourceExhausted, message: 'ttrpc: too many concurrent requests on this connection' });
      return;
    }
    let payload: unknown;
    try {
      payload = decode(found.requestType, req.payload);
    } catch (err) {
      this.#respond(id, { code: Code.InvalidArgument, message: `ttrpc: error unmarshalling payload: ${(err as Error).message}` });
      return;
    }
    this.#run(id, req, found, payload);
  }

  #run(id: number, req: ProtoTypes['ttrpc.Request'], m: UnaryMethod, payload: unknown): void {
    const controller = new AbortController();
    const entry: Inflight = { controller };
    const metadata = new Metadata(req.metadata);
    let deadline: number | undefined;
    if (req.timeout_nano !== 0) {
      const ms = req.timeout_nano / 1e6;
      deadline = Date.now() + ms;
      if (ms <= 0) {
        this.#respond(id, { code: Code.DeadlineExceeded, message: 'context deadline exceeded' });
        return;
      }
      // Past ~24.8 days setTimeout would fire at once; such a deadline is as good as none.
      if (ms < 2 ** 31 - 1) entry.timer = setTimeout(() => this.#expire(id, entry), Math.ceil(ms));
    }
    this.#inflight.set(id, entry);
    const ctx: CallContext = {
      service: req.service,
      method: req.method,
      streamId: id,
      metadata,
      namespace: metadata.get(NAMESPACE_KEY),
      deadline,
      signal: controller.signal,
      connectionId: this.id,
    };
    Promise.resolve()
      .then(() => m.handler(payload as never, ctx))
      .then(
        (res) => {
          if (!this.#finish(id, entry)) return;
          let body: Buffer;
          try {
            body = encode(m.responseType, res as never);
          } catch (err) {
            this.#hooks.logger.error(`ttrpc: ${req.service}/${req.method}: ${(err as Error).message}`);
            this.#respond(id, { code: Code.Internal, message: `ttrpc: error marshaling payload: ${(err as Error).message}` });
            return;
          }
          this.#respond(id, OK, body);
        },
        (err: unknown) => {
          if (!this.#finish(id, entry)) return;
          const st = toStatus(err);
          if (st.code === Code.Unknown) this.#hooks.logger.warn(`ttrpc: ${req.service}/${req.method}: unexpected error: ${st.message}`);
          this.#respond(id, st);
        },
      )
      .catch((err: unknown) => {
        this.#hooks.logger.error(`ttrpc: connection ${this.id}: ${(err as Error).message}: closing it`);
        this.destroy();
      })
      .finally(() => this.#maybeEnd());
  }

  /** Removes a finished request; false when its answer was already sent (deadline) or the connection died. */
  #finish(id: number, entry: Inflight): boolean {
    if (this.#inflight.get(id) !== entry) return false;
    clearTimeout(entry.timer);
    this.#inflight.delete(id);
    return true;
  }

  #expire(id: number, entry: Inflight): void {
    if (!this.#finish(id, entry)) return;
    const err = new TtrpcError(Code.DeadlineExceeded, 'context deadline exceeded');
    entry.controller.abort(err);
    this.#respond(id, toStatus(err));
    this.#maybeEnd();
  }

  #respond(streamId: number, status: Partial<RpcStatus>, payload?: Buffer): void {
    const sock = this.#socket;
    if (sock.destroyed || !sock.writable) return;
    let body = encode('ttrpc.Response', { status, payload: payload ?? null });
    if (body.length > MAX_MESSAGE_LENGTH) {
      this.#hooks.logger.warn(`ttrpc: connection ${this.id}: response on stream ${streamId} too large (${body.length} bytes)`);
      body = encode('ttrpc.Response', { status: toStatus(oversizeError(body.length)) });
    }
    if (!sock.write(encodeFrame(streamId, MessageType.Response, 0, body))) sock.pause(); // resumed on 'drain'
  }
}
