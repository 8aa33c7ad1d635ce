// A ttrpc client over a unix socket: concurrent unary calls on odd, strictly increasing stream
// ids (1, 3, 5, ...). A non-OK status rejects with TtrpcError carrying the code; a lost
// connection rejects every pending call with TtrpcClosedError (Unavailable, "ttrpc: closed").
// The client never reconnects by itself: watch onClose() and make a new one.
import * as net from 'node:net';
import { decode, encode, type ProtoInput, type ProtoTypeName, type ProtoTypes } from '../proto';
import { FrameReader, MessageType, encodeFrame, oversizeError, type Frame } from './frame';
import { silentLogger, type TtrpcLogger } from './logger';
import { Metadata, type MetadataInit } from './metadata';
import { Code, TtrpcClosedError, TtrpcError, fromStatus } from './status';

export interface TtrpcClientOptions {
  /** Sent with every call (per-call metadata replaces keys it repeats), e.g. containerd-namespace-ttrpc. */
  metadata?: MetadataInit;
  logger?: TtrpcLogger;
}

export interface ConnectOptions extends TtrpcClientOptions {
  /** Give up connecting after this long (a unix socket normally answers at once). Default 10 s. */
  connectTimeoutMs?: number;
}

export interface CallOptions {
  /** Deadline for this call: sent as timeout_nano, and enforced here (DeadlineExceeded). */
  timeoutMs?: number;
  metadata?: MetadataInit;
  /** Abandons the call (Canceled); the server still finishes it. */
  signal?: AbortSignal;
}

interface Pending {
  resolve(payload: Uint8Array): void;
  reject(err: Error): void;
}

const MAX_STREAM_ID = 0xffffffff;

/** A socket path from "unix:///path" or "/path" (containerd's TTRPC_ADDRESS is a plain path). */
export function socketPath(address: string): string {
  return address.startsWith('unix://') ? address.slice('unix://'.length) : address;
}

export class TtrpcClient {
  readonly #socket: net.Socket;
  readonly #reader: FrameReader;
  readonly #pending = new Map<number, Pending>();
  readonly #metadata: Metadata;
  readonly #logger: TtrpcLogger;
  readonly #closeListeners: Array<(err?: Error) => void> = [];
  readonly #closed: Promise<void>;
  #nextStreamId = 1;
  #state: 'open' | 'closing' | 'closed' = 'open';
  #error: Error | undefined;

