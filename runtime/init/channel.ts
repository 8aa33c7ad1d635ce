// Runs vkinit and speaks its protocol (PROTOCOL.md): send the plan frame, react to `pid`,
// `hooks`, `ready`, `error`, `exit`. launchInit settles only once vkinit has either
// reported `ready` (wait mode) or exited, so a failure never leaves a process behind.
import { trace } from '../trace';
import { spawn, type ChildProcess, type StdioOptions } from 'child_process';
import type { Socket } from 'net';
import { constants as osConstants } from 'os';
import * as path from 'path';
import { FailedPreconditionError, InitStepError, InternalError } from '../errors';
import { buildPath, missingHelperFix } from '../paths';
import { encodePlan, frame } from './plan';
import type { InitPlan } from './plan-types';

export interface LaunchOptions {
  /** Path of the vkinit binary; default resolveVkinit(). */
  vkinit?: string;
  /** The container's fds 0..2; default inherit. */
  stdio?: Array<'inherit' | 'ignore' | number>;
  /** The caller's fds 3..3+n-1 are passed through (default plan.preserveFds). */
  preserveFds?: number;
  /** Called on `pid` (host pid of the container process). */
  onPid?: (pid: number) => void | Promise<void>;
  /** plan.syncHooks: run runtime-namespace hooks, return the OCI state JSON; throwing sends `abort`. */
  onHooks?: (pid: number) => Promise<string>;
  /**
   * plan.seccompListener (required then): the JSON the seccomp agent receives with the
   * listener fd (runtime/seccomp/agent-message.ts), for the container process `pid`.
   * Called after onPid; throwing sends `abort`.
   */
  seccompAgentMessage?: (pid: number) => string | Promise<string>;
}

export interface InitHandle {
  pid: number;
  /** The workload's exit code (128+signal when killed); only meaningful with plan.wait. */
  waitExit(): Promise<number>;
}

/** build/vkinit of this package (dist/runtime/init -> ../../../build), or $VKERNEL_INIT. */
export function resolveVkinit(): string {
  return process.env.VKERNEL_INIT || buildPath('vkinit');
}

const ERROR_LINE = /^error (\S+) (-?\d+) ?(.*)$/;

class InitSession {
  private child!: ChildProcess;
  private sock!: Socket;
  private buf = '';
  private pid = 0;
  private ready = false;
  private stepError?: InitStepError;
  /** A failure on our side (onPid/onHooks threw); it wins over what vkinit reports. */
  private failure?: unknown;
  private exitCode?: number;
  private settled = false;
  /** Messages and close are handled strictly in order, callbacks included. */
  private queue: Promise<void> = Promise.resolve();
  private resolveExit!: (code: number) => void;
  private readonly exited = new Promise<number>((r) => (this.resolveExit = r));

  constructor(
    private readonly plan: InitPlan,
    private readonly opts: LaunchOptions,
    private readonly resolve: (h: InitHandle) => void,
    private readonly reject: (e: unknown) => void,
  ) {}

  start(): void {
    const { plan, opts } = this;
    const preserve = opts.preserveFds ?? plan.preserveFds ?? 0;
    const stdio: Array<'inherit' | 'ignore' | 'pipe' | number> = [...(opts.stdio ?? [])];
    if (stdio.length > 3) throw new InternalError('launchInit: stdio has more than 3 entries');
    while (stdio.length < 3) stdio.push('inherit');
    for (let i = 0; i < preserve; i++) stdio.push(3 + i);
    stdio.push('pipe'); // the sync socket (libuv makes it a socketpair), above the preserved fds
    const syncFd = 3 + preserve;
    const body = encodePlan({ ...plan, preserveFds: preserve });

    // Its own process group outside `wait` mode: a signal aimed at our group (Ctrl-C
    // on `vkernel create`, a shim being stopped) must not kill vkinit halfway; if we
    // die it sees EOF and cleans up. In `wait` mode it is the foreground process and
    // forwards such signals to the container itself.
    this.child = spawn(opts.vkinit ?? resolveVkinit(), [String(syncFd)], {
      stdio: stdio as StdioOptions,
      detached: !plan.wait,
      env: {},
    });
    this.child.on('error', (err) => this.enqueue(() => this.fail(new InternalError(`cannot run vkinit: ${err.message}${(err as NodeJS.ErrnoException).code === 'ENOENT' ? ` (${missingHelperFix()})` : ''}`, { cause: err }))));
    this.child.on('close', (code, signal) => this.enqueue(() => this.onClose(code, signal)));
    this.sock = this.child.stdio[syncFd] as Socket;
    if (!this.sock) return; // spawn failed; 'error' follows
    this.sock.on('error', () => {}); // EPIPE when vkinit is gone; 'close' reports it
    this.sock.on('data', (chunk: Buffer) => this.onData(chunk));
    this.sock.write(frame(body));
    trace('vkinit spawned');
  }

