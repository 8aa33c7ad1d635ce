// The one seam between the cgroup drivers and the kernel's cgroup file systems. Every read,
// write, mkdir and rmdir goes through a CgroupFs so unit tests can run against a temp file
// tree (or wrap it to record writes), and so every failed write is reported the same way:
//   <field>: cgroup: write <value> to <file>: <errno text>

import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  VkernelError,
} from '../errors';

export interface CgroupFs {
  /** Whole file as text. Rejects with the Node error (code ENOENT etc.). */
  read(file: string): Promise<string>;
  /**
   * One write(2) of `value` (O_WRONLY|O_TRUNC, never O_CREAT: a missing file means the kernel
   * lacks the knob). `field` is the linux.resources path that asked for it, used in the error.
   */
  write(file: string, value: string, field?: string): Promise<void>;
  /** mkdir (0755). Resolves true when it created the directory, false when it existed. */
  mkdir(dir: string): Promise<boolean>;
  /** rmdir. Rejects with the Node error. */
  rmdir(dir: string): Promise<void>;
  /** Names of the sub-directories (child cgroups) of `dir`. */
  subdirs(dir: string): Promise<string[]>;
  exists(p: string): Promise<boolean>;
}

/**
 * The real file system. Writes are single write(2)s so the kernel sees the whole value.
 * The calls are synchronous inside async functions on purpose: cgroupfs is an in-memory
 * kernel file system whose operations take microseconds, while a thread-pool round trip
 * per open/write/close cost ~20 ms per container create (measured in bench/).
 */
export const nodeCgroupFs: CgroupFs = {
  read: async (file) => fs.readFileSync(file, 'utf8'),
  async write(file, value, field) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
      fs.writeSync(fd, value);
    } catch (err) {
      throw cgroupWriteError(value, file, err, field);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  },
  async mkdir(dir) {
    try {
      fs.mkdirSync(dir, { mode: 0o755 });
      return true;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false;
      throw cgroupFsError('mkdir', dir, err);
    }
  },
  rmdir: async (dir) => fs.rmdirSync(dir),
  async subdirs(dir) {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  },
  exists: async (p) => fs.existsSync(p),
};

// strerror(3) texts (glibc), lower-cased; libuv's texts differ for several codes.
const ERRNO_TEXT: Record<string, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ESRCH: 'no such process',
  EINTR: 'interrupted system call',
  EIO: 'input/output error',
  ENXIO: 'no such device or address',
  E2BIG: 'argument list too long',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'cannot allocate memory',
  EACCES: 'permission denied',
  EBUSY: 'device or resource busy',
  EEXIST: 'file exists',
  ENODEV: 'no such device',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ERANGE: 'numerical result out of range',
  ENOTEMPTY: 'directory not empty',
  EOPNOTSUPP: 'operation not supported',
  ENOTSUP: 'operation not supported',
  EOVERFLOW: 'value too large for defined data type',
  ENOSYS: 'function not implemented',
};

export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

export function errnoText(err: unknown): string {
  const code = errnoCode(err);
  if (code && ERRNO_TEXT[code]) return ERRNO_TEXT[code];
  if (err instanceof Error) {
    // libuv: "EINVAL: invalid argument, write" → "invalid argument"
    const m = /^[A-Z0-9]+: ([^,]+)/.exec(err.message);
    return (m ? m[1] : err.message).toLowerCase();
  }
  return String(err);
}

/** The error for a failed write, typed by errno: the kernel rejecting a value is bad input. */
export function cgroupWriteError(value: string, file: string, err: unknown, field?: string): VkernelError {
  if (err instanceof VkernelError) return err;
  const shown = value.replace(/\n/g, '\\n');
  const msg = `${field ? `${field}: ` : ''}cgroup: write ${shown} to ${file}: ${errnoText(err)}`;
  switch (errnoCode(err)) {
    case 'EINVAL':
    case 'ERANGE':
    case 'EOVERFLOW':
      return new InvalidArgumentError(msg, field, { cause: err });
    case 'ESRCH':
      return new NotFoundError(msg, { cause: err });
    case 'ENOENT':
    case 'EBUSY':
    case 'ENOSPC':
    case 'ENODEV':
    case 'EOPNOTSUPP':
    case 'ENOTSUP':
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new FailedPreconditionError(msg, { cause: err });
    default:
      return new InternalError(msg, { cause: err });
  }
}

export function cgroupFsError(op: string, p: string, err: unknown): VkernelError {
  if (err instanceof VkernelError) return err;
  const msg = `cgroup: ${op} ${p}: ${errnoText(err)}`;
  switch (errnoCode(err)) {
    case 'ENOENT':
      return new NotFoundError(msg, { cause: err });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
    case 'EBUSY':
    case 'ENOTEMPTY':
      return new FailedPreconditionError(msg, { cause: err });
    default:
      return new InternalError(msg, { cause: err });
  }
}

