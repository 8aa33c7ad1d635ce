// One invocation of the shim binary, as data in and data out. The cold path
// (cmd/containerd-shim-vkernel-v2.ts) and the manager (shim/manager) both call runShim: one
// implementation, whichever process runs it. Nothing here reads process.argv, process.env,
// process.cwd() or stdin, and nothing writes to stdout/stderr or exits.
//
// Modules are loaded per action: a cold `start` with empty stdin loads neither protobufjs nor
// the runtime library.
import type * as DeleteModule from './delete';
import type * as InfoModule from './info';
import type * as StartModule from './start';
import type * as VersionModule from './version';
import type { DaemonLauncher } from './daemon-config';
import { resolveInvocation, ShimUsageError, USAGE, type ShimAction, type ShimEnv } from './flags';
import { SHIM_BINARY_NAME } from './paths';

export interface ShimRequest {
  /** argv without argv[0]. */
  args: string[];
  /** The shim binary's working directory (containerd sets it to the bundle). */
  cwd: string;
  /** The variables containerd sets (flags.SHIM_ENV_NAMES). */
  env: ShimEnv;
  stdin: Uint8Array;
  /** The shim binary's parent: containerd. */
  containerdPid: number;
  /**
   * When containerd started the shim binary (ms since the epoch; default: now). The cold path
   * passes its process start, so `delete` spends what the Node boot left of containerd's 5 s.
   */
  startedAt?: number;
}

export interface ShimReply {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
  /** The action, when the arguments named a valid one. */
  action?: ShimAction;
}

export interface ShimDeps {
  launcher: DaemonLauncher;
  /** Runtime state root for delete (tests); default /run/vkernel/shim/<namespace>. */
  stateRoot?: string;
}

const EMPTY = Buffer.alloc(0);

/* eslint-disable @typescript-eslint/no-require-imports */
const startModule = (): typeof StartModule => require('./start') as typeof StartModule;
const deleteModule = (): typeof DeleteModule => require('./delete') as typeof DeleteModule;
const infoModule = (): typeof InfoModule => require('./info') as typeof InfoModule;
const versionModule = (): typeof VersionModule => require('./version') as typeof VersionModule;
/* eslint-enable @typescript-eslint/no-require-imports */

function errorReply(err: unknown, action?: ShimAction): ShimReply {
  const msg = err instanceof Error ? err.message : String(err);
  // Go's flag package exits 2 on a usage error.
  return { stdout: EMPTY, stderr: Buffer.from(`${SHIM_BINARY_NAME}: ${msg}\n`), exitCode: err instanceof ShimUsageError ? 2 : 1, action };
}

export async function runShim(req: ShimRequest, deps: ShimDeps): Promise<ShimReply> {
  let action: ShimAction | undefined;
  try {
    const inv = resolveInvocation(req.args, req.env, req.cwd);
    action = inv.action;
    switch (inv.action) {
      case 'help':
        return { stdout: EMPTY, stderr: Buffer.from(USAGE), exitCode: 0, action };
      case 'version':
        return { stdout: Buffer.from(versionModule().versionText()), stderr: EMPTY, exitCode: 0, action };
      case 'info':
        return { stdout: infoModule().runtimeInfo(req.stdin), stderr: EMPTY, exitCode: 0, action };
      case 'start': {
        const r = await startModule().startShim(inv, req.stdin, { launcher: deps.launcher, containerdPid: req.containerdPid });
        return { stdout: r.output, stderr: EMPTY, exitCode: 0, action };
      }
      case 'delete': {
        const del = deleteModule();
        const elapsed = req.startedAt === undefined ? 0 : Date.now() - req.startedAt;
        const r = await del.deleteShim(inv, { stateRoot: deps.stateRoot, budgetMs: del.deleteBudgetAfter(elapsed) });
        const stderr = r.warnings.length ? Buffer.from(r.warnings.map((w) => `${SHIM_BINARY_NAME}: warning: ${w}\n`).join('')) : EMPTY;
        return { stdout: r.output, stderr, exitCode: 0, action };
      }
    }
  } catch (err) {
    return errorReply(err, action);
  }
}
