// linux.seccomp -> a BPF program file the init helper loads with seccomp(2).
//
// validate (validate.ts) -> flatten (plan.ts) -> build/vkseccomp (vkseccomp.c, libseccomp)
// -> <cacheDir>/<sha256>.bpf. Like crun, compiled filters are cached by a hash of the plan
// (and of the compiler binary), so creating many containers with the same profile costs
// one compile: a cache hit spawns no process. The cache keeps at most MAX_CACHE_ENTRIES
// filters; the least recently used ones go first (a hit refreshes the file's mtime).
//
// What the kernel supports (filter flags, actions) is probed once per kernel release with
// `vkseccomp --probe` and remembered in the cache directory too.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FailedPreconditionError, InternalError, InvalidArgumentError } from '../errors';
import { buildPath, missingHelperFix } from '../paths';
import { Seccomp } from '../spec/types';
import {
  ACTIONS,
  ARCHITECTURES,
  FLAGS,
  SECCOMP_FILTER_FLAG_NEW_LISTENER,
  SCMP_ACT_NOTIFY,
} from './constants';
import { buildPlan, encodePlan, filterFlags } from './plan';
import { validateSeccomp, ValidatedSeccomp } from './validate';
import { randomHex, sha256Hex } from '../hash';

export const MAX_CACHE_ENTRIES = 64;

/** The kernel's BPF_MAXINSNS: seccomp refuses longer programs. */
export const BPF_MAX_INSNS = 4096;

export interface CompileOptions {
  /** Where compiled filters are kept (created 0700 when missing). */
  cacheDir: string;
  /** Receives one line per warning (unknown syscalls, ignored flags). */
  log?: (msg: string) => void;
  /** The compiler binary; default: seccompCompilerPath(). */
  compiler?: string;
}

export interface CompiledSeccomp {
  /** The BPF program (struct sock_filter[]) for seccomp(SECCOMP_SET_MODE_FILTER). */
  bpfPath: string;
  /** SECCOMP_FILTER_FLAG_* for seccomp(2); includes NEW_LISTENER when `notify`. */
  flags: number;
  /** Some rule uses SCMP_ACT_NOTIFY: the listener fd goes to listenerPath. */
  notify: boolean;
  listenerPath?: string;
  listenerMetadata?: string;
  /** Warnings, also passed to opts.log. */
  warnings: string[];
  /** The filter came from the cache. */
  cached: boolean;
}

export interface SeccompProbe {
  /** SECCOMP_FILTER_FLAG_* bits the kernel accepts. */
  flags: number;
  /** SECCOMP_RET_* action values the kernel knows (SECCOMP_GET_ACTION_AVAIL). */
  actions: number[];
  /** "2.5.4 6": libseccomp version and API level the compiler was built with. */
  libseccomp: string;
}

/** build/vkseccomp next to dist/ (dist/runtime/seccomp -> ../../../build), or $VKERNEL_SECCOMP. */
export function seccompCompilerPath(): string {
  return process.env.VKERNEL_SECCOMP || buildPath('vkseccomp');
}

/** The cache key: sha256 over the compiler's identity and the plan text. */
export function cacheKey(planText: string, compilerId: string): string {
  return sha256Hex(`${compilerId}\n`, planText);
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

function run(file: string, args: string[], input: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.stdin.on('error', () => {
      /* the exit status tells what went wrong */
    });
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }),
    );
    child.stdin.end(input);
  });
}

async function runCompiler(compiler: string, args: string[], input: string): Promise<RunResult> {
  try {
    return await run(compiler, args, input);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES') {
      throw new FailedPreconditionError(
        `seccomp compiler ${compiler} is missing or not executable (${missingHelperFix()}, or set VKERNEL_SECCOMP)`,
        { cause: err },
      );
    }
    throw new InternalError(`seccomp compiler ${compiler}: ${e.message}`, { cause: err });
  }
}

async function compilerId(compiler: string): Promise<string> {
  try {
    const st = await fs.promises.stat(compiler);
    return `${path.resolve(compiler)}:${st.size}:${Math.floor(st.mtimeMs)}`;
  } catch (err) {
    throw new FailedPreconditionError(
      `seccomp compiler ${compiler} is missing (${missingHelperFix()}, or set VKERNEL_SECCOMP)`,
      { cause: err },
    );
  }
}

