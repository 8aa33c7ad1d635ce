// binary:// stdio: a logging binary (nerdctl -d, docker-style log drivers) gets the process's
// output as fd 3 (stdout) and fd 4 (stderr), and fd 5 to say it is ready, with an environment
// of only CONTAINER_ID and CONTAINER_NAMESPACE (containerd runtime/v2/logging). The process
// writes into pipes whose read ends the logger holds; we wait for the ready byte (or EOF)
// before creating the process. On close the logger gets EOF, and is stopped if it lingers.
import { spawn, type ChildProcess } from 'node:child_process';
import { InternalError } from '../../runtime/errors';
import { native } from '../../runtime/native';
import { closeFd, readSocket } from './fds';

export interface BinaryLoggerOptions {
  path: string;
  args: string[];
  containerId: string;
  namespace: string;
  /** How long to wait for the ready signal (default 10 s). */
  readyTimeoutMs?: number;
}

export class BinaryLogger {
  #stdoutW: number | undefined;
  #stderrW: number | undefined;
  readonly #exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    stdoutW: number,
    stderrW: number,
  ) {
    this.#stdoutW = stdoutW;
    this.#stderrW = stderrW;
    this.#exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('close', () => r()));
  }

  static async start(opts: BinaryLoggerOptions): Promise<BinaryLogger> {
    const n = native();
    const fds: number[] = [];
    const pipe = (): [number, number] => {
      const p = n.pipe();
      fds.push(...p);
      return p;
    };
    try {
      const [outR, outW] = pipe();
      const [errR, errW] = pipe();
      const [readyR, readyW] = pipe();
      const child = spawn(opts.path, opts.args, {
        stdio: ['ignore', 'ignore', 'ignore', outR, errR, readyW],
        env: { CONTAINER_ID: opts.containerId, CONTAINER_NAMESPACE: opts.namespace },
      });
      const spawnError = new Promise<never>((_, reject) =>
        child.once('error', (e) => reject(new InternalError(`logging binary ${opts.path}: ${e.message}`, { cause: e }))),
      );
      for (const fd of [outR, errR, readyW]) closeFd(fd);
      fds.splice(0, fds.length, outW, errW);
      const logger = new BinaryLogger(child, outW, errW);
      try {
        await Promise.race([waitReady(readyR, opts.readyTimeoutMs ?? 10_000, opts.path), spawnError]);
      } catch (err) {
        await logger.close(0);
        throw err;
      }
      return logger;
    } catch (err) {
      for (const fd of fds) closeFd(fd);
      throw err;
    }
  }

  get stdoutFd(): number {
    return this.#stdoutW ?? -1;
  }

  get stderrFd(): number {
    return this.#stderrW ?? -1;
  }

  /** Hands over stdout's write end (terminal mode: the console copy writes it). */
  takeStdout(): number {
    const fd = this.#stdoutW ?? -1;
    this.#stdoutW = undefined;
    return fd;
  }

  /** The process holds its own copies: ours would keep the logger from ever seeing EOF. */
  releaseChildFds(): void {
    closeFd(this.#stdoutW);
    closeFd(this.#stderrW);
    this.#stdoutW = this.#stderrW = undefined;
  }

  /** Resolves when the logger exited (it does once every writer is gone). */
  exited(): Promise<void> {
    return this.#exited;
  }

  /** Drops our write ends, waits up to graceMs for the logger to finish, then TERM, then KILL. */
  async close(graceMs: number): Promise<void> {
    this.releaseChildFds();
    if (await within(this.#exited, graceMs)) return;
    this.child.kill('SIGTERM');
    if (await within(this.#exited, 2000)) return;
    this.child.kill('SIGKILL');
    await this.#exited;
  }
}

function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/** One byte or EOF on the ready pipe means ready (containerd accepts both). */
function waitReady(fd: number, timeoutMs: number, what: string): Promise<void> {
  const sock = readSocket(fd);
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => finish(new InternalError(`logging binary ${what} not ready after ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    sock.once('data', () => finish());
    sock.once('end', () => finish());
    sock.once('error', (e) => finish(new InternalError(`logging binary ${what}: ready pipe: ${e.message}`)));
  });
}
