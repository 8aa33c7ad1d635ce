// The vkernel syscall layer: cold syscalls (sysinfo, sched_getaffinity) answered from the
// container's cgroup, by one of three mechanisms (docs/vkernel-syscalls.md):
//
//   notify   seccomp user notification served by build/vkagent (agent/vkagent.c). create
//            starts one agent (keeper + worker + standby) in the container's state dir; vkinit loads
//            the fixed filter below as the last filter before execve and hands the listener
//            to the agent over the OCI seccomp agent protocol; delete stops the agent.
//            `vkernel agent --socket P` runs the same agent for runc / crun.
//   ptrace   SECCOMP_RET_TRACE for the same calls (merged into the container's own filter),
//            and `vkagent trace` (agent/trace.c) seized on the init before start.
//   preload  build/libvkpreload.so bind-mounted into the container and put in LD_PRELOAD
//            (dynamic glibc binaries only).
//
// `auto` takes the first usable one in that order (selectSyscallMode, probeSyscallHost).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { childrenOf } from '../proc-tree';
import type { InitPlan, PlanMount } from '../init/plan-types';
import { buildPath, missingHelperFix } from '../paths';
import { spawnReady } from './spawn-ready';
import { MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY } from '../spec/mount-options';
import { syscallsValue, type ViewPolicy } from './policy';
import { sha256Hex } from '../hash';

export const SOCKET = 'vkagent.sock';
const PIDFILE = 'vkagent.pid';
const LOG = 'vkagent.log';
const FILTER = 'vkernel-notify.bpf';
const TRACE_FILTER = 'vkernel-trace.bpf';
const TRACE_PIDFILE = 'vktrace.pid';
const TRACE_BPF = 'trace.bpf';

/** SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (vkinit drops the latter on EINVAL). */
export const FILTER_FLAGS = (1 << 3) | (1 << 5);

const AUDIT_ARCH_X86_64 = 0xc000003e;
const NR_SYSINFO = 99;
const NR_SCHED_GETAFFINITY = 204;
const RET_ALLOW = 0x7fff0000;
const RET_USER_NOTIF = 0x7fc00000;
/** SECCOMP_RET_TRACE with our data (0x766b, "vk"): the tracer ignores other TRACE stops. */
export const RET_TRACE_VK = 0x7ff00000 | 0x766b;
const BPF_RET_K = 0x06;
const BPF_JA = 0x05;
const BPF_MAXINSNS = 4096;