/** Read a file; undefined when it does not exist (a knob this kernel lacks). */
export async function readOptional(cfs: CgroupFs, file: string): Promise<string | undefined> {
  try {
    return await cfs.read(file);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'EOPNOTSUPP') return undefined;
    throw cgroupFsError('read', file, err);
  }
}

/** Read a file or fail with a cgroup-formatted error. */
export async function readRequired(cfs: CgroupFs, file: string): Promise<string> {
  try {
    return await cfs.read(file);
  } catch (err) {
    throw cgroupFsError('read', file, err);
  }
}

/** "key value" lines (memory.stat, cpu.stat, memory.events, …) → map. Non-numbers are skipped. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2) continue;
    const v = parseU64(parts[1]);
    if (v !== undefined) out.set(parts[0], v);
  }
  return out;
}

/** Unsigned kernel number; "max" → Number.MAX_SAFE_INTEGER is NOT done here (caller decides). */
export function parseU64(text: string): number | undefined {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return undefined;
  return Number(t);
}

/** Kernel number or "max"; "max" maps to `maxValue`. */
export function parseNumOrMax(text: string | undefined, maxValue: number): number {
  if (text === undefined) return 0;
  const t = text.trim();
  if (t === 'max') return maxValue;
  return parseU64(t) ?? 0;
}

export function parsePidList(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const n = Number(t);
    if (Number.isInteger(n) && n > 0) out.push(n);
  }
  return out;
}

/** All pids in the cgroup at `dir` and its descendants (cgroup.procs of each), deduplicated. */
export async function readPidsRecursive(cfs: CgroupFs, dir: string): Promise<number[]> {
  const seen = new Set<number>();
  const walk = async (d: string): Promise<void> => {
    const text = await readOptional(cfs, path.join(d, 'cgroup.procs'));
    if (text === undefined) return;
    for (const pid of parsePidList(text)) seen.add(pid);
    let children: string[];
    try {
      children = await cfs.subdirs(d);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw cgroupFsError('readdir', d, err);
    }
    for (const c of children) await walk(path.join(d, c));
  };
  await walk(dir);
  return [...seen].sort((a, b) => a - b);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** rmdir `dir` after its descendants (child cgroups first); ENOENT is success. */
async function removeTree(cfs: CgroupFs, dir: string): Promise<void> {
  try {
    await cfs.rmdir(dir);
    return;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
  }
  let children: string[] = [];
  try {
    children = await cfs.subdirs(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  for (const c of children) await removeTree(cfs, path.join(dir, c));
  try {
    await cfs.rmdir(dir);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

/**
 * Remove cgroup directories (and any child cgroups in them) the way runc does: five rounds
 * with 10ms, 20ms, … between them, since rmdir returns EBUSY while the last tasks are still
 * exiting. Already-gone directories count as removed.
 */
export async function removeCgroupDirs(cfs: CgroupFs, dirs: string[], retries = 5): Promise<void> {
  let pending = [...new Set(dirs)];
  let delay = 10;
  let lastErr: unknown;
  for (let i = 0; i < retries && pending.length > 0; i++) {
    if (i > 0) {
      await sleep(delay);
      delay *= 2;
    }
    const still: string[] = [];
    for (const d of pending) {
      try {
        await removeTree(cfs, d);
      } catch (err) {
        lastErr = err;
      }
      if (await cfs.exists(d)) still.push(d);
    }
    pending = still;
  }
  if (pending.length > 0) {
    throw new FailedPreconditionError(
      `cgroup: failed to remove ${pending.join(', ')}: ${lastErr ? errnoText(lastErr) : 'still present'}`,
      { cause: lastErr },
    );
  }
}

/** Remove directories this manager created as parents, deepest first, only when empty. */
export async function removeCreatedParents(cfs: CgroupFs, parents: string[]): Promise<void> {
  const sorted = [...new Set(parents)].sort((a, b) => b.length - a.length);
  for (const d of sorted) {
    try {
      await cfs.rmdir(d);
    } catch {
      // ENOTEMPTY/EBUSY: another container lives there now; ENOENT: already gone.
    }
  }
}

/**
 * mkdir -p below `base` (which must exist), appending the directories it creates to
 * `created` as it goes (parents first), so a caller can undo partial work on failure.
 * `after(dir, parent)` runs for every component (created or not), top-down.
 */
export async function mkdirBelow(
  cfs: CgroupFs,
  base: string,
  target: string,
  created: string[],
  after?: (dir: string, parent: string, created: boolean) => Promise<void>,
): Promise<void> {
  const rel = path.relative(base, target);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new InternalError(`cgroup: ${target} is not below ${base}`);
  }
  let cur = base;
  for (const part of rel === '' ? [] : rel.split(path.sep)) {
    const parent = cur;
    cur = path.join(cur, part);
    const made = await cfs.mkdir(cur);
    if (made) created.push(cur);
    if (after) await after(cur, parent, made);
  }
}

export { sleep };