/** Writes `data` to `file` atomically (temp file in the same directory + rename). */
async function writeAtomic(file: string, data: Buffer | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomHex(4)}`;
  try {
    await fs.promises.writeFile(tmp, data, { mode: 0o644 });
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

const probes = new Map<string, SeccompProbe>();

function parseProbe(text: string): SeccompProbe | undefined {
  const m = /^flags (\d+)\nactions ([\d,]*)\nlibseccomp (\S+ \d+)\n?$/.exec(text);
  if (!m) return undefined;
  return { flags: Number(m[1]), actions: m[2] ? m[2].split(',').map(Number) : [], libseccomp: m[3] };
}

/**
 * What the running kernel supports, from `vkseccomp --probe`; remembered per kernel
 * release in memory and, with cacheDir, in `<cacheDir>/probe-<release>`.
 */
export async function probeSeccomp(opts: { cacheDir?: string; compiler?: string } = {}): Promise<SeccompProbe> {
  const compiler = opts.compiler ?? seccompCompilerPath();
  const release = os.release().replace(/[^A-Za-z0-9._-]/g, '_');
  const memo = `${compiler}\0${release}`;
  const known = probes.get(memo);
  if (known) return known;
  const file = opts.cacheDir ? path.join(opts.cacheDir, `probe-${release}`) : undefined;
  let probe: SeccompProbe | undefined;
  if (file) {
    try {
      probe = parseProbe(await fs.promises.readFile(file, 'utf8'));
    } catch {
      /* not probed yet */
    }
  }
  if (!probe) {
    const r = await runCompiler(compiler, ['--probe'], '');
    probe = r.code === 0 ? parseProbe(r.stdout.toString('utf8')) : undefined;
    if (!probe) throw new InternalError(`seccomp compiler ${compiler} --probe failed: ${r.stderr.trim() || `exit ${r.code ?? r.signal}`}`);
    if (file) {
      try {
        await fs.promises.mkdir(opts.cacheDir!, { recursive: true, mode: 0o700 });
        await writeAtomic(file, r.stdout);
      } catch {
        /* only a memo: probing again next time is fine */
      }
    }
  }
  probes.set(memo, probe);
  return probe;
}

/** Refuses what this kernel cannot do, naming the field. */
function checkSupport(v: ValidatedSeccomp, probe: SeccompProbe, field: string): void {
  for (const [i, f] of (v.flags ?? []).entries()) {
    if ((probe.flags & FLAGS[f]) !== FLAGS[f]) {
      throw new FailedPreconditionError(`${field}.flags[${i}]: ${f} is not supported by this kernel`);
    }
  }
  if (v.notify && !(probe.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER && probe.actions.includes(SCMP_ACT_NOTIFY))) {
    throw new FailedPreconditionError(`${field}: SCMP_ACT_NOTIFY is not supported by this kernel`);
  }
  const used: [string, string][] = [[`${field}.defaultAction`, v.defaultAction]];
  for (const r of v.rules) used.push([`${field}.syscalls[${r.index}].action`, r.action]);
  for (const [f, name] of used) {
    const ret = ACTIONS[name as keyof typeof ACTIONS] >>> 0;
    if (!probe.actions.includes(ret)) throw new FailedPreconditionError(`${f}: ${name} is not supported by this kernel`);
  }
}

/** Turns the compiler's stderr into messages that name config fields. */
function compilerMessages(stderr: string, field: string, v: ValidatedSeccomp): { warnings: string[]; errors: string[] } {
  const unknown = new Map<string, string[]>();
  const errors: string[] = [];
  for (const line of stderr.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^warning unknown-syscall (\d+) (\S+)$/.exec(line))) {
      unknown.set(m[1], [...(unknown.get(m[1]) ?? []), m[2]]);
    } else if ((m = /^error rule (\d+) (\S+): (.*)$/.exec(line))) {
      errors.push(`${field}.syscalls[${m[1]}]: cannot add a rule for syscall "${m[2]}": ${m[3].toLowerCase()}`);
    } else if ((m = /^error arch (\S+): (.*)$/.exec(line))) {
      const arch = Object.keys(ARCHITECTURES).find((k) => ARCHITECTURES[k] === m![1]) ?? m[1];
      const i = v.architectures.indexOf(arch);
      errors.push(`${field}.architectures${i >= 0 ? `[${i}]` : ''}: ${arch}: ${m[2]}`);
    } else if ((m = /^error (.*)$/.exec(line))) {
      errors.push(`${field}: ${m[1]}`);
    }
  }
  // One line per rule: a long allow list on an older libseccomp would otherwise flood the log.
  const warnings = [...unknown].map(
    ([i, names]) => `${field}.syscalls[${i}]: unknown syscall${names.length > 1 ? 's' : ''} skipped: ${names.map((n) => `"${n}"`).join(', ')}`,
  );
  return { warnings, errors };
}

/** Keeps at most `keep` filters in `dir`, removing the least recently used ones. */
export async function evictCache(dir: string, keep = MAX_CACHE_ENTRIES): Promise<void> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return;
  }
  const now = Date.now();
  const entries: { key: string; mtime: number }[] = [];
  for (const name of names) {
    const full = path.join(dir, name);
    if (name.includes('.tmp-')) {
      // a writer that died; leave fresh ones alone, they may still be renamed
      const st = await fs.promises.stat(full).catch(() => undefined);
      if (st && now - st.mtimeMs > 10 * 60_000) await fs.promises.rm(full, { force: true });
      continue;
    }
    if (!name.endsWith('.bpf')) continue;
    const st = await fs.promises.stat(full).catch(() => undefined);
    if (st) entries.push({ key: name.slice(0, -4), mtime: st.mtimeMs });
  }
  if (entries.length <= keep) return;
  entries.sort((a, b) => a.mtime - b.mtime);
  for (const e of entries.slice(0, entries.length - keep)) {
    await fs.promises.rm(path.join(dir, `${e.key}.bpf`), { force: true });
    await fs.promises.rm(path.join(dir, `${e.key}.warn`), { force: true });
  }
}

/**
 * Validates and compiles `seccomp` (linux.seccomp of a config.json). Returns null when
 * the profile disables seccomp (no defaultAction and no syscalls, as runc).
 * Throws InvalidArgumentError for a bad profile, FailedPreconditionError when the kernel
 * or the compiler cannot do it.
 */
export async function compileSeccomp(seccomp: Seccomp, opts: CompileOptions): Promise<CompiledSeccomp | null> {
  const field = 'linux.seccomp';
  const v = validateSeccomp(seccomp, field);
  if (!v) return null;
  const compiler = opts.compiler ?? seccompCompilerPath();
  const log = opts.log ?? (() => undefined);

  const probe = await probeSeccomp({ cacheDir: opts.cacheDir, compiler });
  checkSupport(v, probe, field);
  const flags = filterFlags(v, probe.flags);

  const planText = encodePlan(buildPlan(v));
  const key = cacheKey(planText, await compilerId(compiler));
  const bpfPath = path.join(opts.cacheDir, `${key}.bpf`);
  const warnPath = path.join(opts.cacheDir, `${key}.warn`);
  const result = (warnings: string[], cached: boolean): CompiledSeccomp => {
    const all = [...v.warnings, ...warnings];
    for (const w of all) log(w);
    return {
      bpfPath,
      flags,
      notify: v.notify,
      ...(v.listenerPath !== undefined ? { listenerPath: v.listenerPath } : {}),
      ...(v.listenerMetadata !== undefined ? { listenerMetadata: v.listenerMetadata } : {}),
      warnings: all,
      cached,
    };
  };

  // Cache hit: refresh the mtime (LRU, best effort) and replay the compiler's warnings.
  const st = await fs.promises.stat(bpfPath).catch(() => undefined);
  if (st && st.isFile() && st.size > 0 && st.size % 8 === 0) {
    const now = new Date();
    await fs.promises.utimes(bpfPath, now, now).catch(() => undefined);
    let warnings: string[] = [];
    try {
      warnings = (await fs.promises.readFile(warnPath, 'utf8')).split('\n').filter(Boolean);
    } catch {
      /* no warnings */
    }
    return result(warnings, true);
  }

  const r = await runCompiler(compiler, [], planText);
  const msgs = compilerMessages(r.stderr, field, v);
  if (r.code === 1 && msgs.errors.length > 0) throw new InvalidArgumentError(msgs.errors.join('; '), field);
  if (r.code !== 0) {
    throw new InternalError(`seccomp compiler ${compiler} failed (${r.code !== null ? `exit ${r.code}` : r.signal}): ${r.stderr.trim()}`);
  }
  const bpf = r.stdout;
  if (bpf.length === 0 || bpf.length % 8 !== 0) {
    throw new InternalError(`seccomp compiler ${compiler} wrote ${bpf.length} bytes, not a BPF program`);
  }
  if (bpf.length / 8 > BPF_MAX_INSNS) {
    throw new InvalidArgumentError(
      `${field}: the compiled filter has ${bpf.length / 8} instructions, more than the kernel's limit of ${BPF_MAX_INSNS}`,
      field,
    );
  }
  await fs.promises.mkdir(opts.cacheDir, { recursive: true, mode: 0o700 });
  // The warnings first: whoever sees the .bpf also finds its warnings.
  if (msgs.warnings.length > 0) await writeAtomic(warnPath, msgs.warnings.join('\n') + '\n');
  await writeAtomic(bpfPath, bpf);
  await evictCache(opts.cacheDir);
  return result(msgs.warnings, false);
}
