// Fakes for TaskService unit tests: a runtime that records calls and hands out pids, and a
// reaper whose exits the test triggers. No containers, no root.
import * as os from 'node:os';
import type { CgroupStats, OomEvent } from '../../runtime/cgroups/manager';
import { emptyStats } from '../../runtime/cgroups/stats';
import type { CreateOptions, ExecOptions, RuntimeContext } from '../../runtime';
import { FailedPreconditionError } from '../../runtime/errors';
import { RecordingSink } from '../../shim/events';
import { ShimLog } from '../../shim/log';
import type { RuntimeOps } from '../../shim/process';
import type { ExitStatus } from '../../shim/reaper';
import { TaskService } from '../../shim/task';

export class FakeReaper {
  readonly #waits = new Map<number, { promise: Promise<ExitStatus>; resolve: (e: ExitStatus) => void }>();
  readonly #early = new Map<number, ExitStatus>();

  watch(pid: number): Promise<ExitStatus> {
    let w = this.#waits.get(pid);
    if (!w) {
      let resolve!: (e: ExitStatus) => void;
      const promise = new Promise<ExitStatus>((r) => (resolve = r));
      w = { promise, resolve };
      this.#waits.set(pid, w);
      const early = this.#early.get(pid);
      if (early) resolve(early);
    }
    return w.promise;
  }

  unwatch(pid: number): void {
    this.#waits.delete(pid);
  }

  /** The process `pid` exits now (or as soon as someone watches it). */
  exit(pid: number, status: number): void {
    const e = { pid, status, exitedAt: new Date() };
    const w = this.#waits.get(pid);
    if (w) w.resolve(e);
    else this.#early.set(pid, e);
  }
}

export class FakeRuntime implements RuntimeOps {
  readonly calls: string[] = [];
  readonly live = new Set<number>();
  nextPid = 1000;
  pidList: number[] | undefined;
  ownPidNs = true;
  /** Hooks a test sets to act in the middle of a call (early exits). */
  onStart?: (id: string) => void;
  onSpawnExec?: (pid: number) => void;
  onSignal?: (pid: number, signal: number) => void;
  onKill?: (id: string, signal: number, all: boolean) => void;

  constructor(private readonly reaper: FakeReaper) {}

  async create(_ctx: RuntimeContext, opts: CreateOptions): Promise<{ pid: number }> {
    const pid = this.nextPid++;
    this.live.add(pid);
    opts.onPid?.(pid);
    this.calls.push(`create ${opts.id}`);
    return { pid };
  }
  async start(_ctx: RuntimeContext, id: string): Promise<void> {
    this.calls.push(`start ${id}`);
    this.onStart?.(id);
  }
  async kill(_ctx: RuntimeContext, id: string, signal: number, all: boolean): Promise<void> {
    this.calls.push(`kill ${id} ${signal}${all ? ' all' : ''}`);
    this.onKill?.(id, signal, all);
  }
  async pause(_ctx: RuntimeContext, id: string): Promise<void> {
    this.calls.push(`pause ${id}`);
  }
  async resume(_ctx: RuntimeContext, id: string): Promise<void> {
    this.calls.push(`resume ${id}`);
  }
  async update(_ctx: RuntimeContext, id: string): Promise<void> {
    this.calls.push(`update ${id}`);
  }
  async spawnExec(_ctx: RuntimeContext, opts: ExecOptions): Promise<{ pid: number }> {
    const pid = this.nextPid++;
    this.live.add(pid);
    opts.onPid?.(pid);
    this.calls.push(`exec ${opts.id} ${opts.process?.args?.join(' ')} terminal=${!!opts.process?.terminal}`);
    this.onSpawnExec?.(pid);
    return { pid };
  }
  async delete(_ctx: RuntimeContext, id: string): Promise<void> {
    this.calls.push(`delete ${id}`);
  }
  async stats(): Promise<{ mode: 'v1' | 'v2'; stats: CgroupStats }> {
    const s = emptyStats();
    s.pids.current = 2;
    s.memory.usage.usage = 4096;
    return { mode: 'v1', stats: s };
  }
  async pids(): Promise<number[]> {
    return this.pidList ?? [...this.live];
  }
  async killAll(_ctx: RuntimeContext, id: string, signal: number): Promise<void> {
    this.calls.push(`killAll ${id} ${signal}`);
  }
  async *oomEvents(): AsyncIterable<OomEvent> {
    // no OOM in unit tests
  }
  ownPidNamespace(): boolean {
    return this.ownPidNs;
  }
  signal(pid: number, signal: number): boolean {
    this.calls.push(`signal ${pid} ${signal}`);
    this.onSignal?.(pid, signal);
    return this.live.has(pid);
  }
  /** The fake kernel: pid exits with status. */
  exit(pid: number, status: number): void {
    this.live.delete(pid);
    this.reaper.exit(pid, status);
  }
  refuseStart(): void {
    this.onStart = () => {
      throw new FailedPreconditionError('cannot start a container that has stopped');
    };
  }
}

export interface Harness {
  svc: TaskService;
  rt: FakeRuntime;
  reaper: FakeReaper;
  events: RecordingSink;
  shutdowns: number;
}

export function makeService(): Harness {
  const reaper = new FakeReaper();
  const rt = new FakeRuntime(reaper);
  const events = new RecordingSink();
  const h: Harness = { svc: undefined as unknown as TaskService, rt, reaper, events, shutdowns: 0 };
  h.svc = new TaskService({
    namespace: 'unit',
    stateRoot: os.tmpdir(),
    configPath: '/nonexistent/vkernel-config.toml',
    events,
    reaper,
    log: new ShimLog(),
    runtime: rt,
    onShutdown: () => h.shutdowns++,
  });
  return h;
}

/** A CreateTaskRequest with null IO and no rootfs mounts. */
export function createReq(id: string): Parameters<TaskService['create']>[0] {
  return {
    id,
    bundle: `/tmp/${id}`,
    rootfs: [],
    terminal: false,
    stdin: '',
    stdout: '',
    stderr: '',
    checkpoint: '',
    parent_checkpoint: '',
    options: null,
    oom_path: '',
  };
}

export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
