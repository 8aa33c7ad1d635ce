// Group sockets: naming, grouping and claiming (reference §1.5, §1.7).
//
// One daemon serves a group of containers (a Kubernetes pod, or any containers sharing a
// group annotation). Its socket is named after sha256(<containerd address>/<namespace>/<group>)
// exactly like the runc shim's, so the second container of a group derives the same path,
// finds it listening and answers that address instead of starting a daemon.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InternalError, InvalidArgumentError } from '../../runtime/errors';
import { native } from '../../runtime/native';
import { MAX_SOCKET_PATH, SHIM_SOCKET_DIR } from './paths';
import { randomHex, sha256Hex } from '../../runtime/hash';

/**
 * Annotations that name a container's group, first match wins: the runc shim's two (so pods
 * and `io.containerd.runc.v2.group` users group the same way with either runtime), then ours.
 * No annotation: the container is its own group.
 */
export const GROUP_ANNOTATIONS = ['io.containerd.runc.v2.group', 'io.kubernetes.cri.sandbox-id', 'io.vkernel.group'] as const;

export function groupIdFor(annotations: Record<string, string> | undefined, id: string): string {
  for (const key of GROUP_ANNOTATIONS) {
    const v = annotations?.[key];
    if (typeof v === 'string') return v;
  }
  return id;
}

/** The annotations of `<bundle>/config.json` (only the field start needs). */
export function readBundleAnnotations(bundle: string): Record<string, string> {
  const file = path.join(bundle, 'config.json');
  let spec: unknown;
  try {
    spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${file}: ${(err as Error).message}`, 'bundle', { cause: err });
  }
  const a = (spec as { annotations?: unknown } | null)?.annotations;
  return a && typeof a === 'object' ? (a as Record<string, string>) : {};
}

/** Go's filepath.Join: non-empty elements joined by '/', then cleaned (no trailing slash). */
export function goJoin(...parts: string[]): string {
  const joined = parts.filter((p) => p !== '').join('/');
  if (!joined) return '';
  const clean = path.posix.normalize(joined);
  return clean.length > 1 && clean.endsWith('/') ? clean.slice(0, -1) : clean;
}

/** /run/containerd/s/<hex(sha256(filepath.Join(address, namespace, group)))>. */
export function groupSocketPath(address: string, namespace: string, group: string, dir: string = SHIM_SOCKET_DIR): string {
  const hash = sha256Hex(goJoin(address, namespace, group));
  const p = path.join(dir, hash);
  if (Buffer.byteLength(p) >= MAX_SOCKET_PATH) {
    throw new InvalidArgumentError(`shim socket path ${p} is ${Buffer.byteLength(p)} bytes, the limit is ${MAX_SOCKET_PATH - 1}`, 'socket_dir');
  }
  return p;
}

/** The ttrpc address containerd dials: a plain path would be taken as an abstract socket (§1.5). */
export function socketAddress(socketPath: string): string {
  return `unix://${socketPath}`;
}

function errnoOf(err: unknown): number | undefined {
  const e = (err as { errno?: unknown }).errno;
  return typeof e === 'number' ? e : undefined;
}

/** Does something accept connections on this socket path? */
export function canConnect(socketPath: string): boolean {
  try {
    fs.closeSync(native().connectUnix(socketPath));
    return true;
  } catch {
    return false;
  }
}

export type SocketClaim =
  /** A daemon already serves the group: answer its address. */
  | { kind: 'serving'; path: string }
  /** We now own a listening socket (mode 0600) to hand to a new daemon. */
  | { kind: 'created'; path: string; fd: number };

/** Room for every container of a pod connecting before a cold daemon has booted. */
const LISTEN_BACKLOG = 4096;

/**
 * Creates and listens on `socketPath`, or reports that a live daemon already listens there.
 * A socket file nobody accepts on is stale (a crashed daemon): it is removed and re-created.
 */
export function claimSocket(socketPath: string): SocketClaim {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = native().listenUnix(socketPath, LISTEN_BACKLOG);
    } catch (err) {
      if (errnoOf(err) !== os.constants.errno.EADDRINUSE) {
        throw new InternalError(`create shim socket ${socketPath}: ${(err as Error).message}`, { cause: err });
      }
      if (canConnect(socketPath)) return { kind: 'serving', path: socketPath };
      fs.rmSync(socketPath, { force: true });
      continue;
    }
    try {
      fs.chmodSync(socketPath, 0o600);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(socketPath, { force: true });
      throw new InternalError(`chmod shim socket ${socketPath}: ${(err as Error).message}`, { cause: err });
    }
    return { kind: 'created', path: socketPath, fd };
  }
  throw new InternalError(`create shim socket ${socketPath}: still in use after removing it as stale`);
}

/** Writes `<bundle>/address` so readers never see a partial one: temp file + rename (§1.8). */
export function writeAddressFile(bundle: string, address: string): void {
  const file = path.join(bundle, 'address');
  const tmp = path.join(bundle, `.address.${process.pid}.${randomHex(4)}`);
  try {
    fs.writeFileSync(tmp, address, { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new InternalError(`write ${file}: ${(err as Error).message}`, { cause: err });
  }
}