/** Our filter (x86_64): sysinfo and sched_getaffinity -> `ret`, all else (other arches, x32) ALLOW. */
function coldFilter(ret: number): Buffer {
  const ins: Array<[number, number, number, number]> = [
    [0x20, 0, 0, 4], // ld [arch]
    [0x15, 0, 3, AUDIT_ARCH_X86_64], // jeq x86_64, else allow
    [0x20, 0, 0, 0], // ld [nr]
    [0x15, 2, 0, NR_SYSINFO],
    [0x15, 1, 0, NR_SCHED_GETAFFINITY],
    [BPF_RET_K, 0, 0, RET_ALLOW],
    [BPF_RET_K, 0, 0, ret],
  ];
  const b = Buffer.alloc(ins.length * 8);
  ins.forEach(([code, jt, jf, k], i) => {
    b.writeUInt16LE(code, i * 8);
    b.writeUInt8(jt, i * 8 + 2);
    b.writeUInt8(jf, i * 8 + 3);
    b.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return b;
}

/** The notify filter: USER_NOTIF for the cold list. Same bytes as `vkagent filter`. */
export function notifyFilter(): Buffer {
  return coldFilter(RET_USER_NOTIF);
}

/** The ptrace filter: RET_TRACE_VK for the cold list. Same bytes as `vkagent trace-filter`. */
export function traceFilter(): Buffer {
  return coldFilter(RET_TRACE_VK);
}

/**
 * The container's own program with the trace filter folded in (one filter, so no second
 * listener and no second filter load): every `ret ALLOW` becomes a jump to traceFilter()
 * appended at the end, so the cold calls the profile allows are traced and every other
 * verdict (ERRNO, KILL, the profile's own NOTIFY ...) is unchanged. Same length plus 7; a
 * jump replaces a return one for one, so no offset moves. Undefined when too long.
 */
export function mergeTraceFilter(prog: Buffer): Buffer | undefined {
  if (prog.length === 0 || prog.length % 8 !== 0) return undefined;
  const n = prog.length / 8;
  const tail = traceFilter();
  if (n + tail.length / 8 > BPF_MAXINSNS) return undefined;
  const out = Buffer.concat([prog, tail]);
  for (let i = 0; i < n; i++) {
    if (out.readUInt16LE(i * 8) === BPF_RET_K && out.readUInt32LE(i * 8 + 4) === RET_ALLOW) {
      out.writeUInt16LE(BPF_JA, i * 8);
      out.writeUInt8(0, i * 8 + 2);
      out.writeUInt8(0, i * 8 + 3);
      out.writeUInt32LE(n - i - 1, i * 8 + 4); // to the tail's first instruction
    }
  }
  return out;
}

export function vkagentPath(): string {
  return buildPath('vkagent');
}

export function preloadLibPath(): string {
  return buildPath('libvkpreload.so');
}

// ---- which mechanism ----

export const LAYER_MODES = ['notify', 'ptrace', 'preload'] as const;
export type LayerMode = (typeof LAYER_MODES)[number];

/** What the host offers the syscall layer (probeSyscallHost; tests inject their own). */
export interface SyscallProbe {
  arch: string;
  /** /proc/sys/kernel/seccomp/actions_avail */
  seccompActions: string[];
  /** build/vkagent exists */
  agent: boolean;
  /** build/libvkpreload.so exists */
  preloadLib: boolean;
  /** undefined: this process may ptrace the containers; else why not */
  ptraceBlocked?: string;
}

let cachedProbe: SyscallProbe | undefined;

/** A few file reads, cached per process. */
export function probeSyscallHost(): SyscallProbe {
  if (cachedProbe) return cachedProbe;
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      return undefined;
    }
  };
  let ptraceBlocked: string | undefined;
  const capEff = /\nCapEff:\s*([0-9a-f]+)/.exec(read('/proc/self/status') ?? '')?.[1];
  if (capEff === undefined || !(BigInt(`0x${capEff}`) & (1n << 19n))) ptraceBlocked = 'no CAP_SYS_PTRACE';
  if ((read('/proc/sys/kernel/yama/ptrace_scope') ?? '').trim() === '3') ptraceBlocked = 'ptrace disabled (yama ptrace_scope 3)';
  cachedProbe = {
    arch: process.arch,
    seccompActions: (read('/proc/sys/kernel/seccomp/actions_avail') ?? '').trim().split(/\s+/).filter(Boolean),
    agent: fs.existsSync(vkagentPath()),
    preloadLib: fs.existsSync(preloadLibPath()),
    ptraceBlocked,
  };
  return cachedProbe;
}

export interface ModeCheck {
  ok: boolean;
  reason?: string;
}

/** Whether each mechanism can serve a container on this host (and this container). */
export function checkModes(probe: SyscallProbe, container: { listener?: boolean; traceable?: boolean } = {}): Record<LayerMode, ModeCheck> {
  const no = (reason: string): ModeCheck => ({ ok: false, reason });
  const agent = probe.agent ? undefined : `${vkagentPath()} is missing (${missingHelperFix()})`;
  const x64 = probe.arch === 'x64' ? undefined : `no filter for ${probe.arch} (x86_64 only)`;
  const notify =
    x64 ??
    (probe.seccompActions.includes('user_notif') ? undefined : 'the kernel has no seccomp user notification') ??
    agent ??
    (container.listener ? "the container's seccomp profile has its own listener (a second one is EBUSY)" : undefined);
  const ptrace =
    x64 ??
    (probe.seccompActions.includes('trace') ? undefined : 'the kernel has no SECCOMP_RET_TRACE') ??
    agent ??
    probe.ptraceBlocked ??
    (container.traceable === false ? "the container's seccomp program is too long to add the trace rules" : undefined);
  const preload = probe.preloadLib ? undefined : `${preloadLibPath()} is missing (${missingHelperFix()})`;
  return {
    notify: notify ? no(notify) : { ok: true },
    ptrace: ptrace ? no(ptrace) : { ok: true },
    preload: preload ? no(preload) : { ok: true },
  };
}

