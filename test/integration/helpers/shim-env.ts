// Shared setup for the tests (and bench) that drive containerd-shim-vkernel-v2 through a
// real containerd: a TestContainerd (1.6 or 1.7) whose PATH finds our shim first, with a
// PRIVATE shim manager (its own socket, pid file, control socket and log in a temp dir),
// and the busybox fixture image imported.
//
//   const env = await startShimEnv('1.7');
//   await env.cd.ctrOk(['run', '--rm', '--runtime', RUNTIME, env.image, 'c1', 'echo', 'hello']);
//   expect(await env.stop()).toEqual([]);   // containerd, the manager and every daemon gone
//
// What is private (so test files never share shim state with each other or the host):
//   - the manager socket: VKERNEL_SHIM_MANAGER=<tmp>/manager.sock in containerd's environment,
//     so the launcher containerd runs forwards there (or, with manager: 'off', always cold);
//     VKERNEL_SHIM_MANAGER_AUTOSTART=0, so the cold path never starts a manager of its own;
//   - the namespace (TestContainerd's vkt-<random>): group sockets in /run/containerd/s are
//     hashed from it, and the runtime state root is /run/vkernel/shim/<namespace>.
// stop() stops containerd (TestContainerd.stop: it deletes tasks left behind), then the
// manager (SIGTERM: its waiting warm daemons exit with it), then reports what is left:
// TestContainerd.leftovers() lines plus the daemons this env ever saw that still live.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot, OCI_TAR_NAME, defaultFixturesDir } from '../../fixtures/image';
import { pidAlive as alive, TestContainerd, type ContainerdOptions, type ContainerdVersion } from '../../harness/containerd';

export const RUNTIME = 'io.containerd.vkernel.v2';
export const RUNC_RUNTIME = 'io.containerd.runc.v2';

const REPO = repoRoot();
export const LAUNCHER = path.join(REPO, 'build', 'containerd-shim-vkernel-v2');
export const MANAGER_MAIN = path.join(REPO, 'dist', 'shim', 'manager', 'main.js');
export const DAEMON_MAIN = path.join(REPO, 'dist', 'shim', 'daemon', 'main.js');
export const IMAGE_TAR = path.join(defaultFixturesDir(), OCI_TAR_NAME);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ShimEnvOptions {
  /** 'warm' (default): a private manager with `warm` waiting daemons; 'off': the cold path every time. */
  manager?: 'warm' | 'off';
  /** Warm daemons the manager keeps (default 1). */
  warm?: number;
  /** containerd debug log level (the shim then logs debug lines too). */
  debug?: boolean;
  /** Extra environment for containerd (and so the launcher and cold path). */
  env?: Record<string, string>;
  /** Extra environment for the private manager (and so its daemons), e.g. VKERNEL_SHIM_REUSE. */
  managerEnv?: Record<string, string>;
  /** Passed through to TestContainerd.start. */
  containerd?: Partial<ContainerdOptions>;
  /** Import the fixture image (default true). */
  image?: boolean;
}

export interface ManagerProcess {
  proc: ChildProcess;
  socket: string;
  log: string;
}

export { pidAlive as alive } from '../../harness/containerd';

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function cmdline(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s, i, a) => i < a.length - 1 || s !== '');
  } catch {
    return [];
  }
}

