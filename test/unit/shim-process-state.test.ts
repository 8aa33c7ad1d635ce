// The process state machines: the transition tables themselves, the typed refusals, and
// the exit path that never throws.
import { FailedPreconditionError, NotFoundError } from '../../runtime/errors';
import {
  AsyncMutex,
  EXEC_TRANSITIONS,
  INIT_TRANSITIONS,
  ProcessStateMachine,
  taskStatus,
  type ProcessOp,
  type ProcessState,
} from '../../shim/process';
import { TaskStatus } from '../../shim/proto';

const STATES: ProcessState[] = ['created', 'running', 'paused', 'stopped', 'deleted'];
const OPS: ProcessOp[] = ['start', 'pause', 'resume', 'kill', 'exec', 'update', 'resize', 'closeIO', 'exit', 'delete'];

/** Drives a machine to `state` through legal transitions only. */
function machineIn(kind: 'init' | 'exec', state: ProcessState): ProcessStateMachine {
  const m = new ProcessStateMachine(kind, 'x');
  const path: Record<ProcessState, ProcessOp[]> = {
    created: [],
    running: ['start'],
    paused: ['start', 'pause'],
    stopped: ['start', 'exit'],
    deleted: ['start', 'exit', 'delete'],
  };
  for (const op of path[state]) m.apply(op);
  expect(m.state).toBe(state);
  return m;
}

describe('init transitions', () => {
  it('has exactly the lifecycle containerd expects', () => {
    expect(INIT_TRANSITIONS.created.start).toBe('running');
    expect(INIT_TRANSITIONS.running.pause).toBe('paused');
    expect(INIT_TRANSITIONS.paused.resume).toBe('running');
    expect(INIT_TRANSITIONS.running.exit).toBe('stopped');
    expect(INIT_TRANSITIONS.paused.exit).toBe('stopped');
    expect(INIT_TRANSITIONS.created.exit).toBe('stopped');
    expect(INIT_TRANSITIONS.stopped.delete).toBe('deleted');
    expect(INIT_TRANSITIONS.created.delete).toBe('deleted');
    // Exec is allowed in created and running only.
    expect(STATES.filter((s) => INIT_TRANSITIONS[s].exec !== undefined)).toEqual(['created', 'running']);
    // Delete only when created or stopped.
    expect(STATES.filter((s) => INIT_TRANSITIONS[s].delete !== undefined)).toEqual(['created', 'stopped']);
    expect(INIT_TRANSITIONS.deleted).toEqual({});
  });

  it.each(STATES)('in %s every operation is either allowed or refused with a typed error', (state) => {
    for (const op of OPS) {
      if (state === 'deleted' && op !== 'exit') continue; // unreachable through apply once deleted
      const m = machineIn('init', state);
      if (INIT_TRANSITIONS[state][op] !== undefined) {
        expect(m.check(op)).toBe(INIT_TRANSITIONS[state][op]);
      } else if (op === 'exit') {
        expect(m.exited()).toBe(false); // never throws
      } else {
        let err: unknown;
        try {
          m.check(op);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(state === 'stopped' && op === 'kill' ? NotFoundError : FailedPreconditionError);
      }
    }
  });

  it('answers kill of a stopped init with NotFound "process already finished"', () => {
    expect(() => machineIn('init', 'stopped').check('kill')).toThrow(new NotFoundError('process already finished'));
  });

  it('refuses delete of a running or paused init', () => {
    expect(() => machineIn('init', 'running').check('delete')).toThrow(FailedPreconditionError);
    expect(() => machineIn('init', 'running').check('delete')).toThrow('cannot delete a running task');
    expect(() => machineIn('init', 'paused').check('delete')).toThrow('cannot delete a paused task');
  });

  it('answers everything on a deleted process with NotFound', () => {
    const m = machineIn('init', 'deleted');
    for (const op of OPS.filter((o) => o !== 'exit')) expect(() => m.check(op)).toThrow(NotFoundError);
    expect(m.exited()).toBe(false);
  });

  it('reports every change to its listener', () => {
    const seen: string[] = [];
    const m = new ProcessStateMachine('init', 'c1', (from, to, op) => seen.push(`${from}->${to}:${op}`));
    m.apply('start');
    m.apply('kill'); // no state change: not reported
    m.apply('pause');
    m.apply('resume');
    m.exited();
    m.apply('delete');
    expect(seen).toEqual(['created->running:start', 'running->paused:pause', 'paused->running:resume', 'running->stopped:exit', 'stopped->deleted:delete']);
  });
});

describe('exec transitions', () => {
  it('is added, started, exits, is deleted', () => {
    expect(EXEC_TRANSITIONS.created.start).toBe('running');
    expect(EXEC_TRANSITIONS.running.exit).toBe('stopped');
    expect(EXEC_TRANSITIONS.stopped.delete).toBe('deleted');
    expect(EXEC_TRANSITIONS.created.delete).toBe('deleted');
    expect(EXEC_TRANSITIONS.running.pause).toBeUndefined();
  });

  it('refuses to kill an exec that never started with FailedPrecondition', () => {
    expect(() => machineIn('exec', 'created').check('kill')).toThrow(FailedPreconditionError);
  });

  it('refuses to start twice and to delete while running', () => {
    expect(() => machineIn('exec', 'running').check('start')).toThrow('cannot start a running process');
    expect(() => machineIn('exec', 'running').check('delete')).toThrow(FailedPreconditionError);
    expect(() => machineIn('exec', 'stopped').check('kill')).toThrow(new NotFoundError('process already finished'));
  });

  it('ignores a second exit', () => {
    const m = machineIn('exec', 'running');
    expect(m.exited()).toBe(true);
    expect(m.exited()).toBe(false);
    expect(m.state).toBe('stopped');
  });
});

describe('taskStatus', () => {
  it('maps states to containerd.v1.types.Status', () => {
    expect(STATES.map(taskStatus)).toEqual([TaskStatus.CREATED, TaskStatus.RUNNING, TaskStatus.PAUSED, TaskStatus.STOPPED, TaskStatus.UNKNOWN]);
  });
});

describe('AsyncMutex', () => {
  it('runs holders one at a time in arrival order, and a throwing holder releases it', async () => {
    const mu = new AsyncMutex();
    const order: string[] = [];
    const tick = () => new Promise((r) => setTimeout(r, 5));
    const a = mu.run(async () => {
      order.push('a+');
      await tick();
      order.push('a-');
    });
    const b = mu.run(async () => {
      order.push('b+');
      throw new Error('boom');
    });
    const c = mu.run(() => {
      order.push('c');
      return 3;
    });
    await a;
    await expect(b).rejects.toThrow('boom');
    await expect(c).resolves.toBe(3);
    expect(order).toEqual(['a+', 'a-', 'b+', 'c']);
    expect(mu.locked).toBe(false);
  });
});
