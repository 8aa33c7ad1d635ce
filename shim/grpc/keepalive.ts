// Keeps containerd 1.7's gRPC channels to this shim from going idle (docs/protocol.md).
//
// containerd 1.7 (grpc-go >= 1.59) lets a channel go IDLE after 30 minutes without a request
// in flight, and its connection watcher takes IDLE for "shim disconnected": it runs `delete`,
// unmounts the rootfs and drops the task while the process still runs. The shim cannot keep
// the channel busy from its side (the channel is containerd's client); a request from
// containerd is what re-arms the timer. So, every interval, the shim asks containerd's own
// Tasks API for each task it serves (Tasks.Get at -address, with the task's namespace), and
// containerd answers by calling the shim's State on that task's connection.
import type { ContainerdGrpcClient } from './client';

export const TASKS_SERVICE = 'containerd.services.tasks.v1.Tasks';

/** Shorter intervals would only load containerd (tests use 1–2 s; the default is 5 min). */
export const MIN_INTERVAL_MS = 1000;

export interface KeepAliveOptions {
  client: Pick<ContainerdGrpcClient, 'call' | 'address' | 'namespace'>;
  intervalMs: number;
  /** The task ids served now. */
  tasks: () => Iterable<string>;
  log: { debug(m: string): void; info(m: string): void; warn(m: string): void };
  /** Per Get (default min(interval, 10 s)). */
  timeoutMs?: number;
}

export class KeepAlive {
  readonly #opts: KeepAliveOptions;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #announced = false;
  /** Consecutive failed Gets per task: one task failing must not hide behind healthy ones. */
  readonly #failures = new Map<string, number>();
  /** Rounds done and Gets that succeeded (tests, diagnostics). */
  readonly stats = { rounds: 0, gets: 0, failures: 0 };

  constructor(opts: KeepAliveOptions) {
    if (opts.intervalMs > 0 && opts.intervalMs < MIN_INTERVAL_MS) {
      opts.log.warn(`keep-alive interval ${opts.intervalMs} ms is below ${MIN_INTERVAL_MS} ms: using ${MIN_INTERVAL_MS} ms`);
      opts = { ...opts, intervalMs: MIN_INTERVAL_MS };
    }
    this.#opts = opts;
  }

  get intervalMs(): number {
    return this.#opts.intervalMs;
  }

  static describe(intervalMs: number, address: string): string {
    return (
      `keep-alive: every ${formatMs(intervalMs)} the shim calls containerd's Tasks.Get at ${address} for each task it serves, ` +
      'so containerd calls State on it (containerd 1.7 tears a gRPC shim down after 30 idle minutes)'
    );
  }

  start(): void {
    if (this.#timer || this.#opts.intervalMs <= 0) {
      if (this.#opts.intervalMs <= 0) this.#opts.log.warn('keep-alive is off (grpc_keepalive_interval_ms = 0): containerd 1.7 tears down a gRPC shim after 30 idle minutes');
      return;
    }
    this.#timer = setInterval(() => void this.tick(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One round: Tasks.Get for every task served (skipped while the previous round runs). */
  async tick(): Promise<void> {
    if (this.#running) return;
    const ids = [...this.#opts.tasks()];
    if (ids.length === 0) return;
    this.#running = true;
    const { client, log } = this.#opts;
    for (const id of this.#failures.keys()) if (!ids.includes(id)) this.#failures.delete(id);
    try {
      if (!this.#announced) {
        this.#announced = true;
        log.info(KeepAlive.describe(this.#opts.intervalMs, client.address));
      }
      this.stats.rounds++;
      const timeoutMs = this.#opts.timeoutMs ?? Math.min(Math.max(this.#opts.intervalMs, 1000), 10_000);
      for (const id of ids) {
        try {
          await client.call(TASKS_SERVICE, 'Get', 'containerd.services.tasks.v1.GetRequest', { container_id: id }, 'containerd.services.tasks.v1.GetResponse', { timeoutMs });
          this.stats.gets++;
          this.#failures.delete(id);
          log.debug(`keep-alive: Tasks.Get ${client.namespace}/${id} done (containerd called State)`);
        } catch (err) {
          this.stats.failures++;
          // A task containerd no longer knows, or containerd restarting: the next round tries again.
          const msg = `keep-alive: Tasks.Get ${client.namespace}/${id}: ${(err as Error).message}`;
          const n = (this.#failures.get(id) ?? 0) + 1;
          this.#failures.set(id, n);
          // A blip is normal; the 3rd failure in a row, and every 20th after, is worth a warning.
          if (n === 3 || (n > 3 && (n - 3) % 20 === 0)) log.warn(`${msg} (${n} rounds in a row: containerd may tear this shim down when idle)`);
          else log.debug(msg);
        }
      }
    } finally {
      this.#running = false;
    }
  }
}

function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