/** Resident set size of a process in KiB (VmRSS), or undefined when it is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Proportional set size in KiB (smaps_rollup Pss): shared pages split among sharers. */
export function pssKiB(pid: number): number | undefined {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** fd → link target of a process (for diffing what leaked). */
export function fdTargets(pid: number): string[] {
  const out: string[] = [];
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      out.push(`${fd} -> ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Starts a private manager on `socket` (no idle timeout, no code watch: parallel rebuilds must not stop it). */
export async function startManager(socket: string, log: string, opts: { warm?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ManagerProcess> {
  const proc = spawn(
    process.execPath,
    ['--no-warnings', MANAGER_MAIN, '--socket', socket, '--idle-timeout', '0', '--no-watch', '--log', log, '--warm', String(opts.warm ?? 1)],
    { detached: true, stdio: 'ignore', env: { ...process.env, ...(opts.env ?? {}) } },
  );
  const m = { proc, socket, log };
  const readLog = (): string => {
    try {
      return fs.readFileSync(log, 'utf8');
    } catch {
      return '';
    }
  };
  try {
    await waitFor('the shim manager to listen', () => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`shim manager exited (${proc.exitCode ?? proc.signalCode}):\n${readLog()}`);
      return readLog().includes('listening on');
    }, 20_000);
    if ((opts.warm ?? 1) > 0) await waitFor('a warm shim daemon', () => /warm daemon \d+ ready/.test(readLog()), 30_000);
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return m;
}

export async function stopManager(m: ManagerProcess, timeoutMs = 10_000): Promise<void> {
  const proc = m.proc;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
  clearTimeout(timer);
  if (!done) {
    proc.kill('SIGKILL');
    await exited;
  }
}

/** Where ctr (cio) creates a container's stdio FIFOs: <FIFO_ROOT>/<random>/<id>-std{in,out,err}. */
export const FIFO_ROOT = '/run/containerd/fifo';

function fifoDirNames(): string[] {
  try {
    return fs.readdirSync(FIFO_ROOT);
  } catch {
    return [];
  }
}

export class ShimEnv {
  /** Every shim daemon pid seen (manager log, or found by argv): checked at stop(). */
  readonly daemonPids = new Set<number>();
  /** Container ids this env ran (runArgs): whose client FIFO dirs stop() may remove. */
  readonly ids = new Set<string>();
  /** FIFO dirs that existed before this env (never touched). */
  readonly #fifoBaseline = new Set(fifoDirNames());
  #stopped = false;
  /** The protocol every `start` must answer (expectedProtocol, or what containerd's env forces). */
  protocol: 'grpc' | 'ttrpc' = 'ttrpc';

  private constructor(
    readonly cd: TestContainerd,
    /** The fixture image's ref ('' when not imported). */
    readonly image: string,
    /** Temp dir: shim symlink dir, manager socket and log. */
    readonly dir: string,
    readonly manager: ManagerProcess | undefined,
    readonly managerSocket: string,
  ) {}

  static async start(version: ContainerdVersion, opts: ShimEnvOptions = {}): Promise<ShimEnv> {
    if (!fs.existsSync(LAUNCHER)) throw new Error(`${LAUNCHER} missing: run \`make all\``);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-shimenv-'));
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(LAUNCHER, path.join(bin, 'containerd-shim-vkernel-v2'));
    const managerSocket = path.join(dir, 'manager.sock');
    let manager: ManagerProcess | undefined;
    let cd: TestContainerd | undefined;
    try {
      if ((opts.manager ?? 'warm') === 'warm') {
        manager = await startManager(managerSocket, path.join(dir, 'manager.log'), { warm: opts.warm, env: opts.managerEnv });
      }
      cd = await TestContainerd.start({
        ...(opts.containerd ?? {}),
        version,
        debug: opts.debug,
        env: {
          ...testShimProtocolEnv(),
          ...(opts.containerd?.env ?? {}),
          ...(opts.env ?? {}),
          PATH: bin,
          // The launcher runs the cold path of this tree (not the one baked in at build time).
          VKERNEL_PKGROOT: REPO,
          VKERNEL_SHIM_MANAGER: manager ? managerSocket : 'off',
          VKERNEL_SHIM_MANAGER_AUTOSTART: '0',
        },
      });
      const image = opts.image === false ? '' : await cd.importImage(IMAGE_TAR);
      const env = new ShimEnv(cd, image, dir, manager, managerSocket);
      const forced = { ...testShimProtocolEnv(), ...(opts.containerd?.env ?? {}), ...(opts.env ?? {}) }.VKERNEL_SHIM_PROTOCOL;
      env.protocol = forced === 'grpc' || forced === 'ttrpc' ? forced : expectedProtocol(version);
      cd.trackProcesses(() => env.daemons());
      return env;
    } catch (e) {
      if (cd) await cd.stop().catch(() => undefined);
      if (manager) await stopManager(manager).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  get namespace(): string {
    return this.cd.namespace;
  }

  /** /run/vkernel/shim/<namespace>: the runtime state root of this namespace's containers. */
  get stateRoot(): string {
    return path.join('/run/vkernel/shim', this.cd.namespace);
  }

  managerLog(): string {
    if (!this.manager) return '';
    try {
      return fs.readFileSync(this.manager.log, 'utf8');
    } catch {
      return '';
    }
  }

  get managerPid(): number | undefined {
    const p = this.manager?.proc;
    return p && p.exitCode === null && p.signalCode === null ? p.pid : undefined;
  }

  /**
   * Live shim daemons of this env: the ones the manager adopted or spawned (its log), and
   * direct daemons whose argv names our namespace. Also remembered for stop().
   */
  daemons(): number[] {
    const log = this.managerLog();
    const pooled = this.pooledDaemons(log);
    for (const m of log.matchAll(/warm daemon (\d+) adopted/g)) this.daemonPids.add(Number(m[1]));
    for (const m of log.matchAll(/started daemon (\d+) for group/g)) this.daemonPids.add(Number(m[1]));
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const argv = cmdline(Number(name));
      if (argv.includes(DAEMON_MAIN) && argv.includes(this.cd.namespace)) this.daemonPids.add(Number(name));
    }
    // A daemon whose group ended and that went back to the pool serves nothing any more.
    return [...this.daemonPids].filter((p) => alive(p) && !pooled.has(p)).sort((a, b) => a - b);
  }

  /** Pids the manager's log last shows waiting in the pool (new, or back from a group). */
  private pooledDaemons(log: string): Set<number> {
    const pooled = new Set<number>();
    for (const m of log.matchAll(/warm daemon (\d+) (ready|adopted)/g)) {
      if (m[2] === 'ready') pooled.add(Number(m[1]));
      else pooled.delete(Number(m[1]));
    }
    return pooled;
  }

  /** The daemon serving group socket `address` (unix://…): the process holding that listening socket. */
  daemonOf(address: string): number | undefined {
    const sock = address.replace(/^unix:\/\//, '');
    const inodes = socketInodes(sock);
    if (inodes.size === 0) return undefined;
    for (const pid of this.daemons()) {
      for (const t of fdTargets(pid)) {
        const m = /socket:\[(\d+)\]/.exec(t);
        if (m && inodes.has(m[1])) return pid;
      }
    }
    return undefined;
  }

  /**
   * The shim process (ours or containerd-shim-runc-v2) serving container `id`: the holder
   * of the listening socket its bundle's `address` file names.
   */
  shimPidOf(id: string): number | undefined {
    const inodes = socketInodes(parseAddress(this.rawAddress(id)));
    if (inodes.size === 0) return undefined;
    const candidates = new Set([...this.daemons(), ...processesWith(this.cd.namespace)]);
    for (const pid of candidates) {
      for (const t of fdTargets(pid)) {
        const m = /socket:\[(\d+)\]/.exec(t);
        if (m && inodes.has(m[1])) return pid;
      }
    }
    return undefined;
  }

  /** Warm daemons waiting in the manager's pool (checked in, not adopted). */
  warmDaemons(): number[] {
    return [...this.pooledDaemons(this.managerLog())].filter(alive);
  }

  /** The bundle dir containerd made for container `id`. */
  bundle(id: string): string {
    return path.join(this.cd.stateDir, 'io.containerd.runtime.v2.task', this.cd.namespace, id);
  }

  /** The `address` file our `start` wrote into the bundle of `id`, as written (plain or JSON). */
  rawAddress(id: string): string {
    return fs.readFileSync(path.join(this.bundle(id), 'address'), 'utf8').trim();
  }

  /** The group socket of `id` as `unix://<path>`, from its `address` file (plain, or 1.7's JSON form). */
  address(id: string): string {
    return `unix://${parseAddress(this.rawAddress(id))}`;
  }

  /** ctr run args for our runtime: `run [extra] --runtime vkernel IMAGE id ...cmd`. */
  runArgs(id: string, cmd: string[], extra: string[] = [], runtime = RUNTIME): string[] {
    this.ids.add(id);
    return ['run', ...extra, '--runtime', runtime, this.image, id, ...cmd];
  }

  /**
   * The stdio FIFO dirs ctr made for this env's containers that nobody holds open any more.
   * `ctr run -d` leaves them by design (the task owns them; `ctr task delete` does not load
   * the IO, so it never removes them), for any runtime: they are the client's, not the shim's.
   */
  clientFifoDirs(): string[] {
    const held = new Set<string>();
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      for (const t of fdTargets(Number(name))) {
        const target = t.replace(/^\d+ -> /, '');
        if (target.startsWith(FIFO_ROOT + '/')) held.add(target.slice(FIFO_ROOT.length + 1).split('/')[0]);
      }
    }
    const out: string[] = [];
    for (const d of fifoDirNames()) {
      if (this.#fifoBaseline.has(d) || held.has(d)) continue;
      let files: string[] = [];
      try {
        files = fs.readdirSync(path.join(FIFO_ROOT, d));
      } catch {
        continue;
      }
      if (files.length > 0 && files.every((f) => this.ids.has(f.replace(/-std(in|out|err)$/, '')))) out.push(path.join(FIFO_ROOT, d));
    }
    return out;
  }

  /** Everything left: TestContainerd.leftovers() (which includes our daemons and state root). */
  leftovers(): Promise<string[]> {
    return this.cd.leftovers();
  }

  /**
   * `start` logs the protocol it answered into the bundle's log (containerd's log): every
   * container this env ran must have used the protocol the suite runs with (expectedProtocol).
   * Reported like leftovers, as `protocol: <log line>`; no such line at all is reported too.
   */
  protocolMismatches(): string[] {
    const log = this.cd.log();
    const lines = log.split('\n').filter((l) => /shim protocol (grpc|ttrpc),/.test(l));
    // A container was created (the daemon logs "created, init pid N"), so a start answered.
    if (lines.length === 0 && /created, init pid \d+/.test(log)) return ['protocol: no "shim protocol" line in containerd\'s log'];
    const want = this.protocol;
    return lines.filter((l) => !l.includes(`shim protocol ${want},`)).map((l) => `protocol: want ${want}: ${l}`);
  }

  /**
   * Stops containerd, the manager and (if still alive) our daemons; returns what was left
   * (TestContainerd.stop's report, plus the manager if it would not stop). Idempotent.
   */
  async stop(): Promise<string[]> {
    if (this.#stopped) return [];
    this.#stopped = true;
    this.daemons(); // remember the adopted ones before the manager and its log go
    const found = this.protocolMismatches();
    found.push(...(await this.cd.stop()));
    if (this.manager) {
      await stopManager(this.manager);
      for (const f of [this.managerSocket, this.managerSocket.replace(/\.sock$/, '.ctl')]) {
        if (fs.existsSync(f)) found.push(`manager-socket: ${f}`);
      }
    }
    // Warm daemons still waiting exit once the manager's control socket closes.
    const deadline = Date.now() + 5000;
    let left = [...this.daemonPids].filter(alive);
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(50);
      left = [...this.daemonPids].filter(alive);
    }
    for (const pid of left) {
      found.push(`daemon: ${pid} ${cmdline(pid).join(' ')}`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const d of this.clientFifoDirs()) fs.rmSync(d, { recursive: true, force: true });
    // The namespace's runtime root: only the root's own caches (dot entries) may remain;
    // a late delete action can re-create it after TestContainerd's cleanup, so look last.
    try {
      const entries = fs.readdirSync(this.stateRoot).filter((e) => !e.startsWith('.'));
      for (const e of entries) found.push(`vkernel-state: ${path.join(this.stateRoot, e)}`);
    } catch {
      // none
    }
    fs.rmSync(this.stateRoot, { recursive: true, force: true });
    fs.rmSync(this.dir, { recursive: true, force: true });
    return found;
  }
}

/** The socket path in an `address` file: `unix:///p`, `/p`, or `{"version":2,"protocol":…,"address":"…"}`. */
export function parseAddress(text: string): string {
  let addr = text.trim();
  if (addr.startsWith('{')) addr = String((JSON.parse(addr) as { address?: unknown }).address ?? '');
  return addr.replace(/^unix:\/\//, '');
}

/** Inodes of the sockets bound to `sockPath` (/proc/net/unix). */
export function socketInodes(sockPath: string): Set<string> {
  const out = new Set<string>();
  try {
    for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[7] === sockPath) out.add(f[6]);
    }
  } catch {
    // none
  }
  return out;
}

/**
 * VKERNEL_TEST_SHIM_PROTOCOL selects the shim protocol a suite runs with (docs/protocol.md):
 * `ttrpc` forces ttrpc (VKERNEL_SHIM_PROTOCOL=ttrpc in containerd's environment); `grpc` or
 * unset leaves it negotiated, which is gRPC on containerd 1.7 and ttrpc on 1.6.
 */
export function testShimProtocolEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return env.VKERNEL_TEST_SHIM_PROTOCOL === 'ttrpc' ? { VKERNEL_SHIM_PROTOCOL: 'ttrpc' } : {};
}

/** The protocol `start` negotiates with this containerd when nothing forces one (docs/protocol.md). */
export function expectedProtocol(version: ContainerdVersion): 'grpc' | 'ttrpc' {
  return version === '1.7' ? 'grpc' : 'ttrpc';
}

/**
 * The containerd versions a shim suite runs against: both, except in the forced-ttrpc pass,
 * which exists to run 1.7's suite a second time (1.6 speaks ttrpc in every pass).
 */
export function shimSuiteVersions(env: NodeJS.ProcessEnv = process.env): ContainerdVersion[] {
  return env.VKERNEL_TEST_SHIM_PROTOCOL === 'ttrpc' ? ['1.7'] : ['1.6', '1.7'];
}

export function startShimEnv(version: ContainerdVersion, opts: ShimEnvOptions = {}): Promise<ShimEnv> {
  return ShimEnv.start(version, opts);
}

// ---- ctr helpers ------------------------------------------------------------------------

/** `ctr task ls` as id → { pid, status }. */
export async function tasks(cd: TestContainerd): Promise<Map<string, { pid: number; status: string }>> {
  const r = await cd.ctrOk(['task', 'ls']);
  const out = new Map<string, { pid: number; status: string }>();
  for (const line of r.stdout.split('\n').slice(1)) {
    const [id, pid, status] = line.trim().split(/\s+/);
    if (id) out.set(id, { pid: Number(pid), status });
  }
  return out;
}

export async function taskStatus(cd: TestContainerd, id: string): Promise<string | undefined> {
  return (await tasks(cd)).get(id)?.status;
}

export async function waitStatus(cd: TestContainerd, id: string, status: string | undefined, timeoutMs = 15_000): Promise<void> {
  let last: string | undefined;
  await waitFor(
    `task ${id} to be ${status ?? 'gone'}`,
    async () => (last = await taskStatus(cd, id)) === status,
    timeoutMs,
    50,
  ).catch((e: Error) => {
    throw new Error(`${e.message} (last: ${last ?? 'gone'})`);
  });
}

/** SIGKILL the task (if any), wait for it to stop, delete task and container. Ignores what is already gone. */
export async function removeContainer(cd: TestContainerd, id: string): Promise<void> {
  const st = await taskStatus(cd, id);
  if (st === 'PAUSED') await cd.ctr(['task', 'resume', id]);
  if (st && st !== 'STOPPED' && st !== 'CREATED') {
    await cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
    await waitStatus(cd, id, 'STOPPED').catch(() => undefined);
  }
  if (st) await cd.ctr(['task', 'delete', id], { timeoutMs: 20_000 });
  await cd.ctr(['container', 'delete', id], { timeoutMs: 20_000 });
}

/** The exit status `ctr task delete` reports ("task X exit with non-zero exit code N" warning; 0 when silent). */
export function deletedExitCode(r: { stdout: string; stderr: string; code: number }): number {
  if (r.code !== 0) throw new Error(`ctr task delete failed (${r.code}): ${r.stderr}`);
  const m = /exit with non-zero exit code (\d+)/.exec(r.stderr + r.stdout);
  return m ? Number(m[1]) : 0;
}

export interface CtrEvent {
  topic: string;
  namespace: string;
  event: Record<string, unknown>;
  line: string;
}

/** `ctr events` running in the background, parsed. */
export class EventRecorder {
  readonly #proc: ChildProcess;
  #buf = '';
  readonly events: CtrEvent[] = [];

  constructor(cd: TestContainerd) {
    this.#proc = cd.spawnCtr(['events'], { stdio: 'pipe' });
    this.#proc.stdout!.setEncoding('utf8');
    this.#proc.stdout!.on('data', (chunk: string) => {
      this.#buf += chunk;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        // "2026-11-22 01:22:55.084 +0000 UTC <namespace> <topic> <json>"
        const m = /^\S+ \S+ \S+ \S+ (\S+) (\/\S+)(?: (.*))?$/.exec(line);
        if (!m) continue;
        let event: Record<string, unknown> = {};
        try {
          event = m[3] ? (JSON.parse(m[3]) as Record<string, unknown>) : {};
        } catch {
          // keep the line only
        }
        this.events.push({ namespace: m[1], topic: m[2], event, line });
      }
    });
    this.#proc.stderr!.resume();
  }

  /** Waits until `ctr events` is subscribed (it prints nothing until then): a probe event must arrive. */
  static async start(cd: TestContainerd): Promise<EventRecorder> {
    const rec = new EventRecorder(cd);
    // Namespace label updates publish /namespaces/update: a harmless event to see the subscription work.
    const label = `vkt-probe-${Date.now()}`;
    await waitFor(
      '`ctr events` to be subscribed',
      async () => {
        await cd.ctr(['namespaces', 'label', cd.namespace, `vkernel.test/probe=${label}`]);
        return rec.events.some((e) => e.topic === '/namespaces/update' && JSON.stringify(e.event).includes(label));
      },
      15_000,
      200,
    );
    rec.events.splice(0);
    return rec;
  }

  /** /tasks/* events of container `id`, in arrival order. */
  taskEvents(id: string): CtrEvent[] {
    return this.events.filter((e) => e.topic.startsWith('/tasks/') && e.event.container_id === id);
  }

  topics(id: string): string[] {
    return this.taskEvents(id).map((e) => e.topic);
  }

  async waitFor(what: string, cond: (r: EventRecorder) => boolean, timeoutMs = 15_000): Promise<void> {
    await waitFor(what, () => cond(this), timeoutMs, 50).catch((e: Error) => {
      throw new Error(`${e.message}; events so far:\n${this.events.map((x) => x.line).join('\n')}`);
    });
  }

  stop(): void {
    this.#proc.kill('SIGKILL');
  }
}

