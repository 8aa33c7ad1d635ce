// runc-compatible logging: --log FILE, --log-format text|json, --debug. containerd's runc
// shim reads the last `error` line of a json log to report why a runtime call failed.
import * as fs from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';
export type LogFormat = 'text' | 'json';

export interface LoggerOptions {
  file?: string;
  format?: LogFormat;
  debug?: boolean;
}

export class Logger {
  readonly #fd: number;
  readonly #format: LogFormat;
  readonly #debug: boolean;
  readonly toFile: boolean;

  constructor(opts: LoggerOptions = {}) {
    this.#format = opts.format ?? 'text';
    this.#debug = !!opts.debug;
    this.toFile = !!opts.file && opts.file !== '/dev/stderr';
    this.#fd = this.toFile ? fs.openSync(opts.file!, 'a', 0o644) : 2;
  }

  log(level: LogLevel, msg: string): void {
    if (level === 'debug' && !this.#debug) return;
    const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    let line: string;
    if (this.#format === 'json') line = JSON.stringify({ level, msg, time });
    else if (!this.toFile && process.stderr.isTTY) line = `${level.slice(0, 4).toUpperCase()}[0000] ${msg}`;
    else line = `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
    try {
      fs.writeSync(this.#fd, line + '\n');
    } catch {
      /* a broken log must never fail the operation */
    }
  }

  debug(msg: string): void {
    this.log('debug', msg);
  }
  info(msg: string): void {
    this.log('info', msg);
  }
  warn(msg: string): void {
    this.log('warning', msg);
  }
  error(msg: string): void {
    this.log('error', msg);
  }
}

export const nullLogger = new Logger({ file: '/dev/null' });
