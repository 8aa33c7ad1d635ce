// The container's init process: Create (rootfs, stdio, runtime create), Start, Kill, Pause,
// Resume, Update, Delete. Each public method takes the process lock and asks the state
// machine first; the runtime library does the work in-process. The exit is recorded by the
// container (it first waits for the execs, see shim/task/container.ts) via finishExit.
import { CleanupStack } from '../../runtime/cleanup';
import { trace } from '../../runtime/trace';
import { FailedPreconditionError, NotFoundError, VkernelError, type LinuxResources } from '../../runtime';
import { emit } from '../events';
import { openProcessIO } from '../io';
import { timestamp } from '../proto';
import type { ExitStatus } from '../reaper';
import { mountRootfs, type MountedRootfs, type MountRequest } from '../rootfs';
import { ShimProcess, type ProcessEnv, type StdioPaths } from './process';

/** How long Delete of a never-started init waits for its exit before removing it anyway. */
const CREATED_KILL_WAIT_MS = 10_000;

export interface InitCreateOptions {
  rootfs: readonly MountRequest[];
  noPivotRoot: boolean;
  noNewKeyring: boolean;
}

/** A runtime refusal that means "the init is gone" becomes containerd's NotFound. */
function finished(err: unknown): unknown {
  if (err instanceof FailedPreconditionError || err instanceof NotFoundError) return new NotFoundError('process already finished', { cause: err });
  return err;
}

export class InitProcess extends ShimProcess {
  #rootfs: MountedRootfs | undefined;

  constructor(
    containerId: string,
    readonly bundle: string,
    stdio: StdioPaths,
    env: ProcessEnv,
  ) {
    super('init', containerId, containerId, stdio, env);
  }

  /**
   * Mounts the rootfs, opens stdio, creates the container. Returns the reaper's promise for
   * the init's exit (wrapped: an async function would wait for it). Any failure undoes every
   * step (mounts, fifos, runtime state).
   */
  async create(opts: InitCreateOptions): Promise<{ exited: Promise<ExitStatus> }> {
    const { env } = this;
    const undo = new CleanupStack();
    try {
      this.#rootfs = await mountRootfs(this.bundle, opts.rootfs);
      undo.push('unmount rootfs', () => this.#rootfs?.unmount());
      trace('shim: rootfs mounted');
      const io = await openProcessIO(this.stdio, { containerId: this.id, namespace: env.namespace });
      trace('shim: stdio open');
      undo.push('close stdio', () => io.close(0));
      const { pid } = await env.runtime.create(env.ctx, {
        id: this.id,
        bundle: this.bundle,
        stdio: io.stdio,
        consoleSocket: io.consoleSocket,
        noPivot: opts.noPivotRoot,
        noNewKeyring: opts.noNewKeyring,
        onPid: (p) => this.watchPid(p),
      });
      if (!this.exitWatch) this.watchPid(pid);
      const watch = this.exitWatch!;
      undo.push('delete container', async () => {
        await env.runtime.delete(env.ctx, this.id);
        await watch; // reaped: nothing of it remains
      });
      await io.attach();
      this.adoptIO(io);
      trace('shim: stdio attached');
      undo.release();
      return { exited: watch };
    } catch (err) {
      this.unwatchPid();
      for (const f of await undo.run()) env.log.warn(`undo failed create of ${this.id}: ${f}`);
      throw err;
    }
  }

  async start(): Promise<number> {
    return this.lock.run(async () => {
      this.machine.check('start');
      await this.env.runtime.start(this.env.ctx, this.id);
      this.machine.apply('start');
      // Under the lock: the exit path needs it too, so TaskExit cannot overtake this.
      emit(this.env.events, '/tasks/start', { container_id: this.id, pid: this.pid });
      return this.pid;
    });
  }

  async kill(signal: number, all: boolean): Promise<void> {
    await this.lock.run(async () => {
      this.machine.check('kill');
      try {
        await this.env.runtime.kill(this.env.ctx, this.id, signal, all);
      } catch (err) {
        throw finished(err);
      }
    });
  }

  async pause(): Promise<void> {
    await this.lock.run(async () => {
      this.machine.check('pause');
      await this.env.runtime.pause(this.env.ctx, this.id);
      this.machine.apply('pause');
      emit(this.env.events, '/tasks/paused', { container_id: this.id });
    });
  }

  async resume(): Promise<void> {
    await this.lock.run(async () => {
      this.machine.check('resume');
      await this.env.runtime.resume(this.env.ctx, this.id);
      this.machine.apply('resume');
      emit(this.env.events, '/tasks/resumed', { container_id: this.id });
    });
  }

  async update(resources: LinuxResources): Promise<void> {
    await this.lock.run(async () => {
      this.machine.check('update');
      await this.env.runtime.update(this.env.ctx, this.id, resources);
    });
  }

  /** Records the init's exit and publishes its TaskExit (id = the container id). */
  finishExit(e: ExitStatus): Promise<void> {
    return this.recordExit(e, (info) =>
      emit(this.env.events, '/tasks/exit', {
        container_id: this.id,
        id: this.id,
        pid: this.pid,
        exit_status: info.status,
        exited_at: timestamp(info.exitedAt),
      }),
    );
  }

  /**
   * Delete: only a created (never started: it is killed first) or stopped init. Removes the
   * runtime state and cgroup, unmounts the rootfs, closes stdio, publishes TaskDelete.
   */
  async delete(): Promise<{ pid: number; exitStatus: number; exitedAt: Date }> {
    if (this.state === 'created' && !this.exit) {
      // Never started: kill it, and let its exit be recorded (and published) first.
      this.env.runtime.signal(this.pid, 9);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.wait(), new Promise((r) => (timer = setTimeout(r, CREATED_KILL_WAIT_MS)))]);
      clearTimeout(timer);
    }
    return this.lock.run(async () => {
      this.machine.check('delete');
      await this.env.runtime.delete(this.env.ctx, this.id);
      trace('shim: runtime delete done');
      try {
        await this.#rootfs?.unmount();
      } catch (err) {
        throw new VkernelError('INTERNAL', `unmount rootfs of ${this.id}: ${(err as Error).message}`, { cause: err });
      }
      trace('shim: rootfs unmounted');
      await this.closeIO();
      trace('shim: stdio closed');
      this.machine.apply('delete');
      const t = this.exitTriple();
      emit(this.env.events, '/tasks/delete', {
        container_id: this.id,
        pid: t.pid,
        exit_status: t.exitStatus,
        exited_at: timestamp(t.exitedAt),
      });
      return t;
    });
  }
}