  /** Connects to a ttrpc server at a unix socket path or unix:// address. */
  static connect(address: string, opts: ConnectOptions = {}): Promise<TtrpcClient> {
    const path = socketPath(address);
    return new Promise((resolve, reject) => {
      const sock = net.createConnection({ path });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new TtrpcError(Code.DeadlineExceeded, `ttrpc: connect ${path}: timed out`));
      }, opts.connectTimeoutMs ?? 10_000);
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(new TtrpcClosedError(`ttrpc: connect ${path}: ${err.message}`, { cause: err }));
      });
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new TtrpcClient(sock, opts));
      });
    });
  }

  /** Wraps a connected socket. */
  constructor(socket: net.Socket, opts: TtrpcClientOptions = {}) {
    this.#socket = socket;
    this.#metadata = new Metadata(opts.metadata);
    this.#logger = opts.logger ?? silentLogger;
    this.#reader = new FrameReader({
      frame: (f) => this.#onFrame(f),
      oversize: (h) => this.#settle(h.streamId, oversizeError(h.length)),
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk);
      } catch (err) {
        this.destroy(new TtrpcClosedError(`ttrpc: ${(err as Error).message}`, { cause: err }));
      }
    });
    socket.on('error', (err) => {
      this.#error ??= new TtrpcClosedError(`ttrpc: ${err.message}`, { cause: err });
    });
    socket.on('end', () => socket.end());
    this.#closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#state = 'closed';
        const err = this.#error ?? new TtrpcClosedError();
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
        for (const fn of this.#closeListeners.splice(0)) fn(this.#error);
        resolve();
      }),
    );
  }

  /** True once the connection is gone (or close() was called). */
  get closed(): boolean {
    return this.#state !== 'open';
  }

  /** Calls still waiting for an answer. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Runs once the connection is gone, with the error that ended it, if any. */
  onClose(fn: (err?: Error) => void): void {
    if (this.#state === 'closed') queueMicrotask(() => fn(this.#error));
    else this.#closeListeners.push(fn);
  }

  /** One unary call. `requestType`/`responseType` are protobuf names from the bundle. */
  call<Req extends ProtoTypeName, Res extends ProtoTypeName>(
    service: string,
    method: string,
    requestType: Req,
    request: ProtoInput<ProtoTypes[Req]>,
    responseType: Res,
    opts: CallOptions = {},
  ): Promise<ProtoTypes[Res]> {
    return this.#roundTrip(service, method, encode(requestType, request), opts).then((payload) => decode(responseType, payload));
  }

  /** Graceful close: refuses new calls, waits for pending ones, then ends the connection. */
  async close(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'closing';
      this.#endIfIdle();
    }
    return this.#closed;
  }

  /** Immediate close: pending calls reject with `err` (default TtrpcClosedError). */
  destroy(err?: Error): Promise<void> {
    if (this.#state !== 'closed') {
      this.#error ??= err;
      this.#state = 'closing';
      this.#socket.destroy();
    }
    return this.#closed;
  }

  #roundTrip(service: string, method: string, payload: Buffer, opts: CallOptions): Promise<Uint8Array> {
    if (this.#state !== 'open' || this.#socket.destroyed) return Promise.reject(this.#error ?? new TtrpcClosedError());
    if (opts.signal?.aborted) return Promise.reject(new TtrpcError(Code.Canceled, 'context canceled'));
    if (this.#nextStreamId > MAX_STREAM_ID) {
      return Promise.reject(new TtrpcClosedError('ttrpc: stream ids exhausted on this connection'));
    }
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    const timeoutMs = opts.timeoutMs;
    let frame: Buffer;
    try {
      const body = encode('ttrpc.Request', {
        service,
        method,
        payload,
        timeout_nano: timeoutMs !== undefined ? Math.max(1, Math.round(timeoutMs * 1e6)) : null,
        metadata: this.#metadata.merge(opts.metadata).toPairs(),
      });
      frame = encodeFrame(id, MessageType.Request, 0, body);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => this.#settle(id, new TtrpcError(Code.Canceled, 'context canceled'));
      const cleanup = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        this.#endIfIdle();
      };
      this.#pending.set(id, {
        resolve: (p) => {
          cleanup();
          resolve(p);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () => this.#settle(id, new TtrpcError(Code.DeadlineExceeded, 'context deadline exceeded')),
          Math.min(Math.max(0, timeoutMs), 2 ** 31 - 1),
        );
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.#socket.write(frame);
    });
  }

  #settle(id: number, result: Error | Uint8Array): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    if (result instanceof Error) p.reject(result);
    else p.resolve(result);
  }

  #onFrame(f: Frame): void {
    if (f.type !== MessageType.Response) {
      this.#logger.debug(`ttrpc: ignoring message type ${f.type} on stream ${f.streamId}`);
      return;
    }
    if (!this.#pending.has(f.streamId)) return; // timed out or canceled already
    let res: ProtoTypes['ttrpc.Response'];
    try {
      res = decode('ttrpc.Response', f.data);
    } catch (err) {
      this.#settle(f.streamId, new TtrpcError(Code.Internal, `ttrpc: bad response: ${(err as Error).message}`, { cause: err }));
      return;
    }
    this.#settle(f.streamId, fromStatus(res.status) ?? res.payload);
  }

  #endIfIdle(): void {
    if (this.#state === 'closing' && this.#pending.size === 0 && !this.#socket.destroyed) {
      this.#socket.end(() => this.#socket.destroy());
    }
  }
}
