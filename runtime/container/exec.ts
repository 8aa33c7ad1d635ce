// `exec`: run a new process inside a running (or created) container, as `runc exec`.
import * as fs from 'node:fs';
import type { RuntimeContext } from '../context';
import { FailedPreconditionError, InvalidArgumentError } from '../errors';
import { launchInit, type InitHandle } from '../init/channel';
import { buildExecPlan } from '../init/from-spec';
import type { Capabilities, Process } from '../spec/types';
import { checkProcessSecurityModules, validateProcess } from '../spec/validate';
import { writeFileAtomic } from '../state/atomic';
import { Container } from './container';
import * as path from 'node:path';
import { liveFilterRecord } from '../vkernel/syscalls';
import type { InitPlan } from '../init/plan-types';
import { agentMessage } from '../seccomp/agent-message';
import { SECCOMP_FILTER_FLAG_NEW_LISTENER } from '../seccomp/constants';
import { noNewKeyringMarker } from './create';

export interface ExecOptions {
  id: string;
  /** An OCI process object (the shim's Exec); otherwise --process or the fields below. */
  process?: Process;
  /** A process.json file, as --process. */
  processFile?: string;
  args?: string[];
  tty?: boolean;
  cwd?: string;
  env?: string[];
  user?: string;
  caps?: string[];
  noNewPrivs?: boolean;
  /** --apparmor / --process-label (runc): override the container's profile / label. */
  apparmor?: string;
  processLabel?: string;
  detach?: boolean;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  stdio?: Array<'inherit' | 'ignore' | number>;
  onStarted?: (pid: number) => void;
  /** Told the process's host pid as soon as vkinit reports it, before it can exit unseen. */
  onPid?: (pid: number) => void;
}

/** Returns the process's exit code, or 0 once it runs when detached. */
export async function exec(ctx: RuntimeContext, opts: ExecOptions): Promise<number> {
  const handle = await spawnExec(ctx, opts);
  if (opts.detach) return 0;
  opts.onStarted?.(handle.pid);
  return handle.waitExit();
}

/**
 * Starts the process and returns once it runs (its execve succeeded). With `detach` the
 * process is reparented to our subreaper (the shim) or init; otherwise vkinit stays as
 * its parent and `waitExit` gives its exit code.
 */
export async function spawnExec(ctx: RuntimeContext, opts: ExecOptions): Promise<InitHandle> {
  const container = Container.load(ctx.store, opts.id, ctx.sys);
  const status = await container.require('exec');
  const spec = container.spec();
  const proc = opts.process
    ? validateProcess(opts.process, 'process')
    : opts.processFile
      ? readProcessFile(opts.processFile)
      : processFromFlags(spec.process!, opts);
  checkProcessSecurityModules(proc);
  if (proc.terminal && opts.detach && !opts.consoleSocket) {
    throw new InvalidArgumentError('cannot allocate tty if vkernel will detach without setting console socket', 'console-socket');
  }
  const plan = buildExecPlan(proc, {
    pid: container.record.pid,
    spec,
    containerId: container.id,
    noNewKeyring: fs.existsSync(noNewKeyringMarker(ctx, container.id)),
    cgroupProcs: container.cgroup().procsFiles(),
    consoleSocket: opts.consoleSocket,
    preserveFds: opts.preserveFds ?? 0,
    wait: !opts.detach,
    capLastCap: ctx.sys.capLastCap(),
  });
  applyContainerSeccomp(container, plan);
  // The vkernel syscall filter too, when the container has a live agent (and the exec'd
  // process no listener of its own: a second one would be EBUSY).
  if (plan.seccompListener === undefined) {
    const vk = liveFilterRecord(path.join(ctx.store.dir(container.id), 'agent'));
    if (vk) plan.vkernelFilter = vk;
  }
  const metadata = spec.linux?.seccomp?.listenerMetadata || undefined;
  const handle = await launchInit(plan, {
    stdio: opts.stdio,
    preserveFds: opts.preserveFds ?? 0,
    onPid: opts.onPid,
    // As runc: the agent gets a listener for each exec'd process, with its pid.
    seccompAgentMessage: plan.seccompListener !== undefined ? (pid) => agentMessage(container.ociState(status), pid, metadata) : undefined,
  });
  if (opts.pidFile) writeFileAtomic(opts.pidFile, String(handle.pid), 0o644);
  return handle;
}

function readProcessFile(file: string): Process {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`--process ${file}: ${(err as Error).message}`, 'process');
  }
  return validateProcess(raw, 'process');
}

function processFromFlags(base: Process, opts: ExecOptions): Process {
  if (!opts.args || opts.args.length === 0) throw new InvalidArgumentError('exec: args must not be empty', 'args');
  const p: Process = structuredClone(base);
  p.args = opts.args;
  p.terminal = !!opts.tty;
  delete p.consoleSize;
  if (opts.cwd) p.cwd = opts.cwd;
  if (opts.env?.length) p.env = mergeEnv(p.env ?? [], opts.env);
  if (opts.user) p.user = { ...parseUser(opts.user), additionalGids: [] };
  if (opts.noNewPrivs) p.noNewPrivileges = true;
  if (opts.apparmor) p.apparmorProfile = opts.apparmor;
  if (opts.processLabel) p.selinuxLabel = opts.processLabel;
  if (opts.caps?.length) p.capabilities = addCaps(p.capabilities ?? {}, opts.caps);
  return validateProcess(p, 'process');
}

function mergeEnv(base: string[], extra: string[]): string[] {
  const key = (kv: string) => kv.split('=', 1)[0];
  const override = new Set(extra.map(key));
  return [...base.filter((kv) => !override.has(key(kv))), ...extra];
}

function parseUser(text: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(text);
  if (!m) throw new InvalidArgumentError(`--user: expected UID[:GID] with numbers (got ${JSON.stringify(text)})`, 'user');
  return { uid: Number(m[1]), gid: Number(m[2] ?? 0) };
}

function addCaps(caps: Capabilities, extra: string[]): Capabilities {
  const add = (set?: string[]) => [...new Set([...(set ?? []), ...extra])];
  return {
    bounding: add(caps.bounding),
    effective: add(caps.effective),
    permitted: add(caps.permitted),
    inheritable: add(caps.inheritable),
    ambient: add(caps.ambient),
  };
}

/** exec'd processes get the container's filter, as with runc (compiled at create). */
function applyContainerSeccomp(container: Container, plan: InitPlan): void {
  const dir = container.store.dir(container.id);
  const bpf = path.join(dir, 'seccomp.bpf');
  if (!fs.existsSync(bpf)) return;
  plan.seccompBpf = bpf;
  plan.seccompFlags = Number(fs.readFileSync(path.join(dir, 'seccomp.flags'), 'utf8'));
  if (plan.seccompFlags & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
    const listenerPath = container.spec().linux?.seccomp?.listenerPath;
    if (!listenerPath) throw new FailedPreconditionError(`container ${container.id}: its seccomp filter notifies but has no listenerPath`);
    plan.seccompListener = listenerPath;
  }
}
