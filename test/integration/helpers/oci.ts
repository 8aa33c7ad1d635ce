// Helpers shared by the config-*.test.ts, hooks and bad-input suites: run one container
// for a mutated base spec, drive create/start with a console socket, poll state, and
// small parsers for what /vktest prints. Everything goes through the CLI of the runtime
// under test (env RUNTIME), so the suites run unchanged against runc.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { native } from '../../../runtime/native';
import type { Spec } from '../../../runtime/spec/types';
import {
  Bundle,
  BundleOptions,
  makeBundle,
  parseKeyValues,
  runBundle,
  runRuntime,
  runRuntimeOk,
  RunOptions,
  RunResult,
  runtimeName,
} from '../../harness';

export const execFileP = promisify(execFile);

export const isRunc = (): boolean => runtimeName() === 'runc';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One table row of a config-field suite. */
export interface FieldCase {
  /** The config.json field(s) exercised, e.g. "process.user.umask". */
  name: string;
  /** process.args (default: the base spec's /vktest echo hi). */
  args?: string[];
  /** Spec changes; gets the bundle so paths in it can be used. */
  mutate?: (spec: Spec, b: Bundle) => void;
  /** Host-side preparation after config.json is written (files in the rootfs, ...). */
  setup?: (b: Bundle) => Promise<void> | void;
  /** Host-side undo of `setup`, run before the leak check (e.g. unmount what setup mounted). */
  teardown?: (b: Bundle) => Promise<void> | void;
  /** Expected exit code of `run` (default 0). */
  code?: number;
  /** Assertions on the run's output. */
  check: (r: RunResult, b: Bundle) => void | Promise<void>;
}

/** Makes the bundle for a case: base spec + args + mutate, then setup. */
export async function bundleFor(c: Pick<FieldCase, 'args' | 'mutate' | 'setup'>, opts: BundleOptions = {}): Promise<Bundle> {
  const b = await makeBundle({ ...opts, args: c.args ?? opts.args });
  c.mutate?.(b.spec, b);
  await b.writeSpec();
  await c.setup?.(b);
  return b;
}