/** POSIX shell quoting. */
export function shq(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export interface PtyResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Everything the terminal showed (CRLF line ends, echo, escape sequences). */
  output: string;
}

/**
 * Runs argv on a fresh pseudo-terminal (util-linux `script`) of `cols`×`rows`, typing
 * `input` once `ready` shows up in the output (or at once). Resolves when the command exits.
 */
export function runOnPty(
  argv: string[],
  opts: { cols?: number; rows?: number; input?: string; ready?: RegExp; timeoutMs?: number } = {},
): Promise<PtyResult> {
  const cmd = `stty cols ${opts.cols ?? 100} rows ${opts.rows ?? 30}; exec ${argv.map(shq).join(' ')}`;
  return new Promise((resolve) => {
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let typed = opts.input === undefined;
    const type = (): void => {
      if (typed) return;
      typed = true;
      child.stdin!.write(opts.input!);
    };
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      output += d;
      if (!typed && (!opts.ready || opts.ready.test(output))) type();
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (output += d));
    child.stdin!.on('error', () => undefined);
    if (!opts.ready) setTimeout(type, 0);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

/** Lines of /proc/self/mountinfo whose mount point is at or under one of `dirs`. */
export function mountsUnder(dirs: string[]): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp && dirs.some((d) => mp === d || mp.startsWith(d + '/'))) out.push(mp);
  }
  return out;
}

