// Task events to containerd: a ttrpc client of TTRPC_ADDRESS calling
// containerd.services.events.ttrpc.v1.Events/Forward (containerd 1.6, 1.7 and 2.x all serve
// it). Events leave in the order they were published, one call at a time: a failing event
// is retried in place (never requeued behind later ones), so TaskStart can never arrive
// after its TaskExit. Retries are bounded like the runc shim's (5 attempts, 1 s more delay
// each time); a lost connection is redialled on the next attempt, so a containerd restart
// costs at most the events of that window. Envelopes are stamped when published.
//
// The wire is an EventTransport: ttrpc Forward by default; a daemon in gRPC mode passes the
// gRPC one (shim/grpc/events.ts: Events/Publish at GRPC_ADDRESS). Order, retries and the
// queue are the publisher's, whichever transport carries the events.
import { anyOf, timestamp, type Any, type ProtoInput, type ProtoTypeName, type ProtoTypes } from '../proto';
import { Code, TtrpcClient, TtrpcError } from '../ttrpc';

export const EVENTS_SERVICE = 'containerd.services.events.ttrpc.v1.Events';

/** One event, stamped when it was published. */
export interface QueuedEvent {
  topic: string;
  event: Any;
  at: ReturnType<typeof timestamp>;
}

/** Sends one event to containerd (throwing a TtrpcError with the status code on failure), reconnecting as needed. */
export interface EventTransport {
  /** Shown in log lines ("ttrpc Forward", "gRPC Publish"). */
  readonly name: string;
  send(item: QueuedEvent, namespace: string, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** containerd.services.events.ttrpc.v1.Events/Forward on TTRPC_ADDRESS (containerd 1.6, 1.7, 2.x). */
export class TtrpcEventTransport implements EventTransport {
  readonly name = 'ttrpc Forward';
  readonly #address: string;
  #client: TtrpcClient | undefined;

  constructor(address: string) {
    this.#address = address;
  }

  async send(item: QueuedEvent, namespace: string, timeoutMs: number): Promise<void> {
    try {
      const client = await this.#connect(timeoutMs);
      await client.call(
        EVENTS_SERVICE,
        'Forward',
        'containerd.services.events.ttrpc.v1.ForwardRequest',
        { envelope: { timestamp: item.at, namespace, topic: item.topic, event: item.event } },
        'google.protobuf.Empty',
        { timeoutMs },
      );
    } catch (err) {
      if (this.#client?.closed) this.#client = undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.#client?.destroy();
    this.#client = undefined;
  }

  async #connect(timeoutMs: number): Promise<TtrpcClient> {
    if (this.#client && !this.#client.closed) return this.#client;
    this.#client = await TtrpcClient.connect(this.#address, { connectTimeoutMs: timeoutMs });
    return this.#client;
  }
}

export interface PublisherOptions {
  /** containerd's ttrpc socket (TTRPC_ADDRESS), a path or unix:// address (used unless `transport` is given). */
  address: string;
  /** Another wire for the events (gRPC mode); default ttrpc Forward to `address`. */
  transport?: EventTransport;
  /** The containerd namespace put on every envelope. */
  namespace: string;
  /** Per call (default 5000 ms, as the runc shim). */
  callTimeoutMs?: number;
  /** Attempts per event before it is dropped (default 5). */
  maxAttempts?: number;
  /** Delay before attempt n+1 is n × this (default 1000 ms). */
  retryDelayMs?: number;
  /** Events waiting at most; the oldest is dropped beyond that (default 10000). */
  maxQueued?: number;
  log?: (level: 'debug' | 'warn', msg: string) => void;
}

/** What the task service needs: fire-and-forget publishing, in order. */
export interface EventSink {
  publish<N extends ProtoTypeName>(topic: string, typeName: N, event: ProtoInput<ProtoTypes[N]>): void;
}

type Queued = QueuedEvent;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Codes worth another attempt: containerd away, slow or restarting. Others are our bug. */
function retryable(err: unknown): boolean {
  if (!(err instanceof TtrpcError)) return true;
  return [Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal, Code.Canceled].includes(err.grpcCode as never);
}

export class EventPublisher implements EventSink {
  readonly #opts: Required<Omit<PublisherOptions, 'log' | 'transport'>> & Pick<PublisherOptions, 'log'>;
  readonly #queue: Queued[] = [];
  readonly #transport: EventTransport;
  #draining: Promise<void> | undefined;
  /** No new events (close() called). */
  #closing = false;
  /** No more attempts either (close() gave up waiting). */
  #closed = false;
  #idle: Array<() => void> = [];
  /** Counters for tests and diagnostics. */
  readonly stats = { sent: 0, dropped: 0, retries: 0 };

  constructor(opts: PublisherOptions) {
    this.#opts = {
      callTimeoutMs: 5000,
      maxAttempts: 5,
      retryDelayMs: 1000,
      maxQueued: 10000,
      ...opts,
    };
    this.#transport = opts.transport ?? new TtrpcEventTransport(opts.address);
  }

  /** How events travel ("ttrpc Forward", "gRPC Publish"). */
  get transport(): string {
    return this.#transport.name;
  }

  publish<N extends ProtoTypeName>(topic: string, typeName: N, event: ProtoInput<ProtoTypes[N]>): void {
    if (this.#closing) {
      this.#log('warn', `events: publisher closed, dropping ${topic}`);
      return;
    }
    this.#queue.push({ topic, event: anyOf(typeName, event), at: timestamp() });
    if (this.#queue.length > this.#opts.maxQueued) {
      const lost = this.#queue.shift()!;
      this.stats.dropped++;
      this.#log('warn', `events: queue full, dropped ${lost.topic}`);
    }
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = undefined;
      for (const fn of this.#idle.splice(0)) fn();
    });
  }

  /** Resolves once every event published so far was sent or dropped. */
  flush(): Promise<void> {
    if (!this.#draining) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  /** Flushes (bounded by timeoutMs, default 5 s), then closes the connection. Idempotent. */
  async close(timeoutMs = 5000): Promise<void> {
    this.#closing = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    this.#closed = true;
    if (this.#queue.length > 0) this.#log('warn', `events: closing with ${this.#queue.length} events unsent`);
    this.#queue.length = 0;
    await this.#transport.close();
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const item = this.#queue[0];
      await this.#send(item);
      if (this.#queue[0] === item) this.#queue.shift();
    }
  }

  async #send(item: Queued): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#transport.send(item, this.#opts.namespace, this.#opts.callTimeoutMs);
        this.stats.sent++;
        this.#log('debug', `events: sent ${item.topic}`);
        return;
      } catch (err) {
        const msg = (err as Error).message;
        if (!retryable(err) || attempt >= this.#opts.maxAttempts || this.#closed) {
          this.stats.dropped++;
          this.#log('warn', `events: dropped ${item.topic} after ${attempt} attempts: ${msg}`);
          return;
        }
        this.stats.retries++;
        this.#log('debug', `events: ${item.topic} attempt ${attempt} failed: ${msg}`);
        await sleep(attempt * this.#opts.retryDelayMs);
      }
    }
  }

  #log(level: 'debug' | 'warn', msg: string): void {
    this.#opts.log?.(level, msg);
  }
}

/** An EventSink that keeps what it is given (unit tests, and the order checks in them). */
export class RecordingSink implements EventSink {
  readonly events: Array<{ topic: string; typeName: string; event: Record<string, unknown> }> = [];
  publish<N extends ProtoTypeName>(topic: string, typeName: N, event: ProtoInput<ProtoTypes[N]>): void {
    this.events.push({ topic, typeName, event: event as Record<string, unknown> });
  }
  topics(): string[] {
    return this.events.map((e) => e.topic);
  }
}
