// A gRPC server (@grpc/grpc-js) for the same service implementations the ttrpc server hosts:
// `registerService(name, impl)` takes the ttrpc ServiceImpl shape (handler(req, ctx) with a
// CallContext), so one set of handlers serves both transports. Messages are encoded and
// decoded by shim/proto (the bundled descriptors), and every thrown error becomes a status
// through ttrpc/status.ts's toStatus: the codes are the same on both transports.
//
// grpc-js binds addresses itself, but the shim daemon is handed a listening fd (`start`
// created the socket before answering, reference §1.5). So a plain net.Server accepts on the
// fd and each connection is injected into grpc-js (Server.createConnectionInjector).
//
// Bad input: an unknown service or method is Unimplemented (grpc-js); a request that does not
// decode is InvalidArgument (decoded here, not in grpc-js, whose deserializer failures would be
// Internal); a message over maxReceiveMessageLength is ResourceExhausted (grpc-js). Nothing a
// peer sends takes the server down.
import type * as GrpcJs from '@grpc/grpc-js';
import * as net from 'node:net';
import { UnavailableError, AlreadyExistsError, NotImplementedError } from '../../runtime/errors';
import { decode, encode, methodTypes, serviceMethods, type ProtoServiceName, type ProtoTypeName } from '../proto';
import type { CallContext, ListenTarget, ServiceImpl } from '../ttrpc/server';
import { silentLogger, type TtrpcLogger } from '../ttrpc/logger';
import { Metadata } from '../ttrpc/metadata';
import { Code, toStatus } from '../ttrpc/status';

/** The metadata key containerd's gRPC clients use for the namespace (2.x sends it; 1.7 does not). */
export const GRPC_NAMESPACE_KEY = 'containerd-namespace';

/** Largest request accepted, as the ttrpc side (4 MiB). */
export const DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH = 4 << 20;

export interface GrpcServerOptions {
  logger?: TtrpcLogger;
  /** Log every call at debug ("grpc: <method> id=<id>"). */
  traceCalls?: boolean;
  maxReceiveMessageLength?: number;
  /** Calls one connection may have in flight (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); default 1024. */
  maxConcurrentStreams?: number;
  /** The namespace reported in CallContext when the caller sends none (1.7 never does). */
  defaultNamespace?: string;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const grpcJs = (): typeof GrpcJs => require('@grpc/grpc-js') as typeof GrpcJs;

const identity = (b: Buffer): Buffer => b;

type Handler = (req: unknown, ctx: CallContext) => unknown;

export class GrpcServer {
  readonly #grpc = grpcJs();
  readonly #server: GrpcJs.Server;
  readonly #injector: ReturnType<GrpcJs.Server['createConnectionInjector']>;
  readonly #opts: GrpcServerOptions;
  readonly #logger: TtrpcLogger;
  readonly #services = new Set<string>();
  readonly #listeners = new Set<net.Server>();
  readonly #sockets = new Set<net.Socket>();
  readonly #inflight = new Set<AbortController>();
  #state: 'open' | 'closing' | 'closed' = 'open';
  #closing: Promise<void> | undefined;
  #idle: Array<() => void> = [];
  #nextConnectionId = 1;

