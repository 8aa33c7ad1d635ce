// Which OCI runtime the integration tests drive, and how to call it.
//
// env RUNTIME = vkernel (default) | runc | crun. Every invocation gets a private
// `--root <tmpdir>` (one per test process, created on first use), so tests never see or
// touch containers of the host or of other test files.

import { ChildProcess, spawn, SpawnOptions, StdioNull, StdioPipe } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../fixtures/image';

export type RuntimeName = 'vkernel' | 'runc' | 'crun';
export const RUNTIMES: readonly RuntimeName[] = ['vkernel', 'runc', 'crun'];

/** The runtime under test, from env RUNTIME (default vkernel). Throws on unknown names. */
export function runtimeName(): RuntimeName {
  const v = (process.env.RUNTIME ?? '').trim() || 'vkernel';
  if (!(RUNTIMES as readonly string[]).includes(v)) {
    throw new Error(`RUNTIME=${JSON.stringify(v)}: expected one of ${RUNTIMES.join(', ')}`);
  }
  return v as RuntimeName;
}

export function isVkernel(runtime: RuntimeName = runtimeName()): boolean {
  return runtime === 'vkernel';
}

/** The vkernel CLI entry point (compiled). */
export function vkernelCli(): string {
  return path.join(repoRoot(), 'dist', 'cmd', 'vkernel.js');
}

let privateRoot: string | undefined;

/**
 * This process's private state root (`--root`), created on first use under $TMPDIR.
 * Shared by all runtimes in the process (runc, crun and vkernel keep per-id subdirs).
 */
export function runtimeRoot(): string {
  if (!privateRoot) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-root-'));
    fs.chmodSync(root, 0o711); // as /run/vkernel: user-namespace containers traverse it
    privateRoot = root;
    // Best effort: drop it at exit when empty (a non-empty root means leaked state).
    process.once('exit', () => {
      try {
        fs.rmdirSync(root);
      } catch {
        // gone, or not empty: keep for inspection
      }
    });
  }
  return privateRoot;
}

/**
 * Removes the private root if it is empty (it is not when containers leaked: then it is
 * kept for inspection and its path returned). Call from afterAll if you like; harmless
 * to skip.
 */
export function cleanupRuntimeRoot(): string | undefined {
  if (!privateRoot) return undefined;
  try {
    fs.rmdirSync(privateRoot);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return privateRoot;
  }
  privateRoot = undefined;
  return undefined;
}

// Under jest, each test file gets its own copy of this module: drop its root after the
// file's tests (jest does not run process 'exit' handlers of test files).
declare const afterAll: ((fn: () => void) => void) | undefined;
if (typeof afterAll === 'function') {
  afterAll(() => {
    cleanupRuntimeRoot();
  });
}

export interface RuntimeCommand {
  cmd: string;
  /** Arguments before the subcommand: the script (vkernel) and `--root <dir>`. */
  baseArgs: string[];
}

export function runtimeCommand(runtime: RuntimeName = runtimeName(), root: string = runtimeRoot()): RuntimeCommand {
  switch (runtime) {
    case 'vkernel':
      return { cmd: process.execPath, baseArgs: [vkernelCli(), '--root', root] };
    case 'runc':
      return { cmd: 'runc', baseArgs: ['--root', root] };
    case 'crun':
      return { cmd: 'crun', baseArgs: ['--root', root] };
  }
}

export interface RuntimeOptions {
  /** Runtime to use instead of env RUNTIME. */
  runtime?: RuntimeName;
  /** State root instead of the private per-process one. */
  root?: string;
  cwd?: string;
  /** Extra environment (merged over process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface RunOptions extends RuntimeOptions {
  /** Kill the runtime (SIGKILL, whole process group) and reject after this long. Default 30 s. */
  timeoutMs?: number;
  /** Written to stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string | Buffer;
  /**
   * Extra child fds from 3 up (e.g. for `--preserve-fds`): an open fd number to pass,
   * or 'ignore' (/dev/null).
   */
  extraFds?: (number | 'ignore')[];
}

export interface RunResult {
  /** Exit code, or 128+signal when the runtime itself died of a signal. */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time in ms. */
  durationMs: number;
}

/** How long to wait for stdout/stderr EOF after the runtime exited (see runRuntime). */
const EXIT_GRACE_MS = 250;

export class RuntimeTimeoutError extends Error {
  constructor(
    readonly args: string[],
    readonly timeoutMs: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`runtime ${args.join(' ')} timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`);
    this.name = 'RuntimeTimeoutError';
  }
}

function fullEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return extra ? { ...process.env, ...extra } : process.env;
}

/** Starts the runtime with `args` after the base args; you own the ChildProcess. */
export function spawnRuntime(args: string[], opts: RuntimeOptions & { stdio?: SpawnOptions['stdio']; detached?: boolean } = {}): ChildProcess {
  const { cmd, baseArgs } = runtimeCommand(opts.runtime, opts.root);
  return spawn(cmd, [...baseArgs, ...args], {
    cwd: opts.cwd,
    env: fullEnv(opts.env),
    stdio: opts.stdio ?? 'pipe',
    detached: opts.detached,
  });
}

/**
 * Runs the runtime to completion and collects its output. Resolves with any exit code
 * (a non-zero exit is a result, not an error); rejects with RuntimeTimeoutError when it
 * takes longer than timeoutMs, after SIGKILLing its process group.
 */
export function runRuntime(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const stdin: StdioPipe | StdioNull = opts.input !== undefined ? 'pipe' : 'ignore';
  const stdio: SpawnOptions['stdio'] = [stdin, 'pipe', 'pipe', ...(opts.extraFds ?? [])];
  const started = Date.now();
  // Own process group, so a timeout kills whatever the runtime started in the foreground.
  const child = spawnRuntime(args, { ...opts, stdio, detached: true });
  return new Promise<RunResult>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    let timedOut = false;
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      settled = true;
      reject(e);
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      const stdout = Buffer.concat(out).toString();
      const stderr = Buffer.concat(err).toString();
      if (timedOut) {
        reject(new RuntimeTimeoutError(args, timeoutMs, stdout, stderr));
        return;
      }
      const sigNum = signal ? (os.constants.signals[signal] ?? 0) : 0;
      resolve({ code: code ?? 128 + sigNum, signal, stdout, stderr, durationMs: Date.now() - started });
    };
    // Normally we resolve on 'close' (all output read). But after `create` or
    // `run --detach` the container keeps our stdout/stderr pipes open: then resolve
    // shortly after the runtime itself exited, with the output read so far.
    child.on('exit', (code, signal) => {
      graceTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(code, signal);
      }, EXIT_GRACE_MS);
    });
    child.on('close', (code, signal) => finish(code, signal));
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // the runtime may exit without reading
      child.stdin.end(opts.input);
    }
  });
}

/** `runtime run --bundle <dir> <id>`: runs a bundle's container in the foreground. */
export function runBundle(bundle: { dir: string; id: string }, opts: RunOptions & { extraArgs?: string[] } = {}): Promise<RunResult> {
  return runRuntime(['run', ...(opts.extraArgs ?? []), '--bundle', bundle.dir, bundle.id], opts);
}

/** Like runRuntime, but rejects unless the exit code is 0 (the error shows stdout/stderr). */
export async function runRuntimeOk(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await runRuntime(args, opts);
  if (r.code !== 0) {
    throw new Error(`runtime ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}
