// Names and places the shim's processes agree on. Everything under /run is per boot.
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../runtime/paths';

/** The binary containerd resolves `io.containerd.vkernel.v2` to. */
export const SHIM_BINARY_NAME = 'containerd-shim-vkernel-v2';
/** The runtime type, as RuntimeInfo.name reports it. */
export const RUNTIME_TYPE = 'io.containerd.vkernel.v2';

/** Where group sockets live: containerd's own convention (reference §1.5). */
export const SHIM_SOCKET_DIR = '/run/containerd/s';
/** Unix socket paths must stay below this length (the limit the runc shim checks). */
export const MAX_SOCKET_PATH = 106;

/** The runtime state root of a namespace's containers is `<this>/<namespace>`. */
export const SHIM_STATE_ROOT = '/run/vkernel/shim';

/** The host's one shim manager listens here (env VKERNEL_SHIM_MANAGER overrides; "off" disables it). */
export const DEFAULT_MANAGER_SOCKET = '/run/vkernel/shim-manager.sock';

/** Entry points, resolved from the package root so nothing depends on PATH or cwd. */
export const DAEMON_MAIN = path.join(PACKAGE_ROOT, 'dist', 'shim', 'daemon', 'main.js');
export const MANAGER_MAIN = path.join(PACKAGE_ROOT, 'dist', 'shim', 'manager', 'main.js');
export const COLD_MAIN = path.join(PACKAGE_ROOT, 'dist', 'cmd', `${SHIM_BINARY_NAME}.js`);

export function stateRootFor(namespace: string): string {
  return path.join(SHIM_STATE_ROOT, namespace);
}

/** The manager socket from the environment; undefined when the manager is switched off. */
export function managerSocketPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.VKERNEL_SHIM_MANAGER;
  if (v === 'off') return undefined;
  return v || DEFAULT_MANAGER_SOCKET;
}

/** The manager's other files sit next to its socket: `<base>.pid` (lock + pid) and `<base>.ctl` (warm daemons). */
export function managerFiles(socket: string): { socket: string; pidFile: string; controlSocket: string } {
  const base = socket.endsWith('.sock') ? socket.slice(0, -'.sock'.length) : socket;
  return { socket, pidFile: `${base}.pid`, controlSocket: `${base}.ctl` };
}

/**
 * How Node is started for every shim process we spawn (daemons, the manager): the running
 * node binary (never a PATH lookup) with warnings off, because anything a Node process
 * prints during `start` would become part of the address containerd parses.
 */
export const NODE_FLAGS = ['--no-warnings'];

/**
 * A shim daemon's V8 settings on top: a 1 MiB young generation (default 16 MiB: the daemon
 * allocates little, and every committed semi-space page stays resident) and V8's lite mode:
 * only the interpreter (no TurboFan, no Sparkplug, regular expressions interpreted; a daemon
 * runs each path a few times per container, nothing gets hot enough to pay back compiled
 * code), feedback vectors allocated lazily, optimized for size. No WebAssembly (lite mode
 * excludes it; said explicitly, or V8 prints a warning). --expose-gc: a warm daemon collects
 * once before it waits (daemon/main.ts). Idle warm daemon RSS 55.9 → 51.6 MiB with the first
 * two, → 48.3 MiB with lite mode and the collection; no measurable change in latency (bench/shim.ts).
 */
export const DAEMON_NODE_FLAGS = [...NODE_FLAGS, '--max-semi-space-size=1', '--no-expose-wasm', '--lite-mode', '--expose-gc'];

export function childEnv(env: NodeJS.ProcessEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...env, NODE_NO_WARNINGS: '1', ...extra };
}