  constructor(opts: GrpcServerOptions = {}) {
    this.#opts = opts;
    this.#logger = opts.logger ?? silentLogger;
    this.#server = new this.#grpc.Server({
      'grpc.max_receive_message_length': opts.maxReceiveMessageLength ?? DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
      // As the ttrpc server's limit of requests in flight per connection.
      'grpc.max_concurrent_streams': opts.maxConcurrentStreams ?? 1024,
    });
    this.#injector = this.#server.createConnectionInjector(this.#grpc.ServerCredentials.createInsecure());
  }

  /** Registers the handlers of a bundled service under its wire name; methods without a handler answer Unimplemented. */
  registerService<S extends ProtoServiceName>(serviceName: S, impl: ServiceImpl<S>): this {
    if (this.#services.has(serviceName)) throw new AlreadyExistsError(`grpc: service ${serviceName} is already registered`);
    const known = new Set<string>(serviceMethods(serviceName));
    const definition: Record<string, GrpcJs.MethodDefinition<Buffer, Buffer>> = {};
    const implementation: GrpcJs.UntypedServiceImplementation = {};
    for (const [name, handler] of Object.entries(impl)) {
      if (typeof handler !== 'function') continue;
      if (!known.has(name)) throw new NotImplementedError(`grpc: ${serviceName} has no method ${name}`);
      const { requestType, responseType } = methodTypes(serviceName, name);
      definition[name] = {
        path: `/${serviceName}/${name}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
        originalName: name,
      };
      implementation[name] = this.#unary(serviceName, name, requestType, responseType, handler as Handler);
    }
    this.#server.addService(definition as GrpcJs.ServiceDefinition, implementation);
    this.#services.add(serviceName);
    return this;
  }

  #unary(service: string, method: string, requestType: ProtoTypeName, responseType: ProtoTypeName, handler: Handler): GrpcJs.handleUnaryCall<Buffer, Buffer> {
    return (call, callback) => {
      const controller = new AbortController();
      const md = call.metadata.getMap();
      const metadata = new Metadata(Object.entries(md).map(([key, value]) => ({ key, value: typeof value === 'string' ? value : value.toString('base64') })));
      const deadline = call.getDeadline();
      const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? deadline : undefined;
      const ctx: CallContext = {
        service,
        method,
        streamId: 0,
        metadata,
        namespace: metadata.get(GRPC_NAMESPACE_KEY) ?? this.#opts.defaultNamespace,
        deadline: deadlineMs,
        signal: controller.signal,
        connectionId: 0,
      };
      let finished = false;
      const end = (err: { code: number; details: string } | null, body?: Buffer): void => {
        if (finished) return;
        finished = true;
        this.#inflight.delete(controller);
        if (this.#inflight.size === 0) for (const fn of this.#idle.splice(0)) fn();
        if (err) callback({ code: err.code, details: err.details, metadata: new this.#grpc.Metadata() } as GrpcJs.ServerErrorResponse);
        else callback(null, body);
      };
      call.on('cancelled', () => {
        controller.abort(new UnavailableError(`grpc: ${method} cancelled by the client`));
        end({ code: Code.Canceled, details: 'cancelled' });
      });
      if (this.#state !== 'open') return end({ code: Code.Unavailable, details: 'grpc: server shutting down' });
      this.#inflight.add(controller);
      let req: unknown;
      try {
        req = decode(requestType, call.request ?? Buffer.alloc(0));
      } catch (err) {
        return end({ code: Code.InvalidArgument, details: `grpc: error unmarshalling ${method} request: ${(err as Error).message}` });
      }
      if (this.#opts.traceCalls) this.#logger.debug(`grpc: ${method}${describeRequest(req)}`);
      Promise.resolve()
        .then(() => handler(req, ctx))
        .then(
          (res) => {
            let body: Buffer;
            try {
              body = encode(responseType, res as never);
            } catch (err) {
              this.#logger.error(`grpc: ${service}/${method}: ${(err as Error).message}`);
              return end({ code: Code.Internal, details: `grpc: error marshaling ${method} response: ${(err as Error).message}` });
            }
            end(null, body);
          },
          (err: unknown) => {
            const st = toStatus(err);
            if (st.code === Code.Unknown || st.code === Code.Internal) this.#logger.warn(`grpc: ${service}/${method}: ${st.message}`);
            end({ code: st.code, details: st.message });
          },
        );
    };
  }

  /** Accepts on a listening fd handed over (the daemon's case) or a new unix socket path. */
  async listen(target: ListenTarget): Promise<void> {
    if (this.#state !== 'open') throw new UnavailableError('grpc: server is closed');
    const srv = net.createServer((sock) => this.accept(sock));
    const spec = typeof target === 'string' ? { path: target } : 'fd' in target ? { fd: target.fd } : { path: target.path };
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(spec, () => {
        srv.off('error', reject);
        resolve();
      });
    });
    if (typeof target === 'object' && 'mode' in target && target.mode !== undefined) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('node:fs') as typeof import('node:fs')).chmodSync(target.path, target.mode);
    }
    srv.on('error', (err) => this.#logger.error(`grpc: listener: ${err.message}`));
    this.#listeners.add(srv);
  }

  /** Serves one connected socket. */
  accept(sock: net.Socket): void {
    if (this.#state !== 'open') return void sock.destroy();
    const id = this.#nextConnectionId++;
    this.#sockets.add(sock);
    sock.on('error', (err) => this.#logger.debug(`grpc: connection ${id}: ${err.message}`));
    sock.once('close', () => {
      this.#sockets.delete(sock);
      this.#logger.debug(`grpc: connection ${id} closed`);
    });
    this.#logger.debug(`grpc: connection ${id} accepted`);
    this.#injector.injectConnection(sock);
  }

  /** Open connections. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Calls being handled now. */
  get callsInFlight(): number {
    return this.#inflight.size;
  }

  /**
   * Graceful shutdown: stop accepting, answer new calls with Unavailable, let calls in flight
   * finish, then close the connections (GOAWAY). After `timeoutMs`, destroy().
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#state === 'open') this.#state = 'closing';
    const timeoutMs = opts.timeoutMs ?? 3000;
    for (const l of this.#listeners) l.close();
    const drained = this.#inflight.size === 0 ? Promise.resolve() : new Promise<void>((r) => this.#idle.push(r));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    this.#closing = Promise.race([drained, timeout])
      .then(() => {
        clearTimeout(timer);
        // Responses are written by now; let the last frames leave before the sessions go.
        this.#injector.drain(Math.max(0, Math.min(1000, timeoutMs)));
        return this.#waitSockets(Math.min(1000, timeoutMs));
      })
      .then(() => this.destroy());
    return this.#closing;
  }

  async #waitSockets(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.#sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Immediate shutdown: listeners, connections and handlers (their signals abort). */
  async destroy(): Promise<void> {
    this.#state = 'closed';
    for (const l of this.#listeners) l.close();
    this.#listeners.clear();
    for (const c of this.#inflight) c.abort(new UnavailableError('grpc: server destroyed'));
    this.#inflight.clear();
    this.#injector.destroy();
    this.#server.forceShutdown();
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }
}

/** " id=<id> exec=<exec_id>" for the call trace. */
function describeRequest(req: unknown): string {
  const r = req as { id?: unknown; exec_id?: unknown } | null;
  if (!r || typeof r !== 'object') return '';
  return `${typeof r.id === 'string' && r.id ? ` id=${r.id}` : ''}${typeof r.exec_id === 'string' && r.exec_id ? ` exec=${r.exec_id}` : ''}`;
}
