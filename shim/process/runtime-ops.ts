// The runtime library calls the shim makes, in one interface: the real one calls runtime/
// in-process (never the CLI); unit tests hand in a fake to drive exits and event order
// without containers.
import {
  containerPids,
  create,
  deleteContainer,
  kill,
  pause,
  resume,
  spawnExec,
  start,
  update,
  Container,
  NotFoundError,
  type CreateOptions,
  type ExecOptions,
  type LinuxResources,
  type RuntimeContext,
} from '../../runtime';
import type { CgroupStats, OomEvent, OomEventOptions } from '../../runtime/cgroups/manager';

export interface RuntimeOps {
  /** Creates the container (init blocked before exec); resolves with the init's host pid. */
  create(ctx: RuntimeContext, opts: CreateOptions): Promise<{ pid: number }>;
  start(ctx: RuntimeContext, id: string): Promise<void>;
  kill(ctx: RuntimeContext, id: string, signal: number, all: boolean): Promise<void>;
  pause(ctx: RuntimeContext, id: string): Promise<void>;
  resume(ctx: RuntimeContext, id: string): Promise<void>;
  update(ctx: RuntimeContext, id: string, resources: LinuxResources): Promise<void>;
  /** Starts an exec detached (reparented to us); resolves with its host pid once it runs. */
  spawnExec(ctx: RuntimeContext, opts: ExecOptions): Promise<{ pid: number }>;
  /** Removes the container whatever its state (the shim checked it): kills leftovers, poststop hooks, cgroup, state. */
  delete(ctx: RuntimeContext, id: string): Promise<void>;
  stats(ctx: RuntimeContext, id: string): Promise<{ mode: 'v1' | 'v2'; stats: CgroupStats }>;
  pids(ctx: RuntimeContext, id: string): Promise<number[]>;
  /** SIGKILL (or another signal) to every process in the container's cgroup. */
  killAll(ctx: RuntimeContext, id: string, signal: number): Promise<void>;
  oomEvents(ctx: RuntimeContext, id: string, opts: OomEventOptions): AsyncIterable<OomEvent>;
  /** True when the container has a pid namespace of its own (its processes die with its init). */
  ownPidNamespace(ctx: RuntimeContext, id: string): boolean;
  /** kill(2); false when the process is gone (ESRCH). */
  signal(pid: number, signal: number): boolean;
}

export const realRuntime: RuntimeOps = {
  async create(ctx, opts) {
    const { container } = await create(ctx, opts);
    return { pid: container.record.pid };
  },
  async start(ctx, id) {
    await start(ctx, id);
  },
  kill: (ctx, id, signal, all) => kill(ctx, id, signal, all),
  async pause(ctx, id) {
    await pause(ctx, id);
  },
  async resume(ctx, id) {
    await resume(ctx, id);
  },
  update: (ctx, id, resources) => update(ctx, id, resources),
  async spawnExec(ctx, opts) {
    const handle = await spawnExec(ctx, { ...opts, detach: true });
    return { pid: handle.pid };
  },
  async delete(ctx, id) {
    try {
      await deleteContainer(ctx, id, true);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err; // already gone: nothing to delete
    }
  },
  async stats(ctx, id) {
    const cg = Container.load(ctx.store, id, ctx.sys).cgroup();
    return { mode: cg.mode, stats: await cg.stats() };
  },
  pids: (ctx, id) => containerPids(ctx, id),
  killAll: (ctx, id, signal) => Container.load(ctx.store, id, ctx.sys).cgroup().killAll(signal),
  oomEvents: (ctx, id, opts) => Container.load(ctx.store, id, ctx.sys).cgroup().oomEvents(opts),
  ownPidNamespace(ctx, id) {
    const ns = Container.load(ctx.store, id, ctx.sys).spec().linux?.namespaces ?? [];
    return ns.some((n) => n.type === 'pid' && !n.path);
  },
  signal(pid, sig) {
    try {
      process.kill(pid, sig);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw err;
    }
  },
};
