// The shim daemon's log: logrus-style text lines written to the `log` FIFO containerd
// created in each bundle (containerd copies whatever arrives there into its own log). A
// daemon serving several containers writes a container's lines to that container's bundle
// log and daemon-wide lines to the oldest bundle log it holds. Writes never block and never
// fail the caller: the FIFO is opened non-blocking, and a full pipe drops the line.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Logger, type LogLevel } from '../runtime/log';

export type ShimLogLevel = 'debug' | 'info' | 'warning' | 'error';

export interface LogSink {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface ShimLogOptions {
  /** Debug lines are written only with debug (the -debug flag / config.debug). */
  debug?: boolean;
  /** Also write every line to this fd (tests: 2); default none. */
  mirrorFd?: number;
  /** Fields on every line, e.g. { namespace: 'k8s.io' }. */
  fields?: Record<string, string>;
}

export function formatLine(level: ShimLogLevel, msg: string, fields: Record<string, string> = {}, at = new Date()): string {
  const extra = Object.entries(fields)
    .map(([k, v]) => ` ${k}=${/^[\w./:-]+$/.test(v) ? v : JSON.stringify(v)}`)
    .join('');
  return `time="${at.toISOString()}" level=${level} msg=${JSON.stringify(msg)}${extra} runtime=io.containerd.vkernel.v2\n`;
}

export class ShimLog implements LogSink {
  /** Open bundle logs by bundle dir, oldest first. */
  readonly #fds = new Map<string, number>();
  readonly #debug: boolean;
  readonly #mirrorFd: number | undefined;
  readonly #fields: Record<string, string>;

  constructor(opts: ShimLogOptions = {}) {
    this.#debug = !!opts.debug;
    this.#mirrorFd = opts.mirrorFd;
    this.#fields = opts.fields ?? {};
  }

  get debugEnabled(): boolean {
    return this.#debug;
  }

  /** Opens <bundle>/log if it exists (containerd's FIFO, or a file); no log file is fine. */
  attach(bundle: string): void {
    if (this.#fds.has(bundle)) return;
    const file = path.join(bundle, 'log');
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK | fs.constants.O_APPEND);
      this.#fds.set(bundle, fd);
    } catch {
      // No log FIFO (a test bundle) or nobody reading it (ENXIO): lines go elsewhere.
    }
  }

  detach(bundle: string): void {
    const fd = this.#fds.get(bundle);
    if (fd === undefined) return;
    this.#fds.delete(bundle);
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
  }

  close(): void {
    for (const b of [...this.#fds.keys()]) this.detach(b);
  }

  /** A logger whose lines carry id= and go to that bundle's log first. */
  forContainer(id: string, bundle: string): LogSink {
    const fields = { id };
    return {
      debug: (m) => this.write('debug', m, fields, bundle),
      info: (m) => this.write('info', m, fields, bundle),
      warn: (m) => this.write('warning', m, fields, bundle),
      error: (m) => this.write('error', m, fields, bundle),
    };
  }

  debug(msg: string): void {
    this.write('debug', msg);
  }
  info(msg: string): void {
    this.write('info', msg);
  }
  warn(msg: string): void {
    this.write('warning', msg);
  }
  error(msg: string): void {
    this.write('error', msg);
  }

  write(level: ShimLogLevel, msg: string, fields: Record<string, string> = {}, bundle?: string): void {
    if (level === 'debug' && !this.#debug) return;
    const line = formatLine(level, msg, { ...this.#fields, ...fields });
    const fd = (bundle !== undefined ? this.#fds.get(bundle) : undefined) ?? this.#fds.values().next().value;
    for (const target of [fd, this.#mirrorFd]) {
      if (target === undefined) continue;
      try {
        fs.writeSync(target, line);
      } catch {
        // EAGAIN (containerd not reading) or EPIPE: a log line is not worth failing for.
      }
    }
  }
}

/**
 * The runtime library logs through its Logger (a file or fd 2, which is /dev/null in a
 * daemon): this one forwards its lines into the shim log instead.
 */
export class RuntimeLogBridge extends Logger {
  readonly #sink: LogSink;
  readonly #debug: boolean;

  constructor(sink: LogSink, debug: boolean) {
    super({ debug });
    this.#sink = sink;
    this.#debug = debug;
  }

  override log(level: LogLevel, msg: string): void {
    if (level === 'debug') {
      if (this.#debug) this.#sink.debug(msg);
    } else if (level === 'info') this.#sink.info(msg);
    else if (level === 'warning') this.#sink.warn(msg);
    else this.#sink.error(msg);
  }
}
