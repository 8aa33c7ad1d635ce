// The seam between `vkernel check`'s row logic (pure, unit-tested with a fake) and the host.
// Everything the checks learn from the machine goes through CheckProbe; realProbe() asks the
// kernel and reuses what the runtime already has: `vkseccomp --probe` (runtime/seccomp),
// `vkfs probe`, the shim's protocol decision (shim/bootstrap/negotiate.ts).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveVkinit } from '../init/channel';
import { PACKAGE_ROOT, buildPath, isInstalledCopy } from '../paths';
import { probeSeccomp, seccompCompilerPath, type SeccompProbe } from '../seccomp/compile';
import { vkagentPath } from '../vkernel/syscalls';
import { vkfsPath } from '../vkernel/view';
import { describeProtocolChoice, PROTOCOL_ENV, type ProtocolDescription } from '../../shim/bootstrap/negotiate';

export interface RunResult {
  /** Exit code; null when killed or when it could not be started (then `error`). */
  code: number | null;
  stdout: string;
  stderr: string;
  error?: string;
}

/** The containerd process listening on the socket that was checked. */
export interface ContainerdProcess {
  pid: number;
  /** Its executable (containerd looks for shims next to it, after PATH). */
  exe: string;
  /** Its PATH, where it looks for containerd-shim-<name>-v2. */
  path: string;
  /** --config / -c, resolved against its cwd; undefined: containerd's default. */
  configFile?: string;
  /** VKERNEL_SHIM_PROTOCOL in its environment (the shims it starts inherit it). */
  shimProtocol?: string;
}

/** What forces the protocol besides containerd's version: containerd's environment and the runtime entry's ConfigPath. */
export interface ProtocolContext {
  env?: NodeJS.ProcessEnv;
  configPath?: string;
}

/** Helper binaries by role, as the runtime resolves them (env overrides included). */
export interface HelperPaths {
  vkinit: string;
  vkseccomp: string;
  vknative: string;
  vkfs: string;
  vkagent: string;
  launcher: string;
}

export interface CheckProbe {
  /** A file's text, or undefined when it cannot be read. */
  readFile(file: string): string | undefined;
  exists(file: string): boolean;
  /** A regular file we may execute. */
  executable(file: string): boolean;
  /** This process's PATH (where `containerd` itself is looked for when none answers). */
  envPath(): string;
  helpers(): HelperPaths;
  /** What the kernel accepts, from `vkseccomp --probe` (throws when that cannot run). */
  seccomp(): Promise<SeccompProbe>;
  /** Runs a binary with a short timeout. Never throws. */
  run(file: string, args: string[]): Promise<RunResult>;
  /** Which protocol the shim would announce to the containerd at `address`, and why. Never throws. */
  protocol(address: string, context?: ProtocolContext): Promise<ProtocolDescription>;
  /** The containerd process serving `address`, when one does and /proc shows it. */
  containerdProcess(address: string): ContainerdProcess | undefined;
  /** Whether this is a `make install` copy (no Makefile beside it), not a build tree: what a fix hint says. */
  installed?(): boolean;
}

const RUN_TIMEOUT_MS = 5000;

/** fn's result, or undefined when it throws: /proc entries vanish as processes exit. */
function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

const readText = (file: string): string | undefined => attempt(() => fs.readFileSync(file, 'utf8'));
const readLink = (file: string): string | undefined => attempt(() => fs.readlinkSync(file));

function runBinary(file: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: RUN_TIMEOUT_MS });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => resolve({ code: null, stdout: '', stderr: '', error: e.message }));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

/** The inode of the listening unix socket bound at `socketPath`, from /proc/net/unix. */
export function listeningSocketInode(netUnix: string, socketPath: string): string | undefined {
  for (const line of netUnix.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = __SO_ACCEPTCON (listening)
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[7] === socketPath && (parseInt(f[3], 16) & 0x10000) !== 0) return f[6];
  }
  return undefined;
}

/** containerd's argv → its --config (or -c) value, undefined when absent. */
export function configFlag(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if ((a === '--config' || a === '-c' || a === '-config') && i + 1 < argv.length) return argv[i + 1];
    const m = /^--?(?:config|c)=(.*)$/.exec(a);
    if (m) return m[1];
  }
  return undefined;
}

function findContainerd(address: string): ContainerdProcess | undefined {
  const inode = listeningSocketInode(readText('/proc/net/unix') ?? '', address);
  if (!inode) return undefined;
  const want = `socket:[${inode}]`;
  const pids = (attempt(() => fs.readdirSync('/proc')) ?? []).filter((n) => /^\d+$/.test(n));
  // Only containerd-named processes are searched: scanning every fd of every process is slow.
  for (const pid of pids) {
    if (!(readText(`/proc/${pid}/comm`) ?? '').startsWith('containerd')) continue;
    const fds = attempt(() => fs.readdirSync(`/proc/${pid}/fd`)) ?? [];
    if (!fds.some((fd) => readLink(`/proc/${pid}/fd/${fd}`) === want)) continue;
    const argv = (readText(`/proc/${pid}/cmdline`) ?? '').split('\0').filter(Boolean);
    const env = (readText(`/proc/${pid}/environ`) ?? '').split('\0');
    const cwd = readLink(`/proc/${pid}/cwd`) ?? '/';
    const config = configFlag(argv.slice(1));
    return {
      pid: Number(pid),
      exe: readLink(`/proc/${pid}/exe`) ?? argv[0] ?? 'containerd',
      path: env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '',
      configFile: config === undefined ? undefined : path.resolve(cwd, config),
      shimProtocol: env.find((e) => e.startsWith(`${PROTOCOL_ENV}=`))?.slice(PROTOCOL_ENV.length + 1),
    };
  }
  return undefined;
}

export function realProbe(): CheckProbe {
  return {
    readFile: readText,
    exists: (file) => fs.existsSync(file),
    executable(file) {
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
    envPath: () => process.env.PATH ?? '',
    helpers: () => ({
      vkinit: resolveVkinit(),
      vkseccomp: seccompCompilerPath(),
      vknative: process.env.VKERNEL_NATIVE ?? path.join(PACKAGE_ROOT, 'build', 'vknative.node'),
      vkfs: vkfsPath(),
      vkagent: vkagentPath(),
      launcher: buildPath('containerd-shim-vkernel-v2'),
    }),
    seccomp: () => probeSeccomp(),
    run: runBinary,
    protocol: (address, context = {}) => describeProtocolChoice(address, { ...context, timeoutMs: 2000 }),
    containerdProcess: findContainerd,
    installed: isInstalledCopy,
  };
}