export interface ModeSelection {
  /** Mechanisms to try, best first (empty: the layer is off). */
  modes: LayerMode[];
  /** Why the better ones (or all) were not taken. */
  reason?: string;
  /** auto had to settle for less than notify, or a forced mode is unavailable. */
  degraded: boolean;
}

/** io.vkernel.mode → what to try: auto = notify → ptrace → preload → off; a forced mode alone. */
export function selectSyscallMode(policy: ViewPolicy, checks: Record<LayerMode, ModeCheck>): ModeSelection {
  if (!policy.view) return { modes: [], reason: 'view off', degraded: false };
  if (policy.mode === 'off') return { modes: [], reason: 'io.vkernel.mode=off', degraded: false };
  // Nothing to answer: no filter at all (turning syscalls on later takes a restart, as the view).
  if (policy.syscalls && policy.syscalls.length === 0) return { modes: [], reason: 'io.vkernel.syscalls=none', degraded: false };
  const why = (m: LayerMode) => `${m}: ${checks[m].reason}`;
  if (policy.mode !== 'auto') {
    const m = policy.mode;
    return checks[m].ok ? { modes: [m], degraded: false } : { modes: [], reason: `io.vkernel.mode=${m} unavailable (${checks[m].reason})`, degraded: true };
  }
  const modes = LAYER_MODES.filter((m) => checks[m].ok);
  const skipped = LAYER_MODES.slice(0, modes.length ? LAYER_MODES.indexOf(modes[0]) : LAYER_MODES.length);
  return { modes, reason: skipped.length ? skipped.map(why).join('; ') : undefined, degraded: skipped.length > 0 };
}

/** The filter file, written once per state root. */
export function ensureFilterFile(root: string, kind: 'notify' | 'trace' = 'notify'): string {
  const file = path.join(root, '.vkernel', kind === 'notify' ? FILTER : TRACE_FILTER);
  const want = kind === 'notify' ? notifyFilter() : traceFilter();
  try {
    if (fs.readFileSync(file).equals(want)) return file;
  } catch {
    /* write it */
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, want, { mode: 0o644 });
  fs.renameSync(tmp, file);
  return file;
}

