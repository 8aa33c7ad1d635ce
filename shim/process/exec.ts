// An exec process: added by Exec (created), started by Start (detached: vkinit exits and the
// process is reparented to the daemon), reaped, deleted. Its stdio is opened at Start, as
// the runc shim does; the client opened its FIFOs before calling Exec.
import { NotFoundError, type Process } from '../../runtime';
import { emit } from '../events';
import { openProcessIO } from '../io';
import { timestamp } from '../proto';
import { ShimProcess, type ProcessEnv, type StdioPaths } from './process';

export class ExecProcess extends ShimProcess {
  constructor(
    execId: string,
    containerId: string,
    readonly spec: Process,
    stdio: StdioPaths,
    env: ProcessEnv,
    /** Throws when the container can no longer take a new process (its init is exiting). */
    private readonly mayStart: () => void,
  ) {
    super('exec', execId, containerId, stdio, env);
  }

  async start(): Promise<number> {
    return this.lock.run(async () => {
      this.machine.check('start');
      this.mayStart();
      const { env } = this;
      const io = await openProcessIO(this.stdio, { containerId: this.containerId, namespace: env.namespace });
      try {
        const { pid } = await env.runtime.spawnExec(env.ctx, {
          id: this.containerId,
          process: { ...this.spec, terminal: this.stdio.terminal },
          consoleSocket: io.consoleSocket,
          stdio: io.stdio,
          onPid: (p) => this.watchPid(p),
        });
        if (!this.exitWatch) this.watchPid(pid);
      } catch (err) {
        this.unwatchPid();
        this.pid = 0;
        await io.close(0);
        throw err;
      }
      try {
        await io.attach();
      } catch (err) {
        // It runs but we cannot serve its terminal: do not leave it behind.
        env.runtime.signal(this.pid, 9);
        await this.exitWatch;
        this.pid = 0;
        await io.close(0);
        throw err;
      }
      this.adoptIO(io);
      this.machine.apply('start');
      emit(env.events, '/tasks/exec-started', { container_id: this.containerId, exec_id: this.id, pid: this.pid });
      // Chained only now: an early exit waits for the lock we hold, so it follows exec-started.
      void this.exitWatch!.then((e) =>
        this.recordExit(e, (info) =>
          emit(env.events, '/tasks/exit', {
            container_id: this.containerId,
            id: this.id,
            pid: this.pid,
            exit_status: info.status,
            exited_at: timestamp(info.exitedAt),
          }),
        ),
      );
      return this.pid;
    });
  }

  async kill(signal: number): Promise<void> {
    await this.lock.run(() => {
      this.machine.check('kill');
      if (!this.env.runtime.signal(this.pid, signal)) throw new NotFoundError('process already finished');
    });
  }

  /** Delete of a created or stopped exec: closes its stdio; no event (as the runc shim). */
  async delete(): Promise<{ pid: number; exitStatus: number; exitedAt: Date }> {
    return this.lock.run(async () => {
      this.machine.check('delete');
      await this.closeIO();
      this.machine.apply('delete');
      return this.exitTriple();
    });
  }

  /** True while the process exists or may still come to exist (a Start in progress). */
  get live(): boolean {
    return this.state === 'running' || this.lock.locked;
  }
}
