// A real, private containerd for integration tests (1.6 from bookworm, 1.7 from trixie),
// never the system's: its own root, state, sockets, config, log and containerd namespace
// under one temp dir. Every shim integration test builds on this.
//
//   const cd = await TestContainerd.start({ version: '1.7', env: { PATH: shimDir } });
//   const ref = await cd.importImage('build/fixtures/busybox-oci.tar');
//   const r = await cd.ctr(['run', '--rm', '--runtime', 'io.containerd.vkernel.v2', ref, 't1', '/bin/busybox', 'true']);
//   await cd.restart();                     // "survives a containerd restart" tests
//   expect(await cd.stop()).toEqual([]);    // what had leaked when containerd stopped
//   expect(await cd.leftovers()).toEqual([]);
//
// Finding shims. containerd resolves runtime `io.containerd.<name>.v2` to the binary
// `containerd-shim-<name>-v2`, searched in containerd's cwd (here: the instance's temp dir,
// which holds none), then containerd's PATH, then the directory of the containerd
// binary. The PATH given to containerd is:
//
//     opts.env.PATH  :  <dir of this version's containerd>  :  the test process's PATH
//
// so `env: { PATH: '/dir/with/containerd-shim-vkernel-v2' }` adds (prepends) a directory,
// and the runc shim matching the containerd version (1.6: /usr/bin, 1.7: the private
// copy's usr/bin) always wins over the other version's. Other `env` entries are passed to
// containerd (and so to the shims it starts) as given.
//
// Under CI=true nothing skips: a missing containerd or ctr is an Error with the fix in the
// message. Elsewhere containerd 1.7 must have been installed once with
// `sudo scripts/install-containerd17.sh`.
//
// Shared host state: shims put their sockets in /run/containerd/s (hash of address,
// namespace and id, so instances do not collide), the runc shim keeps runc state in
// /run/containerd/runc/<namespace> and ctr's default cgroups are /<namespace>/<id>; the
// namespace is unique per instance (vkt-<random>), so all of these are per instance too,
// and leftovers()/stop() look at them.

import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export type ContainerdVersion = '1.6' | '1.7';

export interface RuntimeEntry {
  /** e.g. "io.containerd.vkernel.v2". */
  runtimeType: string;
  /** The runtime's `options` table (TOML; for non-runc runtimes e.g. { ConfigPath: "..." }). */
  options?: Record<string, unknown>;
  /** Absolute shim path (overrides the name lookup, CRI only). */
  runtimePath?: string;
  /** Pod annotations copied into the spec (CRI only). */
  podAnnotations?: string[];
  /** Container annotations copied into the spec (CRI only). */
  containerAnnotations?: string[];
}

export interface ContainerdOptions {
  version: ContainerdVersion;
  /**
   * Runtime entries written as `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.<key>]`.
   * 1.6/1.7 only read these in the CRI plugin: set `cri: true` for them to take effect (ctr
   * selects runtimes by name with `--runtime`, which needs no entry).
   */
  runtimes?: Record<string, RuntimeEntry>;
  /** Keep the CRI plugin (default: disabled). */
  cri?: boolean;
  /** TOML appended to the generated config.toml. */
  extraConfig?: string;
  /** containerd log level debug (default info). */
  debug?: boolean;
  /** Environment for containerd (and so its shims). PATH is prepended (see the file header). */
  env?: Record<string, string>;
  /** containerd namespace (default vkt-<random>, unique per instance; keep it unique). */
  namespace?: string;
  /** How long start() waits for `ctr version` to answer (default 30 s). */
  startTimeoutMs?: number;
  /** A containerd binary other than containerdBinary(version). */
  binary?: string;
}

export interface CtrOptions {
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string>;
}

