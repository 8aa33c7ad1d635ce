// Process states and the one table, per process kind, of which operation each state allows
// and where it leads. Everything a process refuses is refused here, with a typed error:
//   deleted            → NotFound (the process is gone as far as containerd is concerned)
//   stopped + kill     → NotFound "process already finished" (containerd treats it as success)
//   anything else      → FailedPrecondition, worded like the runc shim
// The exit path never throws: `exited()` on a stopped or deleted process is a no-op.
import { FailedPreconditionError, NotFoundError, type VkernelError } from '../../runtime/errors';
import { TaskStatus } from '../proto';

export type ProcessState = 'created' | 'running' | 'paused' | 'stopped' | 'deleted';
export type ProcessKind = 'init' | 'exec';

/**
 * start/pause/resume/delete/exit change the state; kill/exec/update/resize/closeIO are
 * allowed-or-refused checks that leave it where it is.
 */
export type ProcessOp = 'start' | 'pause' | 'resume' | 'kill' | 'exec' | 'update' | 'resize' | 'closeIO' | 'exit' | 'delete';

type Table = Readonly<Record<ProcessState, Readonly<Partial<Record<ProcessOp, ProcessState>>>>>;

/** The container's init process (containerd's task). */
export const INIT_TRANSITIONS: Table = {
  created: {
    start: 'running',
    kill: 'created',
    exec: 'created',
    update: 'created',
    resize: 'created',
    closeIO: 'created',
    exit: 'stopped',
    delete: 'deleted',
  },
  running: {
    pause: 'paused',
    kill: 'running',
    exec: 'running',
    update: 'running',
    resize: 'running',
    closeIO: 'running',
    exit: 'stopped',
  },
  paused: {
    resume: 'running',
    kill: 'paused',
    update: 'paused',
    resize: 'paused',
    closeIO: 'paused',
    exit: 'stopped',
  },
  stopped: { resize: 'stopped', closeIO: 'stopped', delete: 'deleted' },
  deleted: {},
};

/** An exec process: added (created), started, exited, deleted. Pause is the container's business. */
export const EXEC_TRANSITIONS: Table = {
  created: { start: 'running', resize: 'created', closeIO: 'created', delete: 'deleted' },
  running: { kill: 'running', resize: 'running', closeIO: 'running', exit: 'stopped' },
  paused: {},
  stopped: { resize: 'stopped', closeIO: 'stopped', delete: 'deleted' },
  deleted: {},
};

export function transitionsOf(kind: ProcessKind): Table {
  return kind === 'init' ? INIT_TRANSITIONS : EXEC_TRANSITIONS;
}

/** The error for an operation the state does not allow. */
export function refusal(kind: ProcessKind, id: string, state: ProcessState, op: ProcessOp): VkernelError {
  if (state === 'deleted') {
    return new NotFoundError(kind === 'init' ? `container ${id}: not created` : `process does not exist ${id}`);
  }
  if (state === 'stopped' && op === 'kill') return new NotFoundError('process already finished');
  if (kind === 'exec' && state === 'created' && op === 'kill') return new FailedPreconditionError(`process ${id} not started`);
  const what = kind === 'init' ? 'task' : 'process';
  switch (op) {
    case 'start':
      return new FailedPreconditionError(`cannot start a ${state} ${what}`);
    case 'delete':
      return new FailedPreconditionError(`cannot delete a ${state} ${what}`);
    case 'exec':
      return new FailedPreconditionError(`cannot exec in a ${state} task`);
    case 'pause':
      return new FailedPreconditionError(`cannot pause a ${state} ${what}`);
    case 'resume':
      return new FailedPreconditionError(`cannot resume a ${state} ${what}`);
    case 'update':
      return new FailedPreconditionError(`cannot update a ${state} ${what}`);
    default:
      return new FailedPreconditionError(`cannot ${op} a ${state} ${what}`);
  }
}

/** containerd.v1.types.Status of a state. */
export function taskStatus(state: ProcessState): number {
  switch (state) {
    case 'created':
      return TaskStatus.CREATED;
    case 'running':
      return TaskStatus.RUNNING;
    case 'paused':
      return TaskStatus.PAUSED;
    case 'stopped':
      return TaskStatus.STOPPED;
    default:
      return TaskStatus.UNKNOWN;
  }
}

export type TransitionListener = (from: ProcessState, to: ProcessState, op: ProcessOp) => void;

/** The state of one process; `check` refuses, `apply` moves (after the work succeeded). */
export class ProcessStateMachine {
  readonly #table: Table;
  #state: ProcessState = 'created';

  constructor(
    readonly kind: ProcessKind,
    readonly id: string,
    private readonly onTransition?: TransitionListener,
  ) {
    this.#table = transitionsOf(kind);
  }

  get state(): ProcessState {
    return this.#state;
  }

  can(op: ProcessOp): boolean {
    return this.#table[this.#state][op] !== undefined;
  }

  /** Throws the typed refusal unless `op` is allowed now; returns the state it leads to. */
  check(op: ProcessOp): ProcessState {
    const to = this.#table[this.#state][op];
    if (to === undefined) throw refusal(this.kind, this.id, this.#state, op);
    return to;
  }

  /** Performs the transition for `op` (which must be allowed). */
  apply(op: ProcessOp): void {
    const to = this.check(op);
    const from = this.#state;
    if (to === from) return;
    this.#state = to;
    this.onTransition?.(from, to, op);
  }

  /** The exit path: moves to stopped when it can, never throws. Returns whether it moved. */
  exited(): boolean {
    if (!this.can('exit')) return false;
    this.apply('exit');
    return true;
  }
}