  private enqueue(fn: () => void | Promise<void>): void {
    this.queue = this.queue.then(fn).catch((e) => this.fail(e));
  }

  private onData(chunk: Buffer): void {
    this.buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.enqueue(() => this.onLine(line));
    }
  }

  private send(data: string): void {
    if (!this.sock.destroyed) this.sock.write(frame(data));
  }

  private async onLine(line: string): Promise<void> {
    const [word, rest = ''] = splitFirst(line);
    switch (word) {
      case 'pid':
        trace('vkinit: container cloned and in its cgroups');
        this.pid = Number(rest);
        if (this.opts.onPid && this.failure === undefined) {
          try {
            await this.opts.onPid(this.pid);
          } catch (e) {
            this.failure = e;
            // EOF makes vkinit kill the container and exit; a container that already
            // reported ready is killed in onClose.
            this.sock.destroy();
          }
        }
        if (this.plan.seccompListener !== undefined && this.failure === undefined) {
          // vkinit holds the container until it has the agent's message.
          try {
            if (!this.opts.seccompAgentMessage) {
              throw new InternalError('launchInit: plan.seccompListener needs opts.seccompAgentMessage');
            }
            this.send(`seccomp\n${await this.opts.seccompAgentMessage(this.pid)}`);
          } catch (e) {
            this.failure = e;
            this.send('abort');
          }
        }
        return;
      case 'hooks':
        if (this.failure !== undefined) return this.send('abort');
        try {
          const state = this.opts.onHooks ? await this.opts.onHooks(this.pid) : '';
          this.send(`go\n${state}`);
        } catch (e) {
          this.failure = e;
          this.send('abort');
        }
        return;
      case 'ready':
        trace('vkinit: container ready');
        this.ready = true;
        if (this.plan.wait && this.failure === undefined) {
          // The handle is returned now; vkinit keeps the socket until `exit`.
          this.settled = true;
          this.resolve(this.handle());
        } else if (this.plan.wait) {
          this.killContainer();
        }
        return;
      case 'error': {
        const m = ERROR_LINE.exec(line);
        this.stepError = m ? new InitStepError(m[1], Number(m[2]), m[3]) : new InitStepError('init', 0, line);
        return;
      }
      case 'exit':
        this.exitCode = Number(rest);
        return;
      default:
        this.stepError ??= new InitStepError('sync', 0, `unexpected message from vkinit: ${JSON.stringify(line)}`);
    }
  }

  private handle(): InitHandle {
    const wait = this.plan.wait;
    return {
      pid: this.pid,
      waitExit: () =>
        wait ? this.exited : Promise.reject(new FailedPreconditionError('waitExit: the plan was not launched with wait')),
    };
  }

  private killContainer(): void {
    if (this.pid > 0) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  private onClose(code: number | null, signal: NodeJS.Signals | null): void {
    trace('vkinit exited');
    const status = code ?? 128 + signalNumber(signal);
    this.resolveExit(this.exitCode ?? status);
    if (this.settled) return;
    if (this.failure !== undefined) {
      if (this.ready) this.killContainer();
      return this.fail(this.failure);
    }
    if (this.stepError) return this.fail(this.stepError);
    if (this.ready && code === 0) {
      this.settled = true;
      return this.resolve(this.handle());
    }
    this.fail(new InitStepError('init', 0, `vkinit exited (${code !== null ? `code ${code}` : signal}) before the container was ready`));
  }

  private fail(e: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (this.sock && !this.sock.destroyed) this.sock.destroy();
    this.reject(e);
  }
}

function splitFirst(line: string): [string, string?] {
  const sp = line.indexOf(' ');
  return sp < 0 ? [line] : [line.slice(0, sp), line.slice(sp + 1)];
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (osConstants.signals as Record<string, number>)[signal] ?? 0 : 0;
}

/**
 * Spawn vkinit for the plan. Resolves on `ready` (create mode: once vkinit has exited,
 * leaving the container blocked on the exec FIFO; wait mode: while vkinit stays to report
 * the exit), rejects with InitStepError on `error` after vkinit has exited.
 */
export function launchInit(plan: InitPlan, opts: LaunchOptions = {}): Promise<InitHandle> {
  return new Promise<InitHandle>((resolve, reject) => {
    new InitSession(plan, opts, resolve, reject).start();
  });
}