/** listenerMetadata for the agent: flat `key=value;...` (no JSON in C). */
export function agentMetadata(opts: { id: string; policy: ViewPolicy; viewConf?: string }): string {
  const kv: string[] = [];
  if (opts.viewConf) kv.push(`conf=${opts.viewConf}`);
  kv.push(`view=${opts.policy.view ? 'on' : 'off'}`, `rule=${opts.policy.cpuRule}`, `syscalls=${syscallsValue(opts.policy.syscalls)}`, `id=${opts.id}`);
  return kv.map((s) => s.replace(/[;"\\\n]/g, '_')).join(';');
}

/** AF_UNIX paths are limited to 108 bytes: long state dirs get a short socket elsewhere. */
export function agentSocketPath(stateDir: string): string {
  const p = path.join(path.resolve(stateDir), SOCKET);
  if (Buffer.byteLength(p) <= 100) return p;
  const h = sha256Hex(p).slice(0, 20);
  return `/run/vkernel-agent-${h}.sock`;
}

export interface AgentHandle {
  socket: string;
  pid: number;
}

/** Starts `vkagent serve` detached; resolves once it listens. */
export async function startAgent(stateDir: string, opts: { socket?: string; timeoutMs?: number; binary?: string; dieWithParent?: boolean } = {}): Promise<AgentHandle> {
  const dir = path.resolve(stateDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const socket = opts.socket ?? agentSocketPath(dir);
  fs.writeFileSync(path.join(dir, 'vkagent.socket'), socket);
  const args = ['serve', '--socket', socket, '--pidfile', path.join(dir, PIDFILE), ...(opts.dieWithParent ? ['--die-with-parent'] : [])];
  const pid = await spawnAgent(opts.binary ?? vkagentPath(), args, dir, opts.timeoutMs);
  return { socket, pid };
}

/**
 * Starts `vkagent trace` on the container init `pid` (held at the exec FIFO: nothing of the
 * workload has run yet); resolves once the init is seized. Returns the keeper's pid.
 */
export function startTracer(stateDir: string, pid: number, metadata: string, opts: { timeoutMs?: number; binary?: string } = {}): Promise<number> {
  const dir = path.resolve(stateDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return spawnAgent(
    opts.binary ?? vkagentPath(),
    ['trace', '--pid', String(pid), '--meta', metadata, '--pidfile', path.join(dir, TRACE_PIDFILE)],
    dir,
    opts.timeoutMs,
  );
}

/** Spawns a vkagent mode detached (log in dir) and waits for its `ok PID` line on fd 3. */
function spawnAgent(binary: string, args: string[], dir: string, timeoutMs?: number): Promise<number> {
  return spawnReady({ binary, args, logFile: path.join(dir, LOG), name: `vkagent ${args[0]}`, timeoutMs });
}

function alive(pid: number): boolean {
  if (!pid) return false;
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(st);
  } catch {
    return false;
  }
}

function isAgent(pid: number, verb: 'serve' | 'trace', marker: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv[1] === verb && argv.includes(marker);
  } catch {
    return false;
  }
}

function livePids(pidfile: string, verb: 'serve' | 'trace', marker: string): number[] {
  let pids: number[];
  try {
    pids = fs.readFileSync(pidfile, 'utf8').trim().split(/\s+/).map(Number);
  } catch {
    return [];
  }
  return pids.filter((p) => Number.isInteger(p) && p > 0 && alive(p) && isAgent(p, verb, marker));
}

/** The tracer's keeper and worker pids (ptrace mode; only live `vkagent trace` processes). */
export function tracerPids(stateDir: string): number[] {
  const pidfile = path.join(path.resolve(stateDir), TRACE_PIDFILE);
  return livePids(pidfile, 'trace', pidfile);
}

/** The agent's keeper, worker and standby pids (pidfile "keeper worker standby"; only live vkagent processes, in that order). */
export function agentPids(stateDir: string): number[] {
  const dir = path.resolve(stateDir);
  let socket: string;
  try {
    socket = fs.readFileSync(path.join(dir, 'vkagent.socket'), 'utf8');
  } catch {
    return [];
  }
  return livePids(path.join(dir, PIDFILE), 'serve', socket);
}

/**
 * Every live process of the agent on `socket`: the pidfile's and their descendants, and the
 * agent processes among the descendants of `root` (a subreaper that started the agent: a
 * worker or standby whose keeper died is re-parented to it). The pidfile alone misses a
 * process forked by a standby that took over but had not rewritten it yet.
 */
function agentTree(pidfilePids: number[], socket: string, root?: number): number[] {
  const found = new Set<number>();
  const queue = [...pidfilePids, ...(root ? childrenOf(root) ?? [] : [])];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (found.has(pid) || !alive(pid) || !isAgent(pid, 'serve', socket)) continue;
    found.add(pid);
    queue.push(...(childrenOf(pid) ?? []));
  }
  return [...found];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SIGSTOPs all of `pids` first, then SIGKILLs them: a keeper that saw its standby die would
 * fork a new one, and a standby that saw its keeper die would take over, so none of them may
 * run between the first kill and the last (a stopped process reacts to nothing but SIGKILL).
 */
async function killAll(pids: number[]): Promise<void> {
  for (const sig of ['SIGSTOP', 'SIGKILL'] as const) {
    for (const p of pids) {
      try {
        process.kill(p, sig);
      } catch {
        /* gone */
      }
    }
  }
  for (let i = 0; i < 500 && pids.some(alive); i++) await sleep(2);
}

/**
 * Stops the agent or the tracer of stateDir and removes their files. `root`: the process that
 * started the agent, if it is a subreaper (a shim daemon): its agent children are stopped too.
 */
export async function stopAgent(stateDir: string, opts: { root?: number } = {}): Promise<void> {
  const dir = path.resolve(stateDir);
  // The tracer: its tracees (if any are left) are detached by the kernel and run on.
  await killAll(tracerPids(dir));
  const tracePid = path.join(dir, TRACE_PIDFILE);
  for (const f of [tracePid, `${tracePid}.tmp`, path.join(dir, TRACE_BPF)]) fs.rmSync(f, { force: true });
  fs.rmSync(`${tracePid}.d`, { recursive: true, force: true });
  let socket: string | undefined;
  try {
    socket = fs.readFileSync(path.join(dir, 'vkagent.socket'), 'utf8');
  } catch {
    return;
  }
  // Stop, then kill all (killAll): the keeper's own cleanup (socket, conf files) is redone
  // below, and its listeners only serve this container, which is gone or being deleted. If
  // one took over all the same (the keeper was dying already), the pidfile names the new
  // processes: read it again.
  const pids = (): number[] => agentTree(agentPids(dir), socket!, opts.root);
  for (let round = 0, p = pids(); p.length > 0 && round < 5; round++, p = pids()) await killAll(p);
  for (const f of [socket, path.join(dir, PIDFILE), path.join(dir, `${PIDFILE}.tmp`), path.join(dir, 'vkagent.socket'), path.join(dir, 'filter.json')]) fs.rmSync(f, { force: true });
  fs.rmSync(`${socket}.d`, { recursive: true, force: true });
}

export interface FilterRecord {
  bpf: string;
  flags: number;
  agent: string;
  metadata: string;
  /** The agent's own dir (its pidfile) when it is not the container's: a shim pod's shared agent. */
  agentDir?: string;
}

/** An agent serving many containers (a shim daemon's, for its pod): its socket and its dir (pidfile). */
export interface SharedAgent {
  socket: string;
  dir: string;
}

/** Kept in the agent dir by create so `exec` can give its processes the same filter. */
export function saveFilterRecord(stateDir: string, r: FilterRecord): void {
  fs.writeFileSync(path.join(path.resolve(stateDir), 'filter.json'), JSON.stringify(r));
}

/** The container's filter record while its agent runs (undefined otherwise). */
export function liveFilterRecord(stateDir: string): FilterRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(path.resolve(stateDir), 'filter.json'), 'utf8')) as FilterRecord;
    return agentPids(r.agentDir ?? stateDir).length > 0 && fs.existsSync(r.agent) && fs.existsSync(r.bpf) ? r : undefined;
  } catch {
    return undefined;
  }
}

