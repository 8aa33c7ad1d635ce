// `create`: validate the bundle, claim the id, make the cgroup, run vkinit up to the exec
// FIFO, persist state. Any failure undoes every step: no state dir, cgroup, process or
// mount is left behind.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createCgroupManager } from '../cgroups/manager';
import { CleanupStack } from '../cleanup';
import type { RuntimeContext } from '../context';
import { settled } from '../settled';
import { trace } from '../trace';
import { InvalidArgumentError } from '../errors';
import { runHooks, runHooksWarnOnly } from '../hooks';
import { launchInit, type InitHandle } from '../init/channel';
import { buildCreatePlan } from '../init/from-spec';
import { OCI_VERSION } from '../paths';
import { agentMessage } from '../seccomp/agent-message';
import { compileSeccomp } from '../seccomp/compile';
import { parseViewPolicy } from '../vkernel/policy';
import { startView, stopView } from '../vkernel/view';
import { setupSyscallLayer, stopAgent, type SyscallLayer } from '../vkernel/syscalls';
import { viewDir } from './view-dir';
import { loadBundle } from '../spec/load';
import type { OciState, Seccomp } from '../spec/types';
import { checkSecurityModules, validateContainerId } from '../spec/validate';
import { writeFileAtomic } from '../state/atomic';
import { RECORD_VERSION, type ContainerRecord } from '../state/store';
import { Container } from './container';
import { waitGone } from './wait';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  /** The container's fds 0..2 (default: ours). */
  stdio?: Array<'inherit' | 'ignore' | number>;
  /** Foreground run: vkinit stays as the init's parent and relays its exit code. */
  wait?: boolean;
  /** Foreground run with a terminal and no console socket: vkinit proxies the pty. */
  detach?: boolean;
  /** Told the init's host pid as soon as vkinit reports it (the shim's reaper watches it from then on). */
  onPid?: (pid: number) => void;
}

export interface Created {
  container: Container;
  init: InitHandle;
}