/** Runs a case to completion (`run` in the foreground) and applies its checks. */
export async function runCase(c: FieldCase, opts: RunOptions = {}): Promise<RunResult> {
  const b = await bundleFor(c);
  let r: RunResult;
  try {
    r = await runBundle(b, opts);
  } finally {
    await c.teardown?.(b);
  }
  const want = c.code ?? 0;
  if (r.code !== want) {
    throw new Error(`${c.name}: run exited ${r.code}, expected ${want}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  await c.check(r, b);
  return r;
}

/** `state <id>` parsed (rejects when the runtime fails). */
export async function stateOf(id: string, opts: RunOptions = {}): Promise<{ id: string; status: string; pid: number; bundle: string; annotations?: Record<string, string> }> {
  return JSON.parse((await runRuntimeOk(['state', id], opts)).stdout);
}

/** Polls `state` until the status is `status` (rejects after timeoutMs). */
export async function waitStatus(id: string, status: string, timeoutMs = 10_000, opts: RunOptions = {}): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await runRuntime(['state', id], opts);
    if (r.code === 0) {
      last = JSON.parse(r.stdout).status;
      if (last === status) return;
    } else last = r.stderr.trim();
    if (Date.now() > end) throw new Error(`container ${id}: status ${JSON.stringify(last)}, waited for ${status}`);
    await sleep(25);
  }
}

/** `run --detach`, returning the init pid. */
export async function runDetached(b: Bundle, opts: RunOptions = {}): Promise<number> {
  await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id], opts);
  return (await stateOf(b.id, opts)).pid;
}

/** /proc/self/ns/* of this (host) process: name → "net:[4026531840]". */
export function hostNamespaces(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of fs.readdirSync('/proc/self/ns')) out[n] = fs.readlinkSync(`/proc/self/ns/${n}`);
  return out;
}

/** The inode in "net:[4026531840]". */
export function nsInode(link: string): number {
  const m = /\[(\d+)\]/.exec(link);
  if (!m) throw new Error(`not a namespace link: ${link}`);
  return Number(m[1]);
}

/** A private temp dir outside any bundle (sockets there are not bundle leaks). */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  fs.chmodSync(d, 0o755);
  return d;
}

/** Reads a pty master until EIO (every slave closed) or EOF. */
export function readPty(fd: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    const next = (): void => {
      fs.read(fd, buf, 0, buf.length, null, (err, n) => {
        if (err || n === 0) {
          try {
            fs.closeSync(fd);
          } catch {
            // already closed
          }
          resolve(Buffer.concat(chunks).toString());
          return;
        }
        chunks.push(Buffer.from(buf.subarray(0, n)));
        next();
      });
    };
    next();
  });
}

export interface ConsoleRun {
  /** What the container wrote to its terminal (with the pty's \r\n line ends). */
  output: string;
  /** The name the runtime sent along with the master fd (e.g. "/dev/pts/0"). */
  name: string;
  create: RunResult;
}

/**
 * create --console-socket, receive the pty master, start, read the terminal until the
 * container's last process closes it, wait for `stopped`, delete.
 */
export async function runWithConsoleSocket(b: Bundle, opts: RunOptions = {}): Promise<ConsoleRun> {
  const dir = tempDir('vkt-console');
  const sock = path.join(dir, 'console.sock');
  const lfd = native().listenUnix(sock);
  try {
    const received = native().acceptRecvFd(lfd, 20_000);
    received.catch(() => undefined);
    const create = await runRuntime(['create', '--console-socket', sock, '--bundle', b.dir, b.id], opts);
    if (create.code !== 0) throw new Error(`create --console-socket exited ${create.code}: ${create.stderr}`);
    const { fd, name } = await received;
    const out = readPty(fd);
    await runRuntimeOk(['start', b.id], opts);
    const output = await out;
    await waitStatus(b.id, 'stopped', 10_000, opts);
    await runRuntimeOk(['delete', b.id], opts);
    return { output, name, create };
  } finally {
    fs.closeSync(lfd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** key=value output of /vktest, with \r stripped (terminal output). */
export function kv(text: string): Record<string, string> {
  return parseKeyValues(text.replace(/\r/g, ''));
}

/** Writes a file into the bundle's rootfs (parents created). */
export function putFile(b: Bundle, rel: string, content: string, mode = 0o644): string {
  const p = path.join(b.rootfs, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content, { mode });
  fs.chmodSync(p, mode);
  return p;
}

/** A host dir inside the bundle dir (next to rootfs/), e.g. for bind mount sources. */
export function hostDir(b: Bundle, rel: string, files: Record<string, string> = {}): string {
  const d = path.join(b.dir, rel);
  fs.mkdirSync(d, { recursive: true });
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(d, name), content);
  return d;
}

/** Mounts tmpfs at `dir` on the host (for propagation and rbind cases). */
export async function hostTmpfs(dir: string, opts: string[] = []): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await execFileP('mount', ['-t', 'tmpfs', '-o', ['size=1m', ...opts].join(','), 'tmpfs', dir]);
}

/** umount -l every mount at or under dir (deepest first). */
export async function hostUnmountAll(dir: string): Promise<void> {
  const { mountsUnder } = await import('../../harness/bundle');
  for (const mp of mountsUnder(dir)) await execFileP('umount', ['-l', mp]).catch(() => undefined);
}

/** The error text a runtime printed: runc writes logrus lines, vkernel one plain line. */
export function stderrLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '');
}

/** `state` of a container that must not exist (a refused create left nothing behind). */
export async function expectGone(id: string): Promise<void> {
  const st = await runRuntime(['state', id]);
  expect(st.code).not.toBe(0);
  expect(st.stderr).toMatch(/container does not exist/);
}
