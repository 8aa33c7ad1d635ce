// The cold path starts the host's manager in the background, so the next invocation takes
// the warm path. Detached (own session), stdio on /dev/null, cwd /: it holds nothing of
// containerd's, and containerd never waits for it. Two cold invocations racing both spawn
// one; the manager's lock lets one run and the other exit at once.
import { spawn } from 'node:child_process';
import { SHIM_ENV_NAMES } from '../bootstrap/flags';
import { childEnv, MANAGER_MAIN, managerSocketPath, NODE_FLAGS } from '../bootstrap/paths';
import { canConnect } from '../bootstrap/socket';

/**
 * Spawns a manager unless one answers on the manager socket, the manager is off
 * (VKERNEL_SHIM_MANAGER=off) or autostart is (VKERNEL_SHIM_MANAGER_AUTOSTART=0). True if spawned.
 */
export function ensureManager(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.VKERNEL_SHIM_MANAGER_AUTOSTART === '0') return false;
  const socket = managerSocketPath(env);
  if (!socket || canConnect(socket)) return false;
  // containerd's per-invocation variables mean nothing to a long-running manager.
  const base = { ...env };
  for (const k of SHIM_ENV_NAMES) delete base[k];
  const child = spawn(process.execPath, [...NODE_FLAGS, MANAGER_MAIN, '--socket', socket], {
    cwd: '/',
    detached: true,
    stdio: 'ignore',
    env: childEnv(base),
  });
  child.on('error', () => undefined);
  child.unref();
  return child.pid !== undefined;
}
