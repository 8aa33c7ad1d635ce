// One container the daemon serves: its init, its execs, its OOM watch, and the rule for the
// end of its life. When the init exits:
//   1. no new exec may start;
//   2. without a pid namespace of its own, every process left in the cgroup is killed (the
//      kernel does it for a pid namespace whose init died), as the runc shim does;
//   3. the exits of the execs still running are published first;
//   4. then the init's exit is recorded and its TaskExit published, so containerd (and
//      `ctr run`, which returns on the init's exit) has seen every exec end before it.
import { AlreadyExistsError, FailedPreconditionError, NotFoundError, type Process } from '../../runtime';
import { trace } from '../../runtime/trace';
import { emit } from '../events';
import { ExecProcess, InitProcess, type ProcessEnv, type ShimProcess, type StdioPaths } from '../process';
import type { ExitStatus } from '../reaper';
import type { MountRequest } from '../rootfs';

/** How long the init's exit waits for exec exits before it is published anyway. */
export const EXEC_EXIT_GRACE_MS = 10_000;

export interface ContainerCreateRequest {
  id: string;
  bundle: string;
  rootfs: readonly MountRequest[];
  stdio: StdioPaths;
  noPivotRoot: boolean;
  noNewKeyring: boolean;
  oomPollIntervalMs: number;
}

export class ShimContainer {
  readonly init: InitProcess;
  readonly execs = new Map<string, ExecProcess>();
  #initExiting = false;
  readonly #oomWatch = new AbortController();
  /** Settles once the init's exit is fully handled (tests, diagnostics). */
  exitHandled: Promise<void> = Promise.resolve();

  private constructor(
    readonly id: string,
    readonly bundle: string,
    stdio: StdioPaths,
    readonly env: ProcessEnv,
  ) {
    this.init = new InitProcess(id, bundle, stdio, env);
  }

  /** Creates the container (see InitProcess.create) and publishes TaskCreate. */
  static async create(req: ContainerCreateRequest, env: ProcessEnv): Promise<ShimContainer> {
    const c = new ShimContainer(req.id, req.bundle, req.stdio, env);
    const { exited } = await c.init.create({ rootfs: req.rootfs, noPivotRoot: req.noPivotRoot, noNewKeyring: req.noNewKeyring });
    c.exitHandled = exited
      .then((e) => c.#onInitExit(e))
      .catch((err: Error) => env.log.error(`handling the init exit failed: ${err.message}`));
    emit(env.events, '/tasks/create', {
      container_id: req.id,
      bundle: req.bundle,
      rootfs: [...req.rootfs],
      io: { stdin: req.stdio.stdin, stdout: req.stdio.stdout, stderr: req.stdio.stderr, terminal: req.stdio.terminal },
      checkpoint: '',
      pid: c.init.pid,
    });
    c.#watchOom(req.oomPollIntervalMs);
    return c;
  }

  /** The init for an empty exec id, else that exec; NotFound otherwise. */
  process(execId: string): ShimProcess {
    if (!execId) return this.init;
    const p = this.execs.get(execId);
    if (!p) throw new NotFoundError(`process does not exist ${execId}`);
    return p;
  }

  exec(execId: string): ExecProcess {
    const p = this.execs.get(execId);
    if (!p) throw new NotFoundError(`process does not exist ${execId}`);
    return p;
  }

  /** Exec: a new process in created state; allowed while the init is created or running. */
  addExec(execId: string, spec: Process, stdio: StdioPaths): ExecProcess {
    if (!execId) throw new FailedPreconditionError('exec id must not be empty');
    if (this.execs.has(execId)) throw new AlreadyExistsError(`id ${execId}: already exists`);
    this.init.machine.check('exec');
    const p = new ExecProcess(execId, this.id, spec, stdio, this.env, () => this.#mayStartExec());
    this.execs.set(execId, p);
    emit(this.env.events, '/tasks/exec-added', { container_id: this.id, exec_id: execId });
    return p;
  }

  async deleteExec(execId: string): Promise<{ pid: number; exitStatus: number; exitedAt: Date }> {
    const p = this.exec(execId);
    const t = await p.delete();
    this.execs.delete(execId);
    return t;
  }

  /** Host pid → exec id, for Pids' ProcessDetails. */
  execPids(): Map<number, string> {
    const m = new Map<number, string>();
    for (const [id, p] of this.execs) if (p.pid && p.state === 'running') m.set(p.pid, id);
    return m;
  }

  /** Deletes the init: the container's state, cgroup, rootfs and stdio go; the OOM watch stops. */
  async delete(): Promise<{ pid: number; exitStatus: number; exitedAt: Date }> {
    const t = await this.init.delete();
    this.#oomWatch.abort();
    for (const p of this.execs.values()) await p.delete().catch(() => undefined);
    this.execs.clear();
    return t;
  }

  /** Stops background work without touching the container (daemon shutdown). */
  stopWatching(): void {
    this.#oomWatch.abort();
  }

  #mayStartExec(): void {
    if (this.#initExiting) throw new FailedPreconditionError(`cannot start an exec: container ${this.id} is stopping`);
    this.init.machine.check('exec');
  }

  async #onInitExit(e: ExitStatus): Promise<void> {
    this.#initExiting = true;
    trace('shim: init reaped');
    const { env } = this;
    try {
      if (!env.runtime.ownPidNamespace(env.ctx, this.id)) {
        await env.runtime.killAll(env.ctx, this.id, 9);
      }
    } catch (err) {
      env.log.warn(`kill the processes left in ${this.id}: ${(err as Error).message}`);
    }
    const pending: Promise<unknown>[] = [];
    for (const p of this.execs.values()) {
      // A Start in progress holds the lock: once it is done, the exec is running or not.
      pending.push(p.lock.run(() => undefined).then(() => (p.state === 'running' ? p.wait() : undefined)));
    }
    if (pending.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        Promise.all(pending).then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), EXEC_EXIT_GRACE_MS))),
      ]);
      clearTimeout(timer);
      if (late) env.log.warn(`init of ${this.id} exited; some exec exits were not seen within ${EXEC_EXIT_GRACE_MS} ms`);
    }
    await this.init.finishExit(e);
    trace('shim: init exit published');
  }

  #watchOom(intervalMs: number): void {
    const { env } = this;
    const signal = this.#oomWatch.signal;
    void (async () => {
      try {
        for await (const ev of env.runtime.oomEvents(env.ctx, this.id, { intervalMs, signal })) {
          env.log.info(`container ${this.id}: OOM (${ev.kind}, count ${ev.count})`);
          emit(env.events, '/tasks/oom', { container_id: this.id });
        }
      } catch (err) {
        if (!signal.aborted) env.log.debug(`OOM watch of ${this.id} ended: ${(err as Error).message}`);
      }
    })();
  }
}
