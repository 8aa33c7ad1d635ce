// What init and exec processes share: a state machine, a per-process mutex, the pid, the
// exit once known, the stdio it was given, and a Wait that resolves when the exit has been
// recorded and published (and stays readable until Delete).
import type { RuntimeContext } from '../../runtime';
import type { EventSink } from '../events';
import type { ProcessIO } from '../io';
import type { LogSink } from '../log';
import type { ExitStatus, Reaper } from '../reaper';
import { AsyncMutex } from './mutex';
import type { RuntimeOps } from './runtime-ops';
import { ProcessStateMachine, type ProcessKind, type ProcessState } from './state';

/** Everything a process needs from the daemon. */
export interface ProcessEnv {
  readonly ctx: RuntimeContext;
  readonly runtime: RuntimeOps;
  readonly events: EventSink;
  readonly reaper: Pick<Reaper, 'watch' | 'unwatch'>;
  readonly log: LogSink;
  readonly namespace: string;
  /** How long Delete waits for output copying to drain. */
  readonly ioDrainTimeoutMs: number;
}

export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

export interface ExitInfo {
  status: number;
  exitedAt: Date;
}

export abstract class ShimProcess {
  readonly machine: ProcessStateMachine;
  readonly lock = new AsyncMutex();
  pid = 0;
  exit: ExitInfo | undefined;
  io: ProcessIO | undefined;
  /** The reaper's promise for our pid, from the moment vkinit reported it. */
  protected exitWatch: Promise<ExitStatus> | undefined;
  /** CloseIO(stdin) came while the stdio was still being set up (see adoptIO). */
  #stdinClosed = false;
  readonly #exited: Promise<ExitInfo>;
  #resolveExited!: (e: ExitInfo) => void;

  constructor(
    kind: ProcessKind,
    /** Container id for init, exec id for an exec. */
    readonly id: string,
    readonly containerId: string,
    readonly stdio: StdioPaths,
    protected readonly env: ProcessEnv,
  ) {
    this.machine = new ProcessStateMachine(kind, id, (from, to, op) => env.log.debug(`${kind} ${id}: ${from} -> ${to} (${op})`));
    this.#exited = new Promise((r) => (this.#resolveExited = r));
  }

  get state(): ProcessState {
    return this.machine.state;
  }

  /** Resolves once the exit is recorded and its TaskExit published. */
  wait(): Promise<ExitInfo> {
    return this.#exited;
  }

  /** Starts watching `pid` (vkinit's report), so no exit can slip by before Start returns. */
  protected watchPid(pid: number): void {
    this.pid = pid;
    this.exitWatch = this.env.reaper.watch(pid);
  }

  protected unwatchPid(): void {
    if (this.pid) this.env.reaper.unwatch(this.pid);
    this.exitWatch = undefined;
  }

  /**
   * Records the exit under the process lock: the state moves to stopped, the TaskExit is
   * published (after TaskStart, which Start publishes under the same lock), Wait resolves.
   * Never throws; a second exit (or one after Delete) is ignored.
   */
  protected async recordExit(e: ExitStatus, publish: (info: ExitInfo) => void): Promise<void> {
    await this.lock.run(() => {
      if (this.exit) return;
      const info = { status: e.status, exitedAt: e.exitedAt };
      this.exit = info;
      this.machine.exited();
      try {
        publish(info);
      } catch (err) {
        this.env.log.error(`publish exit of ${this.id}: ${(err as Error).message}`);
      }
      this.#resolveExited(info);
    });
  }

  /** The Delete/Wait triple; exited_at is always set for a process that ran. */
  exitTriple(): { pid: number; exitStatus: number; exitedAt: Date } {
    return { pid: this.pid, exitStatus: this.exit?.status ?? 0, exitedAt: this.exit?.exitedAt ?? new Date() };
  }

  protected async closeIO(): Promise<void> {
    const io = this.io;
    this.io = undefined;
    await io?.close(this.env.ioDrainTimeoutMs).catch((err: Error) => this.env.log.warn(`close stdio of ${this.id}: ${err.message}`));
  }

  /**
   * CloseIO(stdin). It can arrive before Start has finished: the client's stdin copy starts
   * as soon as our reader opens the FIFO (inside Start), and `ctr task exec` sends CloseIO
   * the moment its own stdin ends. Such an early close is remembered and applied by
   * adoptIO; dropping it would leave our keep-alive writer open and the process waiting
   * for an EOF that never comes.
   */
  closeStdin(): void {
    this.machine.check('closeIO');
    this.#stdinClosed = true;
    this.io?.closeStdin();
  }

  /** The stdio is attached: it is ours from now on (and an early CloseIO takes effect). */
  protected adoptIO(io: ProcessIO): void {
    this.io = io;
    if (this.#stdinClosed) io.closeStdin();
  }

  resize(width: number, height: number): void {
    this.machine.check('resize');
    this.io?.resize(width, height);
  }
}