export interface CtrResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Where scripts/install-containerd17.sh puts containerd 1.7 (env VKERNEL_CONTAINERD17_DIR overrides). */
export function containerd17Dir(): string {
  return process.env.VKERNEL_CONTAINERD17_DIR || '/opt/vkernel-test/containerd-1.7';
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function findRepoRoot(): string {
  let dir = __dirname;
  for (;;) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name === 'vkernel') return dir;
    } catch {
      // keep looking
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the vkernel repository above ${__dirname}`);
    dir = parent;
  }
}

/**
 * The containerd binary of a version: 1.6 → /usr/bin/containerd (bookworm's package);
 * 1.7 → the private copy from scripts/install-containerd17.sh. When 1.7 is missing it is
 * installed under CI=true, and otherwise this throws saying how to install it.
 */
export function containerdBinary(version: ContainerdVersion): string {
  if (version === '1.6') {
    const bin = '/usr/bin/containerd';
    if (!isExecutable(bin)) {
      throw new Error(`containerd 1.6 not found at ${bin}: install Debian's package (apt-get install containerd)`);
    }
    return bin;
  }
  if (version !== '1.7') throw new Error(`unsupported containerd version ${JSON.stringify(version)}`);
  const dest = containerd17Dir();
  const bin = path.join(dest, 'usr', 'bin', 'containerd');
  if (isExecutable(bin)) return bin;
  const script = path.join(findRepoRoot(), 'scripts', 'install-containerd17.sh');
  if (process.env.CI !== 'true') {
    throw new Error(
      `containerd 1.7 is not installed (${bin} missing). Install it once with:\n  sudo ${script} ${dest}\n` +
        '(it downloads trixie\'s containerd package and unpacks it there; nothing on the system is upgraded)',
    );
  }
  try {
    execFileSync(script, [dest], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
  } catch (e) {
    throw new Error(`CI=true: ${script} ${dest} failed: ${(e as Error).message}`);
  }
  if (!isExecutable(bin)) throw new Error(`CI=true: ${script} ran but ${bin} is still missing`);
  return bin;
}

const versionCache = new Map<string, string>();

/** `containerd --version` → the version field, e.g. "1.6.20~ds1". */
export function binaryVersion(binary: string): string {
  let v = versionCache.get(binary);
  if (v === undefined) {
    const out = execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    // "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3"
    const m = /^containerd\s+\S+\s+v?(\S+)/m.exec(out);
    if (!m) throw new Error(`cannot parse \`${binary} --version\`: ${out}`);
    v = m[1];
    versionCache.set(binary, v);
  }
  return v;
}

// ---- TOML (just what the config needs) -----------------------------------------------

function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

function tomlValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`TOML: non-finite number ${v}`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (v && typeof v === 'object') {
    return `{ ${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x)}`)
      .join(', ')} }`;
  }
  throw new Error(`TOML: unsupported value ${String(v)}`);
}

/** A table and its sub-tables (plain objects become sub-tables, the rest key = value). */
function tomlTable(header: string, obj: Record<string, unknown>): string[] {
  const lines = [`[${header}]`];
  const subs: [string, Record<string, unknown>][] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (v && typeof v === 'object' && !Array.isArray(v)) subs.push([k, v as Record<string, unknown>]);
    else lines.push(`  ${tomlKey(k)} = ${tomlValue(v)}`);
  }
  for (const [k, v] of subs) lines.push(...tomlTable(`${header}.${tomlKey(k)}`, v));
  return lines;
}

// ---- /proc helpers ------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or under any of `dirs` (this mount namespace), deepest first. */
function mountsUnder(dirs: string[]): string[] {
  const found = new Set<string>();
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const m = unescapeMountinfo(mp);
    if (dirs.some((d) => m === d || m.startsWith(d + '/'))) found.add(m);
  }
  return [...found].sort((a, b) => b.length - a.length);
}

interface ProcInfo {
  pid: number;
  argv: string[];
}

function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const raw = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (!raw) continue; // kernel thread or zombie
      out.push({ pid: Number(name), argv: raw.split('\0').filter((s, i, a) => i < a.length - 1 || s !== '') });
    } catch {
      // gone
    }
  }
  return out;
}

/** Live and not a zombie (a zombie counts as gone). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie counts as gone.
  try {
    return !/^\S+ \([^]*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Where ctr (and other containerd clients) create stdio fifos: /run/containerd/fifo/<random>/<id>-std*. */
const FIFO_ROOT = '/run/containerd/fifo';

/** The fifo dirs under FIFO_ROOT that these processes hold open. */
function fifoDirsOf(procs: ProcInfo[]): string[] {
  const dirs = new Set<string>();
  for (const p of procs) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${p.pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = fs.readlinkSync(`/proc/${p.pid}/fd/${fd}`);
        if (target.startsWith(FIFO_ROOT + '/')) {
          const dir = path.join(FIFO_ROOT, target.slice(FIFO_ROOT.length + 1).split('/')[0]);
          if (fs.existsSync(dir)) dirs.add(dir);
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return [...dirs].sort();
}

function socketsUnder(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isSocket()) found.push(p);
      else if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return found.sort();
}

/** cgroup v1/v2 hierarchies mounted under /sys/fs/cgroup (each mount point once). */
export function cgroupMounts(): string[] {
  const found = new Set<string>();
  try {
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [pre, post] = line.split(' - ');
      if (!pre || !post) continue;
      const fstype = post.split(' ')[0];
      const mp = unescapeMountinfo(pre.split(' ')[4] ?? '');
      if ((fstype === 'cgroup' || fstype === 'cgroup2') && mp.startsWith('/sys/fs/cgroup')) found.add(mp);
    }
  } catch {
    // none
  }
  return [...found].sort();
}

/** All dirs of a cgroup subtree, deepest first. */
export function cgroupTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
    out.push(d);
  };
  walk(dir);
  return out;
}

export function cgroupProcs(dir: string): number[] {
  try {
    return fs
      .readFileSync(path.join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<CtrResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 127, signal: null, stdout: '', stderr: String(e), durationMs: Date.now() - started });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0),
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        durationMs: Date.now() - started,
      });
    });
  });
}

// ---- the instance -------------------------------------------------------------------

// containerds still running when the test process exits (a test that never reached stop())
// are SIGKILLed then, so they do not outlive the run; their shims are left to the next
// leftovers check.
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

/** Where the runc shim (1.6 and 1.7) keeps runc's state for a namespace. */
const RUNC_SHIM_ROOT = '/run/containerd/runc';
/** Where containerd-shim-vkernel-v2 keeps the runtime state of a namespace's containers. */
const VKERNEL_SHIM_ROOT = '/run/vkernel/shim';

export class TestContainerd {
  /** Temp dir holding root/, state/, opt/, config.toml, containerd.log and the sockets. */
  readonly dir: string;
  readonly address: string;
  readonly ttrpcAddress: string;
  readonly namespace: string;
  readonly binary: string;
  /** The ctr of the same containerd version. */
  readonly ctrBinary: string;
  /** Exact version from `containerd --version`, e.g. "1.7.24~ds1". */
  readonly version: string;
  readonly majorMinor: ContainerdVersion;
  readonly logFile: string;
  readonly configFile: string;
  readonly stateDir: string;
  readonly rootDir: string;
  /** containerd's environment (PATH already composed). */
  readonly env: Record<string, string>;
  /** Timings of the last start/stop, for reports. */
  readonly timings: { startMs?: number; stopMs?: number } = {};

  private child: ChildProcess | undefined;
  private readonly trackers: (() => number[])[] = [];
  private exited: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly startTimeoutMs: number;

  private constructor(opts: ContainerdOptions, dir: string) {
    this.dir = dir;
    this.binary = opts.binary ?? containerdBinary(opts.version);
    this.majorMinor = opts.version;
    this.version = binaryVersion(this.binary);
    if (!this.version.startsWith(opts.version + '.')) {
      throw new Error(`${this.binary} is containerd ${this.version}, not ${opts.version}.x`);
    }
    const binDir = path.dirname(this.binary);
    const ctr = path.join(binDir, 'ctr');
    if (!isExecutable(ctr)) throw new Error(`ctr not found next to ${this.binary} (${ctr})`);
    this.ctrBinary = ctr;
    this.namespace = opts.namespace ?? `vkt-${crypto.randomBytes(5).toString('hex')}`;
    this.address = path.join(dir, 'containerd.sock');
    this.ttrpcAddress = this.address + '.ttrpc';
    this.rootDir = path.join(dir, 'root');
    this.stateDir = path.join(dir, 'state');
    this.logFile = path.join(dir, 'containerd.log');
    this.configFile = path.join(dir, 'config.toml');
    this.startTimeoutMs = opts.startTimeoutMs ?? 30_000;

    const { PATH: extraPath, ...rest } = opts.env ?? {};
    const basePath = process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
    this.env = {
      ...(process.env as Record<string, string>),
      ...rest,
      PATH: [extraPath, binDir, basePath].filter(Boolean).join(':'),
    };
  }

  /** Starts a private containerd and waits until `ctr version` answers. */
  static async start(opts: ContainerdOptions): Promise<TestContainerd> {
    const t0 = Date.now();
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `vkt-ctrd${opts.version.replace('.', '')}-`));
    let cd: TestContainerd;
    try {
      cd = new TestContainerd(opts, dir);
      for (const d of [cd.rootDir, cd.stateDir, path.join(dir, 'opt')]) await fs.promises.mkdir(d, { recursive: true, mode: 0o711 });
      await fs.promises.writeFile(cd.configFile, cd.configToml(opts));
    } catch (e) {
      await fs.promises.rm(dir, { recursive: true, force: true });
      throw e;
    }
    try {
      await cd.launch();
    } catch (e) {
      await cd.stop().catch(() => undefined);
      throw e;
    }
    cd.timings.startMs = Date.now() - t0;
    return cd;
  }

  private configToml(opts: ContainerdOptions): string {
    const disabled = opts.cri ? [] : ['io.containerd.grpc.v1.cri'];
    const lines = [
      '# generated by vkernel test/harness/containerd.ts',
      'version = 2',
      `root = ${tomlValue(this.rootDir)}`,
      `state = ${tomlValue(this.stateDir)}`,
      `disabled_plugins = ${tomlValue(disabled)}`,
      '',
      '[grpc]',
      `  address = ${tomlValue(this.address)}`,
      '',
      '[ttrpc]',
      `  address = ${tomlValue(this.ttrpcAddress)}`,
      '',
      '[debug]',
      '  address = ""',
      `  level = ${tomlValue(opts.debug ? 'debug' : 'info')}`,
      '',
      '[metrics]',
      '  address = ""',
      '',
      '[plugins]',
      '  [plugins."io.containerd.internal.v1.opt"]',
      `    path = ${tomlValue(path.join(this.dir, 'opt'))}`,
    ];
    if (opts.version === '1.7') {
      // NRI listens on a fixed host socket when enabled; keep it off (1.7's default) explicitly.
      lines.push('  [plugins."io.containerd.nri.v1.nri"]', '    disable = true');
    }
    const runtimes: Record<string, RuntimeEntry> = { ...(opts.runtimes ?? {}) };
    // A runtimes table replaces CRI's default one, whose default_runtime_name is "runc".
    if (opts.runtimes && !runtimes.runc) runtimes.runc = { runtimeType: 'io.containerd.runc.v2' };
    for (const [name, rt] of Object.entries(opts.runtimes ? runtimes : {})) {
      lines.push(
        '',
        ...tomlTable(`plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${tomlKey(name)}`, {
          runtime_type: rt.runtimeType,
          runtime_path: rt.runtimePath,
          pod_annotations: rt.podAnnotations,
          container_annotations: rt.containerAnnotations,
          options: rt.options,
        }),
      );
    }
    lines.push('', opts.extraConfig ?? '', '');
    return lines.join('\n');
  }

  private async launch(): Promise<void> {
    this.stopped = false;
    const logFd = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.binary, ['--config', this.configFile], {
        cwd: this.dir,
        env: this.env,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    this.child = child;
    track(child);
    let exitInfo: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = `code ${code} signal ${signal}`;
        resolve();
      });
      child.once('error', (e) => {
        exitInfo = String(e);
        resolve();
      });
    });
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (exitInfo !== undefined) {
        throw new Error(`containerd ${this.version} exited during startup (${exitInfo}):\n${this.logTail()}`);
      }
      if (fs.existsSync(this.address)) {
        const r = await this.ctr(['version'], { timeoutMs: 5000 });
        if (r.code === 0 && /Server:/.test(r.stdout)) return;
      }
      if (Date.now() > deadline) {
        throw new Error(`containerd ${this.version} did not answer on ${this.address} within ${this.startTimeoutMs} ms:\n${this.logTail()}`);
      }
      await sleep(50);
    }
  }

  /** The containerd process's pid while it runs. */
  get pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** The ChildProcess of the running containerd (undefined once stopped). */
  get process(): ChildProcess | undefined {
    return this.child;
  }

  /** The whole log so far. */
  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  logTail(lines = 60): string {
    return this.log().split('\n').slice(-lines).join('\n');
  }

  private ctrArgs(args: string[]): string[] {
    return ['-a', this.address, '-n', this.namespace, ...args];
  }

  /** `ctr -a <address> -n <namespace> ...args` with this version's ctr. Never rejects. */
  ctr(args: string[], opts: CtrOptions = {}): Promise<CtrResult> {
    const started = Date.now();
    return new Promise((resolve) => {
      const child = spawn(this.ctrBinary, this.ctrArgs(args), {
        cwd: this.dir,
        env: { ...process.env, ...(opts.env ?? {}) },
        stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout!.on('data', (c: Buffer) => out.push(c));
      child.stderr!.on('data', (c: Buffer) => err.push(c));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? 60_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ code: 127, signal: null, stdout: '', stderr: String(e), durationMs: Date.now() - started });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        let stderr = Buffer.concat(err).toString();
        if (timedOut) stderr += `\n[harness] ctr ${args.join(' ')} killed after ${opts.timeoutMs ?? 60_000} ms`;
        resolve({
          code: code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0),
          signal,
          stdout: Buffer.concat(out).toString(),
          stderr,
          durationMs: Date.now() - started,
        });
      });
      if (child.stdin) {
        child.stdin.on('error', () => undefined);
        child.stdin.end(opts.input);
      }
    });
  }

  /** Like ctr(), but rejects unless it exits 0 (with stdout, stderr and the log tail). */
  async ctrOk(args: string[], opts: CtrOptions = {}): Promise<CtrResult> {
    const r = await this.ctr(args, opts);
    if (r.code !== 0) {
      throw new Error(
        `ctr ${args.join(' ')} exited ${r.code} (containerd ${this.version})\nstdout: ${r.stdout}\nstderr: ${r.stderr}\n` +
          `containerd log tail:\n${this.logTail(30)}`,
      );
    }
    return r;
  }

  /** Spawns ctr (same flags as ctr()) and returns the child, stdio piped unless given. */
  spawnCtr(args: string[], opts: { env?: Record<string, string>; stdio?: 'pipe' | 'inherit' | 'ignore' } = {}): ChildProcess {
    return spawn(this.ctrBinary, this.ctrArgs(args), {
      cwd: this.dir,
      env: { ...process.env, ...(opts.env ?? {}) },
      stdio: opts.stdio ?? 'pipe',
    });
  }

  /** `ctr images import` of an OCI/docker archive; returns the (first) image ref it created. */
  async importImage(tarPath: string): Promise<string> {
    const before = new Set((await this.ctrOk(['images', 'ls', '-q'])).stdout.split('\n').filter(Boolean));
    const r = await this.ctrOk(['images', 'import', tarPath], { timeoutMs: 120_000 });
    const m = /unpacking (\S+) \(sha256:/.exec(r.stdout + r.stderr);
    if (m) return m[1];
    const after = (await this.ctrOk(['images', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    const added = after.filter((x) => !before.has(x));
    if (added.length > 0) return added[0];
    // Re-import of an existing image: name it from the archive's own output if possible.
    const named = /(\S+:\S+)/.exec(r.stdout);
    if (named) return named[1];
    throw new Error(`ctr images import ${tarPath} created no image:\n${r.stdout}\n${r.stderr}`);
  }

  private async waitExit(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
    ]);
    if (timer) clearTimeout(timer);
    return done;
  }

  /** SIGTERM, wait (SIGKILL after `graceMs`). Shims keep running, as with a real restart. */
  private async terminate(graceMs = 15_000): Promise<void> {
    const child = this.child;
    if (!child || this.pid === undefined) return;
    child.kill('SIGTERM');
    if (!(await this.waitExit(graceMs))) {
      child.kill('SIGKILL');
      await this.waitExit(10_000);
    }
  }

  /** Stops containerd (SIGTERM) and starts it again on the same dirs, sockets and config. */
  async restart(): Promise<void> {
    if (this.stopped && this.child === undefined) throw new Error('restart() after stop()');
    await this.terminate();
    await this.launch();
  }

  /** SIGKILL containerd (no cleanup at all) and wait for it to die; restart() brings it back. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || this.pid === undefined) return;
    child.kill('SIGKILL');
    await this.waitExit(10_000);
  }

  /**
   * Everything of this instance that outlives a clean test, as readable strings:
   *   mount: <path>        mounts under the instance dir (root/, state/, ...)
   *   process: <pid> <argv>  shims (or anything) whose argv names this address or namespace
   *   socket: <path>        sockets under the instance dir (containerd's own only once stopped)
   *   cgroup: <path> (...)  cgroups under /sys/fs/cgroup/<controller>/<namespace> that hold processes or child cgroups
   *   runc-state: <path>    containers left in /run/containerd/runc/<namespace>
   *   vkernel-state: <path> containers left in /run/vkernel/shim/<namespace> (our shim's runtime root;
   *                         dot entries, the root's own caches, do not count)
   * Processes also include the live pids of trackProcesses() callbacks (e.g. shim daemons whose
   * argv does not name the namespace: warm daemons adopted from a shim manager).
   */
  async leftovers(): Promise<string[]> {
    const out: string[] = [];
    for (const m of mountsUnder([this.dir])) out.push(`mount: ${m}`);
    const strays = this.strayProcesses();
    for (const p of strays) out.push(`process: ${p.pid} ${p.argv.join(' ')}`);
    for (const f of fifoDirsOf(strays)) out.push(`fifo: ${f}`);
    const running = this.pid !== undefined;
    for (const s of socketsUnder(this.dir)) {
      if (running && (s === this.address || s === this.ttrpcAddress)) continue;
      out.push(`socket: ${s}`);
    }
    for (const c of this.namespaceCgroups()) {
      const tree = cgroupTree(c);
      const procs = tree.reduce((n, d) => n + cgroupProcs(d).length, 0);
      if (tree.length > 1 || procs > 0) out.push(`cgroup: ${c} (${tree.length - 1} child cgroups, ${procs} processes)`);
    }
    const runcDir = path.join(RUNC_SHIM_ROOT, this.namespace);
    try {
      for (const e of fs.readdirSync(runcDir)) out.push(`runc-state: ${path.join(runcDir, e)}`);
    } catch {
      // none
    }
    const vkDir = path.join(VKERNEL_SHIM_ROOT, this.namespace);
    try {
      // Dot entries are the root's own caches (e.g. .vkernel/), not containers.
      for (const e of fs.readdirSync(vkDir)) if (!e.startsWith('.')) out.push(`vkernel-state: ${path.join(vkDir, e)}`);
    } catch {
      // none
    }
    for (const s of this.shimSockets()) out.push(`shim-socket: ${s}`);
    return out;
  }

  /**
   * Registers pids (asked for at every leftovers()/stop()) that belong to this instance but
   * that the argv check cannot see, such as shim daemons started before they knew their
   * namespace. Live ones are reported as `process:` leftovers and killed by stop().
   */
  trackProcesses(fn: () => number[]): void {
    this.trackers.push(fn);
  }

  /** The v2 task bundles (state/io.containerd.runtime.v2.task/<ns>/<id>) that exist. */
  private bundles(): string[] {
    const dir = path.join(this.stateDir, 'io.containerd.runtime.v2.task', this.namespace);
    try {
      return fs.readdirSync(dir).map((id) => path.join(dir, id));
    } catch {
      return [];
    }
  }

  /**
   * Shim sockets (in /run/containerd/s) of tasks whose bundle still exists, from the bundle's
   * `address` file, plus the socket a ttrpc shim derives for each such id,
   * sha256(<containerd address>/<namespace>/<id>), in case `address` was never written;
   * with our shim's `<socket>.protocol` file next to each.
   */
  private shimSockets(): string[] {
    const found = new Set<string>();
    for (const b of this.bundles()) {
      try {
        const addr = fs.readFileSync(path.join(b, 'address'), 'utf8').trim();
        const m = /^(?:unix:\/\/)?(\/[^\s"]+)/.exec(addr) ?? /"address"\s*:\s*"(?:unix:\/\/)?([^"]+)"/.exec(addr);
        if (m) found.add(m[1]);
      } catch {
        // no address file
      }
      found.add(TestContainerd.shimSocketPath(this.address, this.namespace, path.basename(b)));
    }
    // containerd-shim-vkernel-v2 keeps `<socket>.protocol` (the negotiated protocol) next to it.
    return [...found].flatMap((s) => [s, `${s}.protocol`]).filter((s) => fs.existsSync(s)).sort();
  }

  /** Where the runc shim (1.6/1.7) puts the socket of task group `id`: /run/containerd/s/<sha256(address/ns/id)>. */
  static shimSocketPath(address: string, namespace: string, id: string): string {
    return path.join('/run/containerd/s', crypto.createHash('sha256').update(path.join(address, namespace, id)).digest('hex'));
  }

  /** Processes other than containerd and us whose argv has our address or namespace as a word. */
  private strayProcesses(): ProcInfo[] {
    const self = new Set([process.pid, this.pid]);
    const tracked = new Set<number>();
    for (const fn of this.trackers) {
      try {
        for (const pid of fn()) tracked.add(pid);
      } catch {
        // a broken tracker reports nothing
      }
    }
    return listProcesses().filter(
      (p) =>
        !self.has(p.pid) &&
        pidAlive(p.pid) &&
        (tracked.has(p.pid) ||
          p.argv.some((a) => a === this.address || a === this.ttrpcAddress || a === this.namespace || a === `unix://${this.address}`)),
    );
  }

  private namespaceCgroups(): string[] {
    return cgroupMounts()
      .map((m) => path.join(m, this.namespace))
      .filter((d) => fs.existsSync(d));
  }

  /**
   * Stops containerd (SIGTERM, wait), then cleans up whatever is left and returns what it
   * found (as leftovers() formats it; [] when the test left nothing). Cleanup: kills stray
   * shims, kills processes in this namespace's cgroups and removes those cgroups, `runc
   * delete -f`s containers left in /run/containerd/runc/<ns>, unmounts under the instance
   * dir, and removes the dir only if no mount remains (the remaining mounts are then in
   * leftovers()). Idempotent.
   */
  async stop(): Promise<string[]> {
    if (this.stopped && this.child === undefined) return [];
    this.stopped = true;
    const t0 = Date.now();
    const tasks: string[] = [];
    if (this.pid !== undefined) {
      // Tasks still there are the test's leak: report them and delete them the proper way
      // (through containerd and the shim), which also removes their mounts and fifos.
      const ls = await this.ctr(['tasks', 'ls'], { timeoutMs: 10_000 });
      for (const line of ls.stdout.split('\n').slice(1)) {
        const [id, pid, status] = line.trim().split(/\s+/);
        if (!id) continue;
        tasks.push(`task: ${id} pid ${pid} ${status}`);
        await this.ctr(['tasks', 'delete', '--force', id], { timeoutMs: 15_000 });
      }
    }
    await this.terminate();
    this.child = undefined;

    // Shims exit on their own shortly after their last task is deleted: give them a moment.
    let found = await this.leftovers();
    for (let i = 0; i < 20 && found.some((l) => l.startsWith('process: ')); i++) {
      await sleep(100);
      found = await this.leftovers();
    }
    // containerd's own sockets may remain after it exits; they are not a test's leak.
    found = [...tasks, ...found.filter((l) => l !== `socket: ${this.address}` && l !== `socket: ${this.ttrpcAddress}`)];
    if (found.length > 0) {
      process.stderr.write(`[TestContainerd ${this.version} ${this.namespace}] left after stop, cleaning up:\n  ${found.join('\n  ')}\n`);
    }
    await this.cleanup();
    this.timings.stopMs = Date.now() - t0;
    return found;
  }

  private async cleanup(): Promise<void> {
    const strays = this.strayProcesses();
    const fifos = fifoDirsOf(strays);
    const sockets = this.shimSockets();
    for (const p of strays) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    // Containers the runc shim left behind.
    const runcDir = path.join(RUNC_SHIM_ROOT, this.namespace);
    let ids: string[] = [];
    try {
      ids = fs.readdirSync(runcDir);
    } catch {
      // none
    }
    for (const id of ids) await run('runc', ['--root', runcDir, 'delete', '-f', id]);
    // Processes in our cgroups (a killed shim's container), then the cgroups themselves.
    for (let round = 0; round < 50; round++) {
      let busy = false;
      for (const c of this.namespaceCgroups()) {
        for (const d of cgroupTree(c)) {
          for (const pid of cgroupProcs(d)) {
            busy = true;
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // gone
            }
          }
          try {
            fs.rmdirSync(d);
          } catch {
            busy = true;
          }
        }
      }
      if (!busy) break;
      await sleep(50);
    }
    try {
      fs.rmdirSync(runcDir);
    } catch {
      // not empty (reported by leftovers()) or absent
    }
    // Our shim's state of containers whose daemon was killed above (their processes died
    // with the cgroups): nothing else will remove it.
    await fs.promises.rm(path.join(VKERNEL_SHIM_ROOT, this.namespace), { recursive: true, force: true }).catch(() => undefined);
    for (const f of fifos) await fs.promises.rm(f, { recursive: true, force: true }).catch(() => undefined);
    // Sockets of the shims killed above (a live shim removes its own on exit).
    for (const sock of sockets) await fs.promises.rm(sock, { force: true }).catch(() => undefined);
    for (const m of mountsUnder([this.dir])) {
      const r = await run('umount', ['--', m]);
      if (r.code !== 0) await run('umount', ['-l', '--', m]);
    }
    if (mountsUnder([this.dir]).length === 0) {
      await fs.promises.rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

// ---- compatibility with the earlier startContainerd() helper ---------------------------

/** @deprecated use TestContainerd (same object). */
export type PrivateContainerd = TestContainerd;

/** TestContainerd.start with version defaulting to 1.6. */
export function startContainerd(opts: Partial<ContainerdOptions> = {}): Promise<TestContainerd> {
  return TestContainerd.start({ ...opts, version: opts.version ?? '1.6' });
}