/** Mount points of cgroup hierarchies (v1 controllers and the unified tree). */
export function cgroupMountPoints(): string[] {
  const out = new Set<string>();
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const fstype = post.split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') out.add(pre.split(' ')[4]);
  }
  return [...out].sort();
}

/** The cgroup dirs (absolute) a process is in, one per hierarchy mounted here. */
export function cgroupDirsOf(pid: number): string[] {
  const mounts = cgroupMountPoints();
  const out: string[] = [];
  let text = '';
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, controllers, cg] = m;
    const names = controllers === '' ? ['unified'] : controllers.split(',').map((c) => c.replace(/^name=/, ''));
    const mount = mounts.find((mp) => names.some((n) => path.basename(mp).split(',').includes(n)));
    if (mount) out.push(path.join(mount, cg));
  }
  return out;
}

/** Processes whose command line contains `needle` (live, not us). */
export function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    if (cmdline(Number(name)).join(' ').includes(needle) && alive(Number(name))) out.push(Number(name));
  }
  return out;
}

// ---- memory ------------------------------------------------------------------------------

export interface MemorySample {
  pid: number;
  /** Median of a few samples (GC makes single readings noisy). */
  rssKiB: number;
  pssKiB: number;
}

/** Median RSS/PSS of `pid` over `samples` readings `everyMs` apart. */
export async function sampleMemory(pid: number, samples = 5, everyMs = 200): Promise<MemorySample> {
  const rss: number[] = [];
  const pss: number[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await sleep(everyMs);
    const r = rssKiB(pid);
    const p = pssKiB(pid);
    if (r === undefined || p === undefined) throw new Error(`process ${pid} is gone`);
    rss.push(r);
    pss.push(p);
  }
  const median = (a: number[]): number => a.sort((x, y) => x - y)[a.length >> 1];
  return { pid, rssKiB: median(rss), pssKiB: median(pss) };
}

