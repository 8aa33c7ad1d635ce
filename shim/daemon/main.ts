// The shim daemon's entry (shim/DESIGN.md, "The daemon contract"). Two ways in, one way on:
//
//   direct  node main.js [-namespace NS -id GROUP -address ADDR]
//           fd 3 = the listening group socket, env VKERNEL_SHIM_CONFIG = the config as JSON
//           (the trailing flags are only there for ps and leak checks)
//   warm    node main.js --warm <control socket>
//           loads everything first, then checks in with the manager ({"pid":N} line) and
//           waits for one adopt message: the config as a JSON line with the listening socket
//           attached (SCM_RIGHTS). If the manager goes away first, it exits.
//
// Both end in serveTasks(config, fd) from ./serve, the task service's entry. Tests may point
// VKERNEL_SHIM_SERVE_MODULE at a stand-in module with the same export (tests only).
import * as fs from 'node:fs';
import { native } from '../../runtime/native';
import type { DaemonConfig, DaemonLaunchConfig } from '../bootstrap/daemon-config';
import type { DaemonConfig as ServeDaemonConfig, serveTasks } from './serve';
import { maxReuses, ReusePolicy } from './reuse';

type ServeTasks = typeof serveTasks;

// bootstrap/daemon-config.ts and serve.ts declare the same DaemonConfig: checked both ways here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const sameContract: Same<DaemonConfig, ServeDaemonConfig> = true;
void sameContract;

/** The fd a direct daemon finds its listening socket on. */
export const LISTEN_FD = 3;

function loadServe(): ServeTasks {
  const mod = process.env.VKERNEL_SHIM_SERVE_MODULE || './serve';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const serve = (require(mod) as { serveTasks?: ServeTasks }).serveTasks;
  if (typeof serve !== 'function') throw new Error(`${mod} exports no serveTasks function`);
  return serve;
}

/** Splits the launch config into the contract's DaemonConfig and the bundle (for boot failures). */
function parseConfig(json: string): { config: DaemonConfig; bundle?: string } {
  const c = JSON.parse(json) as Partial<DaemonLaunchConfig>;
  if (!c || typeof c !== 'object' || typeof c.namespace !== 'string' || typeof c.socketPath !== 'string') {
    throw new Error('daemon config: not a DaemonConfig');
  }
  const { bundle, ...config } = c;
  return { config: config as DaemonConfig, bundle };
}

let bundleForErrors: string | undefined;

/**
 * A daemon that cannot serve has nobody to tell but containerd's log FIFO of the bundle that
 * started it (its stdio is /dev/null): one logrus-style line there, then exit 1.
 */
function fatal(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  if (bundleForErrors) {
    try {
      const fd = fs.openSync(`${bundleForErrors}/log`, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      fs.writeSync(fd, `time="${new Date().toISOString()}" level=fatal msg=${JSON.stringify(`shim daemon: ${msg}`)}\n`);
      fs.closeSync(fd);
    } catch {
      // no log FIFO (or nobody reading it)
    }
  }
  process.exit(1);
}

async function direct(): Promise<void> {
  const json = process.env.VKERNEL_SHIM_CONFIG;
  if (!json) throw new Error('direct mode needs VKERNEL_SHIM_CONFIG (or --warm <control socket>)');
  delete process.env.VKERNEL_SHIM_CONFIG; // not for the processes we start
  const { config, bundle } = parseConfig(json);
  bundleForErrors = bundle;
  await loadServe()(config, LISTEN_FD);
}

/** Reads the rest of a line after the first recvmsg, for a message the kernel split. */
function readLine(fd: number, first: Buffer): string {
  let data = first;
  const chunk = Buffer.alloc(65536);
  while (!data.includes(0x0a)) {
    const n = fs.readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    data = Buffer.concat([data, chunk.subarray(0, n)]);
  }
  return data.toString('utf8', 0, data.includes(0x0a) ? data.indexOf(0x0a) : data.length);
}

/**
 * A daemon that may not go back to the pool says why before it exits ({"pid":N,"leaving":…}):
 * the manager logs it and boots a replacement at once instead of after the grace period.
 */
function leave(controlSocket: string, why: string): never {
  try {
    const ctl = native().connectUnix(controlSocket);
    fs.writeSync(ctl, `${JSON.stringify({ pid: process.pid, leaving: why })}\n`);
    fs.closeSync(ctl);
  } catch {
    // no manager any more: nobody to tell
  }
  process.exit(0);
}

/** How long a daemon back from a group waits in the pool before it collects garbage. */
const POOL_GC_DELAY_MS = 1000;

/**
 * Waits in the pool: checks in ({"pid":N}, plus "reuse":K for a daemon coming back after K
 * groups) and resolves with the adopt message: the config line and the group's listening
 * socket. End of stream (the manager closed our slot, refused a reuse, or exited): exit 0.
 */
async function checkIn(controlSocket: string, reuse: number): Promise<{ line: string; fd: number }> {
  let ctl: number;
  try {
    ctl = native().connectUnix(controlSocket);
  } catch {
    process.exit(0); // no manager any more (a reusing daemon just goes)
  }
  fs.writeSync(ctl, `${JSON.stringify(reuse > 0 ? { pid: process.pid, reuse } : { pid: process.pid })}\n`);
  // Back from a group: collect once if we wait a while, not at once. Right after Shutdown the
  // CPU is containerd's (its `delete`, ctr's exit), and a next group often comes within 1 s.
  const gc = reuse > 0 ? setTimeout(compact, POOL_GC_DELAY_MS) : undefined;
  const msg = await native().recvFd(ctl, -1);
  clearTimeout(gc);
  if (msg.fd < 0) {
    // End of stream (the manager closed our slot or exited) or a message without a socket.
    process.exit(msg.data.length === 0 ? 0 : 1);
  }
  try {
    return { line: readLine(ctl, msg.data), fd: msg.fd };
  } finally {
    fs.closeSync(ctl);
  }
}

/**
 * A spare waits idle, possibly for long: a full collection now (--expose-gc is among the
 * daemon's flags) hands back what booting and prewarming left behind (~2 MiB of RSS).
 */
function compact(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function warm(controlSocket: string): Promise<void> {
  const serve = loadServe(); // everything the daemon needs is loaded before we report ready
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('./prewarm') as typeof import('./prewarm')).prewarmCodecs();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    await (require('../../runtime/prewarm') as typeof import('../../runtime/prewarm')).prewarmCreatePath();
  } catch {
    // only an optimization: the codecs are then generated on first use
  }
  compact();
  const reuse = new ReusePolicy(maxReuses(process.env.VKERNEL_SHIM_REUSE));
  for (;;) {
    const { line, fd } = await checkIn(controlSocket, reuse.count);
    const { config, bundle } = parseConfig(line);
    bundleForErrors = bundle;
    // Served its group to the end (Shutdown with no container, or orphaned): back to the
    // pool if it may, else exit as a daemon always did.
    await new Promise<void>((resolve) => void serve(config, fd, { exitProcess: false, onIdle: resolve }).catch(fatal));
    bundleForErrors = undefined;
    const why = reuse.refusal(compact);
    if (why !== undefined) leave(controlSocket, why);
    reuse.count++;
  }
}

export async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf('--warm');
  if (i >= 0) {
    const ctl = argv[i + 1];
    if (!ctl) throw new Error('--warm needs the manager control socket');
    await warm(ctl);
  } else {
    await direct();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch(fatal);
}