// ---- LD_PRELOAD ----

/** Where the preload library appears in the container (a read-only bind of the host file). */
export const PRELOAD_DEST = '/.vkernel/libvkpreload.so';

export function preloadMount(lib: string = preloadLibPath()): PlanMount {
  return {
    source: lib,
    destination: PRELOAD_DEST,
    fstype: 'bind',
    flags: MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
    propagation: [],
    data: '',
    kind: 'file',
  };
}

/** The workload's env with our library first in LD_PRELOAD (an existing list is kept after it). */
export function withPreloadEnv(env: string[]): string[] {
  const i = env.findIndex((e) => e.startsWith('LD_PRELOAD='));
  if (i < 0) return [...env, `LD_PRELOAD=${PRELOAD_DEST}`];
  const old = env[i].slice('LD_PRELOAD='.length);
  if (old.split(/[:\s]+/).includes(PRELOAD_DEST)) return env;
  const out = [...env];
  out[i] = old.trim() ? `LD_PRELOAD=${PRELOAD_DEST}:${old}` : `LD_PRELOAD=${PRELOAD_DEST}`;
  return out;
}

// ---- setting a container up ----

export interface SyscallLayerOptions {
  id: string;
  /** The state root (shared filter files go to <root>/.vkernel). */
  root: string;
  /** The container's agent dir (agent or tracer files; stopAgent removes them). */
  dir: string;
  policy: ViewPolicy;
  /** The view's vkfs.conf (cgroup dirs, rule, start time) for the agent / tracer. */
  viewConf: string;
  /** The container's own compiled seccomp filter, if any. */
  seccomp?: { path: string; flags: number; listener?: unknown };
  log: { warn(msg: string): void; debug(msg: string): void };
  probe?: SyscallProbe;
  /**
   * notify: the socket of an agent the caller runs for many containers (a shim daemon's,
   * one per pod), started on first use; without it each container gets its own agent.
   */
  sharedAgent?: () => Promise<SharedAgent>;
}