export interface GroupMemoryRow extends MemorySample {
  containers: number;
  /** RSS of the runtime's per-container helper processes (argv naming the container's state dir), summed. */
  helpersRssKiB: number;
}

/**
 * Starts `count` containers (`sleep 600`) of `runtime` in one group (annotation
 * io.containerd.runc.v2.group, which both shims honour) and samples the serving shim after
 * each. The containers are removed afterwards. Throws if they are not all served by one shim.
 */
export async function groupMemory(env: ShimEnv, runtime: string, group: string, count: number, settleMs = 1000): Promise<GroupMemoryRow[]> {
  const rows: GroupMemoryRow[] = [];
  const ids: string[] = [];
  try {
    let shim: number | undefined;
    for (let n = 1; n <= count; n++) {
      const id = `${group}-${n}`;
      ids.push(id);
      await env.cd.ctrOk(env.runArgs(id, ['sleep', '600'], ['-d', '--annotation', `io.containerd.runc.v2.group=${group}`], runtime));
      const pid = env.shimPidOf(id);
      if (pid === undefined) throw new Error(`no shim serves ${id}`);
      if (shim !== undefined && pid !== shim) throw new Error(`${id} is served by shim ${pid}, ${ids[0]} by ${shim}: not grouped`);
      shim = pid;
      await sleep(settleMs);
      const m = await sampleMemory(pid);
      const helpers = runtime === RUNTIME ? ids.flatMap((i) => processesWith(`${env.stateRoot}/${i}/`)) : [];
      rows.push({ ...m, containers: n, helpersRssKiB: helpers.reduce((s, p) => s + (rssKiB(p) ?? 0), 0) });
    }
  } finally {
    for (const id of ids) await removeContainer(env.cd, id);
  }
  return rows;
}