export async function create(ctx: RuntimeContext, opts: CreateOptions): Promise<Created> {
  validateContainerId(opts.id);
  const preserveFds = opts.preserveFds ?? 0;
  if (!Number.isInteger(preserveFds) || preserveFds < 0) {
    throw new InvalidArgumentError(`--preserve-fds: must be a non-negative integer (got ${opts.preserveFds})`, 'preserve-fds');
  }
  const { bundle, spec } = loadBundle(opts.bundle);
  trace('spec loaded');
  checkSecurityModules(spec);
  const viewPolicy = parseViewPolicy(spec.annotations);
  const proc = spec.process!;
  if (proc.terminal && !opts.consoleSocket && !opts.wait) {
    throw new InvalidArgumentError('cannot allocate tty if vkernel will detach without setting console socket', 'console-socket');
  }
  if (!proc.terminal && opts.consoleSocket) {
    throw new InvalidArgumentError('cannot use console socket if vkernel will not detach or allocate tty', 'console-socket');
  }

  const { store, log } = ctx;
  const undo = new CleanupStack();
  store.reserve(opts.id);
  undo.push('remove state dir', () => store.remove(opts.id));
  try {
    const cgroup = createCgroupManager({ id: opts.id, cgroupsPath: spec.linux?.cgroupsPath, systemd: ctx.systemdCgroup });
    undo.push('remove cgroup', () => cgroup.destroy());
    store.saveSpec(opts.id, spec);
    // Independent: the cgroup's fs writes overlap the seccomp compiler (a child process).
    const [, seccompBpf] = await settled([
      cgroup.create(spec.linux?.resources).then(() => trace('cgroup created')),
      prepareSeccomp(ctx, opts.id, spec.linux?.seccomp).then((s) => (trace('seccomp ready'), s)),
    ] as const);
    const plan = buildCreatePlan(spec, {
      bundle,
      execFifo: store.execFifo(opts.id),
      consoleSocket: opts.consoleSocket,
      cgroupProcs: cgroup.procsFiles(),
      noPivot: !!opts.noPivot,
      containerId: opts.id,
      noNewKeyring: !!opts.noNewKeyring,
      preserveFds,
      wait: !!opts.wait,
      capLastCap: ctx.sys.capLastCap(),
    });
    trace('plan built');
    let syscalls: SyscallLayer | undefined;
    if (viewPolicy.view) {
      // The view (vkfs) and the syscall layer (an agent, tracer or preload mount) start side
      // by side: the agent only names the view's config file, read when a container process
      // connects, after both are up. Both undo steps are in place before either starts.
      const dir = agentDir(ctx, opts.id);
      undo.push('stop the vkernel view', () => stopView(viewDir(store, opts.id)));
      undo.push('stop the vkernel agent', () => stopAgent(dir));
      const [view, layer] = await settled([
        startView({ id: opts.id, stateDir: viewDir(store, opts.id), cgroup: cgroup.describe(), policy: viewPolicy }),
        // notify → ptrace → preload (io.vkernel.mode); logged there, never fatal here.
        setupSyscallLayer(plan, {
          id: opts.id,
          root: store.root,
          dir,
          policy: viewPolicy,
          viewConf: path.join(viewDir(store, opts.id), 'vkfs.conf'),
          seccomp: seccompBpf,
          sharedAgent: ctx.vkernelAgent,
          log,
        }),
      ] as const);
      syscalls = layer;
      if (view.fallbackReason) log.warn(`vkernel view: ${view.mode} mode (${view.fallbackReason})`);
      // After every spec mount, so the container's own /proc and /sys are there to cover.
      plan.mounts.push(...view.mounts);
      trace(`view started (${view.mode}); vkernel syscalls: ${syscalls.mode}`);
    }
    if (seccompBpf) {
      plan.seccompBpf = seccompBpf.path;
      plan.seccompFlags = seccompBpf.flags;
      plan.seccompListener = seccompBpf.listener?.path;
    }
    // ptrace mode: the container's filter with the trace rules folded in (create only: exec
    // keeps <state>/seccomp.bpf, its processes have no tracer).
    if (syscalls?.seccompBpf) {
      plan.seccompBpf = syscalls.seccompBpf;
      plan.seccompFlags = seccompBpf?.flags ?? 0;
    }
    // exec joins the container's keyring unless create was told not to make one.
    if (opts.noNewKeyring) fs.writeFileSync(noNewKeyringMarker(ctx, opts.id), '');

    const record: ContainerRecord = {
      version: RECORD_VERSION,
      id: opts.id,
      bundle,
      rootfs: spec.root!.path,
      pid: 0,
      pidStartTime: '',
      created: new Date().toISOString(),
      owner: os.userInfo().username,
      annotations: spec.annotations ?? {},
      cgroup: cgroup.describe(),
      systemdCgroup: ctx.systemdCgroup,
    };
    const container = new Container(store, record, ctx.sys);
    const stateFor = (pid: number, status: OciState['status']): OciState => ({
      ociVersion: OCI_VERSION,
      id: opts.id,
      status,
      pid,
      bundle,
      annotations: spec.annotations ?? {},
    });

    const init = await launchInit(plan, {
      stdio: opts.stdio,
      preserveFds,
      onPid: (pid) => {
        record.pid = pid;
        record.pidStartTime = ctx.sys.procStat(pid)?.startTime ?? '';
        // Until state.json exists nothing else can find this pid: undo kills it.
        undo.push('kill container init', async () => {
          ctx.sys.kill(pid, 9);
          await waitGone(ctx.sys, pid, record.pidStartTime, 5000);
        });
        opts.onPid?.(pid);
      },
      onHooks: plan.syncHooks
        ? async (pid) => {
            // From here a failure ends the lifecycle at delete, which runs poststop (OCI runtime.md).
            // The undo stack runs backwards, so stop the init here first: poststop follows the stop.
            undo.push('run poststop hooks', async () => {
              ctx.sys.kill(pid, 9);
              await waitGone(ctx.sys, pid, record.pidStartTime, 5000);
              await runHooksWarnOnly(spec.hooks, 'poststop', stateFor(pid, 'stopped'), (m) => log.warn(m));
            });
            const state = stateFor(pid, 'creating');
            await runHooks(spec.hooks, 'prestart', state);
            await runHooks(spec.hooks, 'createRuntime', state);
            // createContainer hooks see "creating", startContainer hooks "created" (OCI runtime.md).
            return `${JSON.stringify(stateFor(pid, 'creating'))}\n${JSON.stringify(stateFor(pid, 'created'))}`;
          }
        : undefined,
      // As runc: the agent hears of the container while it is being created.
      seccompAgentMessage: seccompBpf?.listener
        ? (pid) => agentMessage(stateFor(pid, 'creating'), pid, seccompBpf.listener?.metadata)
        : undefined,
    });
    // ptrace mode: seize the init while it waits for `start` (nothing of the workload ran).
    if (syscalls?.attach) {
      await syscalls.attach(record.pid);
      trace('vkernel tracer attached');
    }
    store.save(record);
    trace('init ready, state saved');
    if (opts.pidFile) writeFileAtomic(opts.pidFile, String(record.pid), 0o644);
    undo.release();
    log.debug(`created container ${opts.id} with init pid ${record.pid}`);
    return { container, init };
  } catch (err) {
    const failures = await undo.run();
    for (const f of failures) log.warn(`cleanup after failed create: ${f}`);
    throw err;
  }
}

/**
 * Compiles (or takes from the cache) the container's filter and keeps a private copy in
 * its state dir, so exec can apply the same filter and cache eviction cannot pull it away.
 */
async function prepareSeccomp(
  ctx: RuntimeContext,
  id: string,
  seccomp: Seccomp | undefined,
): Promise<{ path: string; flags: number; listener?: { path: string; metadata?: string } } | undefined> {
  if (!seccomp) return undefined;
  const compiled = await compileSeccomp(seccomp, {
    cacheDir: path.join(ctx.store.root, '.seccomp-cache'),
    log: (m) => ctx.log.warn(m),
  });
  if (!compiled) return undefined;
  const dest = path.join(ctx.store.dir(id), 'seccomp.bpf');
  fs.copyFileSync(compiled.bpfPath, dest);
  fs.writeFileSync(path.join(ctx.store.dir(id), 'seccomp.flags'), String(compiled.flags));
  // Validation makes listenerPath required for a notifying profile; the flags then hold
  // NEW_LISTENER and the container process hands the listener to the agent.
  const listener =
    compiled.notify && compiled.listenerPath ? { path: compiled.listenerPath, metadata: compiled.listenerMetadata } : undefined;
  return { path: dest, flags: compiled.flags, listener };
}

/** A file in the state dir: the container was created with --no-new-keyring. */
export function noNewKeyringMarker(ctx: Pick<RuntimeContext, 'store'>, id: string): string {
  return path.join(ctx.store.dir(id), 'no-new-keyring');
}

/** The vkernel syscall agent's files (socket, pidfile, log) inside the container's dir. */
export function agentDir(ctx: RuntimeContext, id: string): string {
  return path.join(ctx.store.dir(id), 'agent');
}
