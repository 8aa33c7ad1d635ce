// The task service: one async method per containerd.task.v2.Task RPC, taking and returning
// the decoded messages, throwing typed errors (runtime/errors.ts) that the transport maps to
// status codes in one place. Transport-free: ttrpc registers it (register.ts), a gRPC
// transport can register the same object. Many containers per daemon (grouping): each has
// its own ShimContainer; deleting one leaves the others alone.
import * as path from 'node:path';
import type { SharedAgent } from '../../runtime/vkernel/syscalls';
import { updateAnnotations } from '../../runtime/container/update';
import { ANNOTATIONS } from '../../runtime/vkernel/policy';
import { makeContext, NotFoundError, NotImplementedError, AlreadyExistsError, InvalidArgumentError } from '../../runtime';
import { validateContainerId } from '../../runtime/spec/validate';
import { trace } from '../../runtime/trace';
import { resolveShimConfig } from '../config';
import type { EventSink } from '../events';
import { RuntimeLogBridge, type ShimLog } from '../log';
import { realRuntime, taskStatus, type ExecProcess, type ProcessEnv, type RuntimeOps } from '../process';
import { anyOf, timestamp, type ProtoInput, type ProtoTypes } from '../proto';
import type { Reaper } from '../reaper';
import { ShimContainer } from './container';
import { decodeProcess, decodeResources } from './decode';
import { metricsAny } from './metrics';

type Req<N extends string> = ProtoTypes[`containerd.task.v2.${N}` & keyof ProtoTypes];
type Res<N extends string> = ProtoInput<ProtoTypes[`containerd.task.v2.${N}` & keyof ProtoTypes]>;
type Empty = ProtoInput<ProtoTypes['google.protobuf.Empty']>;

export interface TaskServiceOptions {
  namespace: string;
  /** The runtime state root for this daemon's containers. */
  stateRoot: string;
  /** The daemon's TOML config path (when Create brings no ConfigPath). */
  configPath?: string;
  events: EventSink;
  reaper: Pick<Reaper, 'watch' | 'unwatch'>;
  log: ShimLog;
  /** Default: the runtime library, in-process. */
  runtime?: RuntimeOps;
  debug?: boolean;
  /** Shutdown found nothing left to serve. */
  onShutdown?: () => void;
  /** The pod's shared vkernel syscall agent (shim/pod-agent.ts): its socket, started on first use. */
  vkernelAgent?: () => Promise<SharedAgent>;
}

export class TaskService {
  readonly containers = new Map<string, ShimContainer>();
  readonly #creating = new Set<string>();
  readonly #opts: TaskServiceOptions;
  readonly #runtime: RuntimeOps;

  constructor(opts: TaskServiceOptions) {
    this.#opts = opts;
    this.#runtime = opts.runtime ?? realRuntime;
  }

  /** Containers served, including ones being created. */
  get size(): number {
    return this.containers.size + this.#creating.size;
  }