export interface SyscallLayer {
  mode: LayerMode | 'off';
  /** ptrace: the filter vkinit loads instead of the container's own (flags unchanged, 0 without one). */
  seccompBpf?: string;
  /** ptrace: call once the init is ready (held at the exec FIFO, before start). */
  attach?: (pid: number) => Promise<void>;
}

/**
 * Picks the mechanism (auto: notify → ptrace → preload → off), logs which and why (a
 * warning when auto degrades or a forced mode is unavailable) and sets it up: plan
 * records for notify and preload; for ptrace the filter to load and the tracer to attach.
 * A mechanism that fails to start hands over to the next one (auto only).
 */
export async function setupSyscallLayer(plan: InitPlan, o: SyscallLayerOptions): Promise<SyscallLayer> {
  let ownProg: Buffer | undefined;
  if (o.seccomp) {
    try {
      ownProg = fs.readFileSync(o.seccomp.path);
    } catch {
      ownProg = undefined;
    }
  }
  const merged = ownProg ? mergeTraceFilter(ownProg) : undefined;
  const checks = checkModes(o.probe ?? probeSyscallHost(), { listener: !!o.seccomp?.listener, traceable: !ownProg || !!merged });
  const sel = selectSyscallMode(o.policy, checks);
  const metadata = agentMetadata({ id: o.id, policy: o.policy, viewConf: o.viewConf });
  let why = sel.reason;
  for (const mode of sel.modes) {
    const note = `vkernel syscalls: ${mode}${why ? ` (${why})` : ''}`;
    if (mode !== 'notify' && o.policy.mode === 'auto') o.log.warn(`${note}${mode === 'preload' ? ': dynamic glibc binaries only' : ''}`);
    else o.log.debug(note);
    try {
      if (mode === 'notify') {
        const shared = o.sharedAgent ? await o.sharedAgent() : undefined;
        const socket = shared ? shared.socket : (await startAgent(o.dir)).socket;
        fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
        plan.vkernelFilter = { bpf: ensureFilterFile(o.root), flags: FILTER_FLAGS, agent: socket, metadata };
        saveFilterRecord(o.dir, shared ? { ...plan.vkernelFilter, agentDir: shared.dir } : plan.vkernelFilter);
        return { mode };
      }
      if (mode === 'ptrace') {
        let bpf: string;
        if (merged) {
          fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
          bpf = path.join(o.dir, TRACE_BPF);
          fs.writeFileSync(bpf, merged, { mode: 0o644 });
        } else {
          bpf = ensureFilterFile(o.root, 'trace');
        }
        const dir = o.dir;
        return {
          mode,
          seccompBpf: bpf,
          // The filter is in place from here on: a traced call without a tracer would fail
          // (ENOSYS), so a tracer that cannot attach fails the create.
          attach: async (pid) => {
            await startTracer(dir, pid, metadata);
          },
        };
      }
      plan.mounts.push(preloadMount());
      plan.env = withPreloadEnv(plan.env).filter((e) => !e.startsWith('VKPRELOAD_SYSCALLS='));
      // io.vkernel.syscalls, fixed at create for a preloaded process (no agent to re-read it)
      if (syscallsValue(o.policy.syscalls) !== 'all') plan.env.push(`VKPRELOAD_SYSCALLS=${syscallsValue(o.policy.syscalls)}`);
      return { mode };
    } catch (err) {
      await stopAgent(o.dir);
      why = `${mode} failed: ${(err as Error).message}`;
      if (o.policy.mode !== 'auto') break;
    }
  }
  const off = `vkernel syscalls: off (${why ?? 'no mechanism'})`;
  if (sel.degraded || o.policy.mode !== 'auto' || why !== sel.reason) o.log.warn(off);
  else o.log.debug(off);
  return { mode: 'off' };
}
