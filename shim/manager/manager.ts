// The shim manager: one long-running Node process per host that answers the launcher
// (build/containerd-shim-vkernel-v2) so that `start`, `delete`, `-v` and `-info` cost a unix
// socket round trip instead of a Node boot. It runs the same code as the cold path
// (shim/bootstrap/run.ts) in-process, and keeps a pool of warm daemons to hand new groups.
//
// Lifecycle
//   start    take the lock (<base>.pid, flock; the pid is written into it). Another holder
//            means another manager runs: start() resolves undefined. Listen on the socket
//            (mode 0600), start the warm pool, preload the runtime library and protos.
//   serve    one request per connection (protocol.ts). Requests run concurrently.
//   close    on SIGTERM/SIGINT, after `idleTimeoutMs` without requests, or when the installed
//            code changed under it (dist/ or build/ rewritten: an upgrade or a rebuild). Stops
//            listening (new connections get no reply, so launchers go cold), finishes the
//            requests in flight, closes the pool (waiting daemons exit), removes its sockets.
//
// Daemons it handed out are not its concern once adopted: they live in their own sessions,
// and a manager that dies (even SIGKILL) leaves them serving. The launcher falls back to the
// cold path while no manager answers, and the cold path starts a new one.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { warmCgroupMigration } from '../../runtime/cgroups/migration-warmup';
import { native } from '../../runtime/native';
import { PACKAGE_ROOT } from '../../runtime/paths';
import type { DaemonLauncher } from '../bootstrap/daemon-config';
import { pickShimEnv } from '../bootstrap/flags';
import { managerFiles } from '../bootstrap/paths';
import { runShim } from '../bootstrap/run';
import { spawnDirectDaemon } from '../bootstrap/spawn';
import { maxReuses } from '../daemon/reuse';
import { WarmPool } from './pool';
import { decodeRequest, encodeReply, MessageReader, REQUEST_MAGIC } from './protocol';
import { watchForUpdates } from './staleness';

export interface ManagerOptions {
  /** The manager socket (the pid file and control socket sit next to it). */
  socket: string;
  /** Warm daemons to keep (default 1; 0 = none). */
  warm?: number;
  /** Exit after this long without a request; 0 = never (default 30 min). */
  idleTimeoutMs?: number;
  /** Exit when the code under dist/ or build/ changes (default true). */
  watch?: boolean;
  /** Environment of the daemons it starts (default: its own). */
  env?: NodeJS.ProcessEnv;
  /** Runtime state root for delete, instead of /run/vkernel/shim/<namespace> (tests). */
  stateRoot?: string;
  log?: (msg: string) => void;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60_000;

/** How long a `start` keeps cgroup migration warm: past its container's Create (~40–70 ms later). */
const START_WARMUP_MS = 150;

/** How long a client may take to send its request before the connection is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;

export class ShimManager {
  readonly socket: string;
  readonly pidFile: string;
  readonly controlSocket: string;
  readonly pool: WarmPool;
  readonly #opts: ManagerOptions;
  readonly #log: (msg: string) => void;
  readonly #lockFd: number;
  readonly #launcher: DaemonLauncher;
  readonly #connections = new Set<net.Socket>();
  #server: net.Server | undefined;
  #inFlight = 0;
  #drained: (() => void) | undefined;
  #idle: NodeJS.Timeout | undefined;
  #unwatch: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #closedResolve!: () => void;
  /** Resolves once the manager has shut down. */
  readonly closed: Promise<void>;
  #requests = 0;

