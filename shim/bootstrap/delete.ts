// `delete` (reference §1.1, §8.4): containerd runs it after every task's connection closes,
// and when a daemon died or cannot be reached. It must be idempotent, finish well inside
// containerd's 5 s cleanup timeout, touch only container `-id`, and never stop a daemon: a
// grouped daemon may still serve other containers, and a live daemon exits by itself after
// Shutdown. Output: the protobuf DeleteResponse on stdout; problems become warnings on stderr
// (containerd logs them), and the exit status stays 0.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as RuntimeModule from '../../runtime';
import type { LogLevel } from '../../runtime/log';
import { native } from '../../runtime/native';
import { encode, timestamp } from '../proto';
import type { ShimInvocation } from './flags';
import { protocolFilePath } from './negotiate';
import { stateRootFor } from './paths';
import { canConnect } from './socket';

/** What the runc shim reports for a container it cleaned up: killed by SIGKILL (128 + 9). */
export const DELETED_EXIT_STATUS = 128 + 9;

/** How long removing the container may take before we answer anyway (containerd gives 5 s). */
export const DELETE_BUDGET_MS = 3000;
/** containerd's limit on the whole `delete` process, boot included. */
const CONTAINERD_DELETE_TIMEOUT_MS = 5000;
/** Kept back for what comes after the removal: unmounting the rootfs, the answer, exit. */
const AFTER_REMOVAL_MS = 1000;
const MIN_DELETE_BUDGET_MS = 500;

/**
 * The removal's budget when `elapsedMs` of containerd's 5 s are already gone (a cold Node
 * boot: 0.2 s here, over 1 s on a loaded host): DELETE_BUDGET_MS, less when the boot ate into
 * the rest, never under MIN_DELETE_BUDGET_MS (a removal cut off early only leaves a warning).
 */
export function deleteBudgetAfter(elapsedMs: number): number {
  const left = CONTAINERD_DELETE_TIMEOUT_MS - AFTER_REMOVAL_MS - Math.max(0, elapsedMs);
  return Math.max(MIN_DELETE_BUDGET_MS, Math.min(DELETE_BUDGET_MS, left));
}

const MNT_DETACH = 2;

export interface DeleteOptions {
  /** Runtime state root (default /run/vkernel/shim/<namespace>). */
  stateRoot?: string;
  budgetMs?: number;
}

export interface DeleteResult {
  pid: number;
  exitStatus: number;
  exitedAt: Date;
  /** The exact bytes for stdout: containerd.task.v2.DeleteResponse. */
  output: Buffer;
  warnings: string[];
}

export function encodeDeleteResponse(pid: number, exitStatus: number, exitedAt: Date): Buffer {
  return encode('containerd.task.v2.DeleteResponse', { pid, exit_status: exitStatus, exited_at: timestamp(exitedAt) });
}

export async function deleteShim(inv: ShimInvocation, opts: DeleteOptions = {}): Promise<DeleteResult> {
  const warnings: string[] = [];
  const root = opts.stateRoot ?? stateRootFor(inv.namespace);
  const budget = opts.budgetMs ?? DELETE_BUDGET_MS;
  let pid = 0;
  let timer: NodeJS.Timeout | undefined;
  const removal = removeContainer(root, inv.id, warnings).then((p) => {
    pid = p;
  });
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), budget);
  });
  try {
    if ((await Promise.race([removal, timedOut])) === 'timeout') {
      warnings.push(`container ${inv.id}: removal still running after ${budget} ms, answering anyway`);
    }
  } catch (err) {
    warnings.push(`container ${inv.id}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  warnings.push(...unmountAll(path.join(inv.bundle, 'rootfs')));
  warnings.push(...removeStaleSocket(inv.bundle));
  const exitedAt = new Date();
  return { pid, exitStatus: DELETED_EXIT_STATUS, exitedAt, output: encodeDeleteResponse(pid, DELETED_EXIT_STATUS, exitedAt), warnings };
}

/**
 * Kills and removes the container from the runtime state root, if it is there; resolves with
 * its init pid (0 when it was already gone). The runtime library is loaded only when there is
 * something to delete: the common case (the daemon already deleted it) stays cheap.
 */
async function removeContainer(root: string, id: string, warnings: string[]): Promise<number> {
  if (!fs.existsSync(path.join(root, id, 'state.json'))) return 0;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const rt = require('../../runtime') as typeof RuntimeModule;
  const log = new (class extends rt.Logger {
    override log(level: LogLevel, msg: string): void {
      if (level !== 'debug') warnings.push(`${level}: ${msg}`);
    }
  })();
  const ctx = rt.makeContext({ root, log });
  let pid = 0;
  try {
    pid = ctx.store.load(id).pid;
    await rt.deleteContainer(ctx, id, true);
  } catch (err) {
    if ((err as { code?: string }).code !== 'NOT_FOUND') throw err;
  }
  return pid;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below `dir` in our mount namespace, deepest first. */
export function mountsUnder(dir: string, mountinfo?: string): string[] {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return [];
    }
  }
  const found = new Set<string>();
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const mp = unescapeMountinfo(field);
    if (mp === dir || mp.startsWith(dir + '/')) found.add(mp);
  }
  return [...found].sort((a, b) => b.length - a.length);
}

/** Detaches every mount at or below `dir` (umount2 MNT_DETACH); returns warnings. */
export function unmountAll(dir: string): string[] {
  const warnings = new Set<string>();
  // A mount point can be stacked several times: repeat until nothing is left (bounded).
  for (let round = 0; round < 8; round++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) break;
    for (const m of mounts) {
      try {
        native().umount2(m, MNT_DETACH);
      } catch (err) {
        const e = (err as { errno?: number }).errno;
        // EINVAL: no longer a mount point; ENOENT: gone. Anything else is worth a warning.
        if (e !== 22 && e !== 2) warnings.add(`unmount ${m}: ${(err as Error).message}`);
      }
    }
  }
  return [...warnings];
}

/**
 * The group socket named by `<bundle>/address` (plain `unix://…` or the JSON answer), when
 * nobody accepts on it any more: a daemon killed with SIGKILL cannot remove its own socket,
 * and containerd's delete is the last code that runs for it. A live socket belongs to a daemon
 * still serving other containers of the group and is left alone.
 */
export function removeStaleSocket(bundle: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(path.join(bundle, 'address'), 'utf8').trim();
  } catch {
    return [];
  }
  const sock = socketPathFromAddress(text);
  if (!sock) return [];
  try {
    if (!fs.lstatSync(sock).isSocket() || canConnect(sock)) return [];
    fs.rmSync(sock, { force: true });
    fs.rmSync(protocolFilePath(sock), { force: true });
    return [];
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'ENOENT' ? [] : [`remove stale shim socket ${sock}: ${e.message}`];
  }
}

/** The socket path inside an address file: `unix:///p`, `/p`, or JSON `{"address": …}`. */
export function socketPathFromAddress(text: string): string | undefined {
  let addr = text;
  if (text.startsWith('{')) {
    try {
      const a = (JSON.parse(text) as { address?: unknown }).address;
      if (typeof a !== 'string') return undefined;
      addr = a;
    } catch {
      return undefined;
    }
  }
  addr = addr.replace(/^unix:\/\//, '');
  return path.isAbsolute(addr) ? addr : undefined;
}
