// `node dist/shim/manager/main.js [--socket PATH] [--warm N] [--idle-timeout MS] [--no-watch] [--log FILE]`
//
// The host's shim manager (manager.ts). Started in the background by the cold path, or by an
// init system. Settings, flag first, then environment, then default:
//   --socket        VKERNEL_SHIM_MANAGER            /run/vkernel/shim-manager.sock
//   --warm          VKERNEL_SHIM_WARM               1 warm daemon
//   --idle-timeout  VKERNEL_SHIM_MANAGER_IDLE_MS    30 min (0: never)
//   --no-watch      VKERNEL_SHIM_MANAGER_WATCH=0    exit when dist/ or build/ change: on
//   --log           VKERNEL_SHIM_MANAGER_LOG        no log
//                   VKERNEL_SHIM_REUSE              100: groups a daemon may serve after its first,
//                                                   going back to the pool between them (0: never;
//                                                   read by the daemons, shim/daemon/reuse.ts)
//                   VKERNEL_SHIM_REUSE_GRACE_MS     1000: how long a hand-off holds its daemon's pool
//                                                   slot before a spare is booted for it
// Exits 0 at once when another manager holds the lock.
import * as fs from 'node:fs';
import { DEFAULT_MANAGER_SOCKET } from '../bootstrap/paths';
import { DEFAULT_IDLE_TIMEOUT_MS, ShimManager, type ManagerOptions } from './manager';

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): ManagerOptions & { logFile?: string } {
  const opts: ManagerOptions & { logFile?: string } = {
    socket: env.VKERNEL_SHIM_MANAGER && env.VKERNEL_SHIM_MANAGER !== 'off' ? env.VKERNEL_SHIM_MANAGER : DEFAULT_MANAGER_SOCKET,
    warm: env.VKERNEL_SHIM_WARM !== undefined ? Number(env.VKERNEL_SHIM_WARM) : 1,
    idleTimeoutMs: env.VKERNEL_SHIM_MANAGER_IDLE_MS !== undefined ? Number(env.VKERNEL_SHIM_MANAGER_IDLE_MS) : DEFAULT_IDLE_TIMEOUT_MS,
    watch: env.VKERNEL_SHIM_MANAGER_WATCH !== '0',
    logFile: env.VKERNEL_SHIM_MANAGER_LOG || undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--socket') opts.socket = value();
    else if (a === '--warm') opts.warm = Number(value());
    else if (a === '--idle-timeout') opts.idleTimeoutMs = Number(value());
    else if (a === '--no-watch') opts.watch = false;
    else if (a === '--log') opts.logFile = value();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.warm) || opts.warm! < 0) throw new Error(`--warm: not a count: ${opts.warm}`);
  if (!Number.isFinite(opts.idleTimeoutMs) || opts.idleTimeoutMs! < 0) throw new Error(`--idle-timeout: not a duration: ${opts.idleTimeoutMs}`);
  return opts;
}

function fileLogger(file: string | undefined): (msg: string) => void {
  if (!file) return () => undefined;
  let fd = -1;
  try {
    fd = fs.openSync(file, 'a', 0o600);
  } catch {
    return () => undefined;
  }
  return (msg) => {
    try {
      fs.writeSync(fd, `${new Date().toISOString()} shim-manager[${process.pid}] ${msg}\n`);
    } catch {
      // a broken log never stops the manager
    }
  };
}

export async function main(argv: string[]): Promise<number> {
  const opts = parseArgs(argv, process.env);
  opts.log = fileLogger(opts.logFile);
  const manager = await ShimManager.start(opts);
  if (!manager) return 0;
  const stop = (): void => void manager.close();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => undefined);
  await manager.closed;
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`vkernel shim manager: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