  private constructor(opts: ManagerOptions, lockFd: number) {
    this.#opts = opts;
    this.#log = opts.log ?? (() => undefined);
    this.#lockFd = lockFd;
    const files = managerFiles(opts.socket);
    this.socket = files.socket;
    this.pidFile = files.pidFile;
    this.controlSocket = files.controlSocket;
    const env = opts.env ?? process.env;
    this.pool = new WarmPool({
      size: opts.warm ?? 1,
      controlSocket: files.controlSocket,
      env,
      reuse: maxReuses(env.VKERNEL_SHIM_REUSE) > 0,
      reuseGraceMs: graceMs(env.VKERNEL_SHIM_REUSE_GRACE_MS),
      log: (m) => this.#log(`pool: ${m}`),
    });
    this.#launcher = {
      launch: async (l) => {
        const adopted = await this.pool.adopt(l);
        if (adopted !== undefined) return adopted;
        const pid = spawnDirectDaemon(l, env);
        this.#log(`no warm daemon ready: started daemon ${pid} for group ${l.config.groupId} directly`);
        return pid;
      },
    };
    this.closed = new Promise((resolve) => (this.#closedResolve = resolve));
  }

  /** Starts a manager, or resolves undefined when another one holds the lock. */
  static async start(opts: ManagerOptions): Promise<ShimManager | undefined> {
    const files = managerFiles(opts.socket);
    fs.mkdirSync(path.dirname(files.socket), { recursive: true, mode: 0o711 });
    const lockFd = fs.openSync(files.pidFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    if (!native().flock(lockFd)) {
      fs.closeSync(lockFd);
      return undefined;
    }
    fs.ftruncateSync(lockFd, 0);
    fs.writeSync(lockFd, `${process.pid}\n`, 0);
    const m = new ShimManager(opts, lockFd);
    try {
      await m.#listen();
      await m.pool.start();
    } catch (err) {
      await m.close();
      throw err;
    }
    if (opts.watch ?? true) {
      m.#unwatch = watchForUpdates(
        [path.join(PACKAGE_ROOT, 'dist'), path.join(PACKAGE_ROOT, 'build'), path.join(PACKAGE_ROOT, 'proto')],
        (file) => {
          m.#log(`${file} changed: shutting down so the next invocation runs the new code`);
          void m.close();
        },
      );
    }
    m.#armIdle();
    // Pay for the runtime library and the protobuf descriptors now, not on the first request.
    setImmediate(() => {
      try {
        /* eslint-disable @typescript-eslint/no-require-imports */
        require('../bootstrap/start');
        require('../bootstrap/delete');
        require('../bootstrap/info');
        require('../../runtime');
        (require('../proto') as typeof import('../proto')).loadBundle();
        /* eslint-enable @typescript-eslint/no-require-imports */
      } catch (err) {
        m.#log(`preload: ${(err as Error).message}`);
      }
    });
    m.#log(`manager ${process.pid} listening on ${m.socket} (warm ${opts.warm ?? 1})`);
    return m;
  }

  /** Requests answered so far. */
  get requests(): number {
    return this.#requests;
  }

  async #listen(): Promise<void> {
    fs.rmSync(this.socket, { force: true }); // stale: we hold the lock, so no live manager owns it
    // allowHalfOpen: the launcher half-closes after its request (shutdown(SHUT_WR)) and reads
    // until EOF; without it Node ends our side at that EOF, and a reply that takes a moment
    // (start asking containerd for its version) finds the connection closed: the launcher
    // then goes cold and runs `start` a second time.
    const server = net.createServer({ allowHalfOpen: true }, (sock) => this.#onConnection(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socket, () => {
        server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(this.socket, 0o600);
    server.on('error', (err) => this.#log(`listener: ${err.message}`));
    this.#server = server;
  }

  #armIdle(): void {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    const ms = this.#opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (ms <= 0 || this.#closing || this.#inFlight > 0) return;
    this.#idle = setTimeout(() => {
      this.#log(`idle for ${ms} ms: shutting down`);
      void this.close();
    }, ms);
  }

  #onConnection(sock: net.Socket): void {
    if (this.#closing) return void sock.destroy();
    this.#connections.add(sock);
    sock.once('close', () => this.#connections.delete(sock));
    sock.on('error', () => undefined);
    sock.setTimeout(REQUEST_TIMEOUT_MS, () => sock.destroy());
    const reader = new MessageReader(REQUEST_MAGIC);
    const onData = (chunk: Buffer): void => {
      let msg: Buffer | undefined;
      try {
        msg = reader.push(chunk);
      } catch (err) {
        this.#log(`bad request: ${(err as Error).message}`);
        return void sock.destroy();
      }
      if (!msg) return;
      sock.off('data', onData);
      sock.setTimeout(0);
      void this.#handle(sock, msg);
    };
    sock.on('data', onData);
  }

  async #handle(sock: net.Socket, msg: Buffer): Promise<void> {
    this.#inFlight++;
    if (this.#idle) clearTimeout(this.#idle);
    const t0 = process.hrtime.bigint();
    try {
      const req = decodeRequest(msg);
      // A new container's Create follows a `start` by ~20 ms: its vkinit's cgroup write then
      // finds the kernel's grace period paid (runtime/cgroups/migration-warmup.ts).
      if (req.argv[req.argv.length - 1] === 'start') warmCgroupMigration(START_WARMUP_MS); // the action comes last
      if (req.pkgroot !== undefined && !samePackage(req.pkgroot)) {
        throw new Error(`the launcher belongs to ${req.pkgroot}, this manager to ${PACKAGE_ROOT}: declined (cold path)`);
      }
      const reply = await runShim(
        { args: req.argv.slice(1), cwd: req.cwd, env: pickShimEnv(req.env), stdin: req.stdin, containerdPid: req.ppid },
        { launcher: this.#launcher, stateRoot: this.#opts.stateRoot },
      );
      this.#requests++;
      sock.end(encodeReply(reply));
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      this.#log(`${reply.action ?? 'invalid'} ${req.argv.slice(1).join(' ')}: exit ${reply.exitCode} in ${ms.toFixed(1)} ms`);
    } catch (err) {
      // No reply: the launcher runs the cold path.
      this.#log(`request failed: ${(err as Error).message}`);
      sock.destroy();
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#drained?.();
      this.#armIdle();
    }
  }

  /** Graceful shutdown; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#idle) clearTimeout(this.#idle);
    this.#unwatch?.();
    const server = this.#server;
    this.#server = undefined;
    const stopped = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    // Connections still sending a request get no answer (their launchers go cold).
    for (const sock of this.#connections) if (!sock.readableEnded && sock.listenerCount('data') > 0) sock.destroy();
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    await this.pool.close();
    await stopped;
    fs.rmSync(this.socket, { force: true });
    try {
      fs.ftruncateSync(this.#lockFd, 0);
      fs.closeSync(this.#lockFd); // releases the lock; the file stays (see start)
    } catch {
      // already closed
    }
    this.#log(`manager ${process.pid} stopped after ${this.#requests} requests`);
    this.#closedResolve();
  }
}

/** Whether a launcher's package root is ours (symlinks resolved; an unreadable one is not). */
export function samePackage(root: string): boolean {
  try {
    return fs.realpathSync(root) === fs.realpathSync(PACKAGE_ROOT);
  } catch {
    return false;
  }
}

/** VKERNEL_SHIM_REUSE_GRACE_MS: a whole number of ms; anything else keeps the default. */
function graceMs(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && value.trim() !== '' && Number.isInteger(n) && n >= 0 ? n : undefined;
}
