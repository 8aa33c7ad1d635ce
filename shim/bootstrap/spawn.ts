// Starting a daemon directly (the cold path, and the manager when no warm daemon is ready):
// the running node binary, fd 3 = the listening group socket, the config in env
// VKERNEL_SHIM_CONFIG, its own session (setsid: no signal aimed at containerd's or the
// manager's process group reaches it), stdio on /dev/null. It must never inherit the start
// process's stdout/stderr: containerd reads those until every holder has closed them (§1.6).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { InternalError } from '../../runtime/errors';
import type { DaemonLaunch, DaemonLauncher } from './daemon-config';
import { childEnv, DAEMON_MAIN, DAEMON_NODE_FLAGS } from './paths';

/** The daemon's argv after the script: informational (ps, leak checks); the config is in the env. */
export function daemonArgs(config: { namespace: string; groupId: string; address: string }): string[] {
  return ['-namespace', config.namespace, '-id', config.groupId, '-address', config.address];
}

export function spawnDirectDaemon(l: DaemonLaunch, env: NodeJS.ProcessEnv = process.env): number {
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_MAIN, ...daemonArgs(l.config)], {
    cwd: '/',
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', l.listenFd],
    env: childEnv(env, { VKERNEL_SHIM_CONFIG: JSON.stringify(l.config) }),
  });
  child.on('error', () => undefined); // reported below through the missing pid
  child.unref();
  if (child.pid === undefined) throw new InternalError(`spawn shim daemon ${process.execPath} ${DAEMON_MAIN} failed`);
  adjustOomScore(child.pid, l.containerdPid);
  return child.pid;
}

/** A DaemonLauncher that always spawns (the cold path's). */
export function directLauncher(env: NodeJS.ProcessEnv = process.env): DaemonLauncher {
  return { launch: async (l) => spawnDirectDaemon(l, env) };
}

/**
 * oom_score_adj of a daemon = containerd's + 1 (at most 1000), like the runc shim: under memory
 * pressure the kernel kills a shim before containerd. Best effort: errors are ignored.
 */
export function adjustOomScore(pid: number, containerdPid: number): void {
  try {
    const parent = Number(fs.readFileSync(`/proc/${containerdPid}/oom_score_adj`, 'utf8').trim());
    if (!Number.isFinite(parent)) return;
    fs.writeFileSync(`/proc/${pid}/oom_score_adj`, String(Math.min(1000, parent + 1)));
  } catch {
    // not permitted, or one of them is gone
  }
}