  #container(id: string): ShimContainer {
    const c = this.containers.get(id);
    if (!c) throw new NotFoundError(`container ${id}: not created`);
    return c;
  }

  async create(req: Req<'CreateTaskRequest'>): Promise<Res<'CreateTaskResponse'>> {
    const id = req.id;
    validateContainerId(id);
    if (this.containers.has(id) || this.#creating.has(id)) throw new AlreadyExistsError(`container ${id}: already exists`);
    if (req.checkpoint || req.parent_checkpoint) throw new NotImplementedError('checkpoint/restore is not supported by vkernel');
    if (!path.isAbsolute(req.bundle)) throw new InvalidArgumentError(`bundle: must be an absolute path (got ${JSON.stringify(req.bundle)})`, 'bundle');
    const { log } = this.#opts;
    this.#creating.add(id);
    log.attach(req.bundle);
    const clog = log.forContainer(id, req.bundle);
    try {
      trace('shim: create begins');
      const { config, source } = resolveShimConfig(req.options, this.#opts.configPath, (m) => clog.warn(m));
      clog.debug(`create: config from ${source}`);
      const env: ProcessEnv = {
        ctx: makeContext({
          root: this.#opts.stateRoot,
          systemdCgroup: config.systemdCgroup,
          log: new RuntimeLogBridge(clog, !!this.#opts.debug || config.debug),
          vkernelAgent: this.#opts.vkernelAgent,
        }),
        runtime: this.#runtime,
        events: this.#opts.events,
        reaper: this.#opts.reaper,
        log: clog,
        namespace: this.#opts.namespace,
        ioDrainTimeoutMs: config.ioDrainTimeoutMs,
      };
      const c = await ShimContainer.create(
        {
          id,
          bundle: req.bundle,
          rootfs: req.rootfs,
          stdio: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
          noPivotRoot: config.noPivotRoot,
          noNewKeyring: config.noNewKeyring,
          oomPollIntervalMs: config.oomPollIntervalMs,
        },
        env,
      );
      this.containers.set(id, c);
      trace('shim: created');
      clog.info(`created, init pid ${c.init.pid}`);
      return { pid: c.init.pid };
    } catch (err) {
      clog.warn(`create failed: ${(err as Error).message}`);
      log.detach(req.bundle);
      throw err;
    } finally {
      this.#creating.delete(id);
    }
  }

  async start(req: Req<'StartRequest'>): Promise<Res<'StartResponse'>> {
    const c = this.#container(req.id);
    const pid = req.exec_id ? await c.exec(req.exec_id).start() : await c.init.start();
    return { pid };
  }

  async delete(req: Req<'DeleteRequest'>): Promise<Res<'DeleteResponse'>> {
    const c = this.#container(req.id);
    if (req.exec_id) return triple(await c.deleteExec(req.exec_id));
    const t = await c.delete();
    this.containers.delete(req.id);
    this.#opts.log.detach(c.bundle);
    return triple(t);
  }

  async exec(req: Req<'ExecProcessRequest'>): Promise<Empty> {
    const c = this.#container(req.id);
    const spec = decodeProcess(req.spec);
    c.addExec(req.exec_id, spec, { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal });
    return {};
  }

  async resizePty(req: Req<'ResizePtyRequest'>): Promise<Empty> {
    this.#container(req.id).process(req.exec_id).resize(req.width, req.height);
    return {};
  }

  async state(req: Req<'StateRequest'>): Promise<Res<'StateResponse'>> {
    const c = this.#container(req.id);
    const p = c.process(req.exec_id);
    // An exec in a paused container is paused too (the whole cgroup is frozen).
    const paused = req.exec_id && p.state === 'running' && c.init.state === 'paused';
    return {
      id: c.id,
      bundle: c.bundle,
      pid: p.pid,
      status: taskStatus(paused ? 'paused' : p.state),
      stdin: p.stdio.stdin,
      stdout: p.stdio.stdout,
      stderr: p.stdio.stderr,
      terminal: p.stdio.terminal,
      exit_status: p.exit?.status ?? 0,
      exited_at: p.exit ? timestamp(p.exit.exitedAt) : null,
      exec_id: req.exec_id,
    };
  }

  async pids(req: Req<'PidsRequest'>): Promise<Res<'PidsResponse'>> {
    const c = this.#container(req.id);
    let pids: number[] = [];
    try {
      pids = await this.#runtime.pids(c.env.ctx, c.id);
    } catch (err) {
      c.env.log.debug(`pids: ${(err as Error).message}`);
    }
    // Never empty for a live task: containerd 1.7+ takes an empty list as a leaked shim.
    const live = c.init.state === 'created' || c.init.state === 'running' || c.init.state === 'paused';
    if (live && c.init.pid && !pids.includes(c.init.pid)) pids.unshift(c.init.pid);
    const execs = c.execPids();
    return {
      processes: pids.map((pid) => {
        const execId = execs.get(pid);
        return { pid, info: execId ? anyOf('containerd.runc.v1.ProcessDetails', { exec_id: execId }) : null };
      }),
    };
  }

  async pause(req: Req<'PauseRequest'>): Promise<Empty> {
    await this.#container(req.id).init.pause();
    return {};
  }

  async resume(req: Req<'ResumeRequest'>): Promise<Empty> {
    await this.#container(req.id).init.resume();
    return {};
  }

  async checkpoint(_req: Req<'CheckpointTaskRequest'>): Promise<Empty> {
    throw new NotImplementedError('checkpoint is not supported by vkernel');
  }

  async kill(req: Req<'KillRequest'>): Promise<Empty> {
    const c = this.#container(req.id);
    if (req.exec_id) await c.exec(req.exec_id).kill(req.signal);
    else await c.init.kill(req.signal, req.all);
    return {};
  }

  async closeIO(req: Req<'CloseIORequest'>): Promise<Empty> {
    const p = this.#container(req.id).process(req.exec_id);
    if (req.stdin) p.closeStdin();
    return {};
  }

  async update(req: Req<'UpdateTaskRequest'>): Promise<Empty> {
    const c = this.#container(req.id);
    // io.vkernel.* annotations change the container's vkernel policy live (view, files, cpu
    // rule, syscalls: runtime/container/update.ts updateAnnotations); others are ignored.
    // An Update may carry annotations alone. The annotations are checked first and written
    // last, so a refused limit leaves the policy as it was. Only the policy keys count: a
    // client that sends the container's annotations back also sends io.vkernel.group etc.
    const all = req.annotations ?? {};
    const policyKeys = new Set<string>(Object.values(ANNOTATIONS));
    const vk = Object.fromEntries(Object.entries(all).filter(([k]) => policyKeys.has(k)));
    const withPolicy = Object.keys(vk).length > 0;
    const resources = req.resources || !withPolicy ? decodeResources(req.resources) : undefined;
    if (Object.keys(all).length > Object.keys(vk).length) c.env.log.debug(`update: annotations other than ${[...policyKeys].join(', ')} are ignored`);
    const withLimits = resources ? () => c.init.update(resources) : undefined;
    if (!withPolicy) {
      await withLimits?.();
      return {};
    }
    const { deferred } = await updateAnnotations(c.env.ctx, c.id, vk, { beforeApply: withLimits });
    for (const d of deferred) c.env.log.warn(`update ${c.id}: ${d}`);
    return {};
  }

  /** Blocks until the process exited; the result stays readable until Delete. */
  async wait(req: Req<'WaitRequest'>, signal?: AbortSignal): Promise<Res<'WaitResponse'>> {
    const p = this.#container(req.id).process(req.exec_id);
    const exited = p.wait();
    const info = signal ? await abortable(exited, signal) : await exited;
    return { exit_status: info.status, exited_at: timestamp(info.exitedAt) };
  }

  async stats(req: Req<'StatsRequest'>): Promise<Res<'StatsResponse'>> {
    const c = this.#container(req.id);
    const { mode, stats } = await this.#runtime.stats(c.env.ctx, c.id);
    return { stats: metricsAny(mode, stats) };
  }

  /** Never fails: containerd uses it as the connectivity probe. */
  async connect(req: Req<'ConnectRequest'>): Promise<Res<'ConnectResponse'>> {
    const c = this.containers.get(req.id);
    return { shim_pid: process.pid, task_pid: c?.init.pid ?? 0, version: '' };
  }

  /** Exits the daemon only when it serves no container (containerd sends it after every delete). */
  async shutdown(_req: Req<'ShutdownRequest'>): Promise<Empty> {
    if (this.size === 0) setImmediate(() => this.#opts.onShutdown?.());
    return {};
  }

  /** Every exec of every container (tests, diagnostics). */
  allExecs(): ExecProcess[] {
    return [...this.containers.values()].flatMap((c) => [...c.execs.values()]);
  }
}

function triple(t: { pid: number; exitStatus: number; exitedAt: Date }): Res<'DeleteResponse'> {
  return { pid: t.pid, exit_status: t.exitStatus, exited_at: timestamp(t.exitedAt) };
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
