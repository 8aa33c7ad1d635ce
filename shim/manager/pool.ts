// The warm pool: daemons started ahead of need, so a new group's `start` hands out a process
// that has already paid Node's boot and module loading (~200 ms) instead of spawning one.
//
// Each warm daemon runs `node dist/shim/daemon/main.js --warm <control socket>` in its own
// session with stdio on /dev/null, connects back, says {"pid":N}, and waits. Adopting one
// sends it the DaemonConfig line with the group's listening socket attached (SCM_RIGHTS) and
// closes our end; from then on the manager has nothing to do with it, until the daemon's group
// ends and it checks in again with {"pid":N,"reuse":K} (shim/daemon/reuse.ts): taken back
// while the pool has room, else it exits; or, when it may not be reused, it says
// {"pid":N,"leaving":"<why>"} and exits. Each hand-off holds its daemon's slot for the grace
// period: a spare is booted for it only if it is not back by then. Closing the pool (or
// the manager dying) closes the control connections of the daemons still waiting, and they
// exit. A daemon that dies before checking in counts as a failure: after a few in a row,
// refilling backs off, so a broken install does not become a fork loop.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as net from 'node:net';
import { native } from '../../runtime/native';
import type { DaemonLaunch } from '../bootstrap/daemon-config';
import { childEnv, DAEMON_MAIN, DAEMON_NODE_FLAGS } from '../bootstrap/paths';
import { adjustOomScore } from '../bootstrap/spawn';

export interface WarmPoolOptions {
  /** Daemons kept waiting (0 disables the pool). */
  size: number;
  controlSocket: string;
  /** Environment of the daemons (the manager's). */
  env?: NodeJS.ProcessEnv;
  /** How long a spawned daemon may take to check in before it is killed (default 30 s). */
  checkInTimeoutMs?: number;
  /**
   * Daemons come back after their group ended (shim/daemon/reuse.ts; VKERNEL_SHIM_REUSE is not
   * 0): each hand-off holds its slot; a spare is booted for it only if the daemon is not back
   * within the grace period.
   */
  reuse?: boolean;
  /** That grace period (default REUSE_GRACE_MS; VKERNEL_SHIM_REUSE_GRACE_MS in the manager's environment). */
  reuseGraceMs?: number;
  log?: (msg: string) => void;
}

interface Spawned {
  child: ChildProcess;
  timer: NodeJS.Timeout;
}

interface Waiting {
  pid: number;
  socket: net.Socket;
  fd: number;
}

interface CheckIn {
  pid?: unknown;
  /** Groups a returning daemon served after its first (absent for a new daemon). */
  reuse?: unknown;
  /** A handed-out daemon that may not come back says why (shim/daemon/reuse.ts), then exits. */
  leaving?: unknown;
}

const FAILURES_BEFORE_BACKOFF = 3;
/** A spawn that got no process is tried again after this long (until the backoff takes over). */
const SPAWN_RETRY_MS = 1000;
/** How long a start waits for a booting spare before it spawns a daemon of its own. */
const BOOTING_SPARE_WAIT_MS = 300;
/** First pause after FAILURES_BEFORE_BACKOFF failures in a row; doubles each time, up to the max. */
const BACKOFF_MS = 10_000;
const MAX_BACKOFF_MS = 5 * 60_000;
/**
 * How long after a hand-off the pool waits for a daemon to come back before it boots a new
 * one. `ctr run --rm` takes ~150 ms end to end; a spare booted at once instead would spend
 * its Node boot beside that container's Create and mostly be surplus when the daemon returns.
 */
export const REUSE_GRACE_MS = 1000;
/** Pids handed out that may come back; a bound on what daemons that exit leave here. */
const MAX_REMEMBERED = 4096;

/** The fd under a connected net.Socket (libuv's pipe handle); needed for sendmsg(SCM_RIGHTS). */
function socketFd(sock: net.Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

export class WarmPool {
  readonly #opts: Required<Omit<WarmPoolOptions, 'log'>> & { log: (msg: string) => void };
  readonly #spawned = new Map<number, Spawned>();
  readonly #waiting: Waiting[] = [];
  /** adopt() calls waiting for a booting spare to check in. */
  readonly #checkInWaiters = new Set<() => void>();
  readonly #connections = new Set<net.Socket>();
  #server: net.Server | undefined;
  #closed = false;
  #failures = 0;
  #backoff: NodeJS.Timeout | undefined;
  /** Daemons this pool handed out: only they may come back (not another manager's, not old code). */
  readonly #handedOut = new Set<number>();
  /**
   * Daemons handed out whose grace period runs (pid → when it ends, performance.now(): a clock
   * step must not stretch a hold): each holds its slot, so
   * no spare is booted for it until then. One deadline per daemon: a shared timer would be
   * pushed back by every later hand-off (a slot never refilled under steady starts) or fire
   * for an earlier hand-off while a daemon that always returns in time is out again.
   */
  readonly #graceUntil = new Map<number, number>();
  /** Fires at the earliest deadline in #graceUntil. */
  #refill: NodeJS.Timeout | undefined;

  constructor(opts: WarmPoolOptions) {
    this.#opts = {
      size: opts.size,
      controlSocket: opts.controlSocket,
      env: opts.env ?? process.env,
      checkInTimeoutMs: opts.checkInTimeoutMs ?? 30_000,
      reuse: opts.reuse ?? false,
      reuseGraceMs: opts.reuseGraceMs ?? REUSE_GRACE_MS,
      log: opts.log ?? (() => undefined),
    };
  }

  /** Daemons ready to adopt. */
  get ready(): number {
    return this.#waiting.length;
  }

  /** Pids of the daemons spawned or waiting (not yet adopted). */
  get pids(): number[] {
    return [...this.#spawned.keys(), ...this.#waiting.map((w) => w.pid)];
  }

  /** Listens on the control socket (replacing a stale one: the caller holds the manager lock) and fills the pool. */
  async start(): Promise<void> {
    if (this.#opts.size <= 0) return;
    const path = this.#opts.controlSocket;
    fs.rmSync(path, { force: true });
    const server = net.createServer((sock) => this.#onConnection(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(path, 0o600);
    server.on('error', (err) => this.#opts.log(`control socket: ${err.message}`));
    server.unref();
    this.#server = server;
    this.fill();
  }

  /** Spawns daemons until `size` are waiting, on their way, or held for a daemon in its grace period. */
  fill(): void {
    // Passed deadlines go first, even while backing off: the timer is set from what is left.
    const now = performance.now();
    for (const [pid, until] of this.#graceUntil) if (until <= now) this.#graceUntil.delete(pid);
    if (this.#closed || this.#backoff || !this.#server) return;
    while (this.#spawned.size + this.#waiting.length + this.#graceUntil.size < this.#opts.size) {
      if (!this.#spawnOne()) break;
    }
  }

  #spawnOne(): boolean {
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_MAIN, '--warm', this.#opts.controlSocket], {
      cwd: '/',
      detached: true,
      stdio: 'ignore',
      env: childEnv(this.#opts.env),
    });
    child.on('error', (err) => this.#opts.log(`warm daemon spawn: ${err.message}`));
    child.unref();
    const pid = child.pid;
    if (pid === undefined) {
      // No process (EAGAIN, ENOMEM): nothing will exit or check in to trigger the next try.
      this.#failed();
      if (!this.#backoff) setTimeout(() => this.fill(), SPAWN_RETRY_MS).unref();
      return false;
    }
    setNice(pid, BOOT_NICE);
    const timer = setTimeout(() => {
      this.#opts.log(`warm daemon ${pid} did not check in within ${this.#opts.checkInTimeoutMs} ms: killing it`);
      child.kill('SIGKILL');
    }, this.#opts.checkInTimeoutMs);
    timer.unref();
    this.#spawned.set(pid, { child, timer });
    child.once('exit', (code, signal) => {
      const s = this.#spawned.get(pid);
      if (!s) return; // checked in earlier: its control connection tracks it now
      clearTimeout(s.timer);
      this.#spawned.delete(pid);
      if (this.#closed) return;
      this.#opts.log(`warm daemon ${pid} exited before checking in (code ${code}, signal ${signal})`);
      this.#failed();
      this.fill();
    });
    return true;
  }

  #failed(): void {
    if (++this.#failures < FAILURES_BEFORE_BACKOFF || this.#backoff) return;
    const ms = Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** (this.#failures - FAILURES_BEFORE_BACKOFF));
    this.#opts.log(`${this.#failures} warm daemons failed in a row: refilling again in ${ms} ms`);
    this.#backoff = setTimeout(() => {
      this.#backoff = undefined;
      this.fill();
    }, ms);
    this.#backoff.unref();
  }

  #onConnection(sock: net.Socket): void {
    let buf = '';
    const bail = (why: string): void => {
      this.#opts.log(`control connection dropped: ${why}`);
      sock.destroy();
    };
    this.#connections.add(sock);
    sock.once('close', () => this.#connections.delete(sock));
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    const onData = (chunk: string): void => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 4096) bail('check-in line too long');
        return;
      }
      sock.off('data', onData);
      let msg: CheckIn;
      try {
        msg = JSON.parse(buf.slice(0, nl)) as CheckIn;
      } catch {
        return bail('check-in is not JSON');
      }
      const pid = msg?.pid;
      if (typeof pid !== 'number') return bail(`check-in from unknown pid ${String(pid)}`);
      const fd = socketFd(sock);
      if (fd < 0) return bail('no fd under the control connection');
      // The pid is the kernel's word (SO_PEERCRED), not the message's: whoever checks in is
      // handed a group's socket later.
      let peer = -1;
      try {
        peer = native().peerPid(fd);
      } catch {
        // below: refused
      }
      if (peer !== pid) return bail(`check-in says pid ${pid}, but the connection is from pid ${peer}`);
      if (msg.leaving !== undefined) return this.#onLeaving(pid, String(msg.leaving), sock);
      const reused = msg.reuse !== undefined;
      if (reused) this.#release(pid); // back: its slot is no longer held, whatever happens next
      const spawned = this.#spawned.get(pid);
      if (reused) {
        // Back from a group: ours, and wanted. Refused, it exits at the end of the stream.
        if (!this.#handedOut.delete(pid)) return bail(`daemon ${pid} came back, but this manager did not hand it out`);
      } else if (!spawned) {
        return bail(`check-in from unknown pid ${pid}`);
      } else {
        clearTimeout(spawned.timer);
        this.#spawned.delete(pid);
      }
      // Never more waiting than the pool's size: a spare that finished booting after a
      // daemon came back (or the other way round) is let go; it exits at the end of the stream.
      if (this.#closed || (reused && !this.#opts.reuse) || this.#waiting.length >= this.#opts.size) {
        if (!this.#closed) this.#opts.log(`warm daemon ${pid} ${reused ? 'came back' : 'checked in'}: not needed, it exits`);
        return void sock.destroy();
      }
      // Booted: back to our own priority before it serves anyone.
      if (spawned) setNice(pid, os.getPriority());
      const waiting: Waiting = { pid, socket: sock, fd };
      this.#waiting.push(waiting);
      for (const wake of this.#checkInWaiters) wake();
      this.#failures = 0;
      this.#opts.log(`warm daemon ${pid} ready${reused ? ` (back, reused ${String(msg.reuse)} times)` : ''}`);
      sock.once('close', () => {
        const i = this.#waiting.indexOf(waiting);
        if (i < 0) return; // adopted
        this.#waiting.splice(i, 1);
        this.#opts.log(`warm daemon ${pid} went away while waiting`);
        if (!this.#closed) setImmediate(() => this.fill());
      });
    };
    sock.on('data', onData);
  }

  /**
   * Hands a waiting daemon the group: the config line with the listening socket attached.
   * Resolves with its pid, or undefined when none is waiting (the caller spawns one directly).
   * Refilling starts in the background either way.
   */
  async adopt(l: DaemonLaunch): Promise<number | undefined> {
    const line = Buffer.from(`${JSON.stringify(l.config)}\n`);
    let handedOut: number | undefined;
    try {
      // None waiting (a burst): boot the refill now rather than after the grace period.
      if (this.#waiting.length === 0) this.#fillNow(true);
      // A spare still booting is further along than a daemon spawned now: wait for it a
      // little (at full priority), rather than start a second cold one.
      if (this.#waiting.length === 0 && this.#spawned.size > 0 && !this.#closed) await this.#nextCheckIn(BOOTING_SPARE_WAIT_MS);
      while (this.#waiting.length > 0) {
        const w = this.#waiting.shift()!;
        try {
          native().sendFd(w.fd, line, l.listenFd);
        } catch (err) {
          this.#opts.log(`warm daemon ${w.pid}: adopt failed: ${(err as Error).message}`);
          w.socket.destroy();
          continue;
        }
        // The message is queued on the daemon's side; closing ours cannot lose it.
        w.socket.destroy();
        adjustOomScore(w.pid, l.containerdPid);
        this.#remember(w.pid);
        handedOut = w.pid;
        this.#opts.log(`warm daemon ${w.pid} adopted for group ${l.config.groupId}`);
        return w.pid;
      }
      return undefined;
    } finally {
      if (handedOut !== undefined && this.#opts.reuse) this.#hold(handedOut);
      else this.#fillNow();
    }
  }

  /**
   * A daemon handed out will not come back. If its slot is still held (its grace period
   * runs), no point waiting that out: refill now. If not, a spare took its slot long ago.
   */
  #onLeaving(pid: number, why: string, sock: net.Socket): void {
    sock.destroy();
    if (!this.#handedOut.delete(pid)) return void this.#opts.log(`control connection dropped: daemon ${pid} leaves, but this manager did not hand it out`);
    this.#opts.log(`warm daemon ${pid} does not come back: ${why.slice(0, 200)}`);
    if (this.#release(pid) && !this.#closed) setImmediate(() => this.fill());
  }

  #remember(pid: number): void {
    this.#handedOut.add(pid);
    if (this.#handedOut.size > MAX_REMEMBERED) this.#handedOut.delete(this.#handedOut.values().next().value!);
  }

  /**
   * Refills without waiting for anyone's grace period, at once (`sync`: a start is about to
   * wait for it) or next tick: a burst, or no daemon handed out. The held slots go to the
   * starts that need a daemon now; a daemon coming back to a full pool exits.
   */
  #fillNow(sync = false): void {
    this.#graceUntil.clear();
    this.#scheduleGrace();
    if (sync) this.fill();
    else setImmediate(() => this.fill());
  }

  /** Holds the slot of a daemon just handed out for the grace period, and fills any other gap. */
  #hold(pid: number): void {
    this.#graceUntil.set(pid, performance.now() + this.#opts.reuseGraceMs);
    this.#scheduleGrace();
    setImmediate(() => this.fill());
  }

  /** The daemon's slot is no longer held (it came back, or said it leaves); whether it was. */
  #release(pid: number): boolean {
    const held = this.#graceUntil.delete(pid);
    if (held) this.#scheduleGrace();
    return held;
  }

  /** The refill timer, at the earliest grace deadline (none when nothing is held). */
  #scheduleGrace(): void {
    if (this.#refill) clearTimeout(this.#refill);
    this.#refill = undefined;
    if (this.#graceUntil.size === 0 || this.#closed) return;
    const first = Math.min(...this.#graceUntil.values());
    this.#refill = setTimeout(() => {
      this.#refill = undefined;
      this.fill(); // drops the deadlines that passed
      this.#scheduleGrace();
    }, Math.max(0, first - performance.now()));
    this.#refill.unref();
  }

  #nextCheckIn(timeoutMs: number): Promise<void> {
    for (const pid of this.#spawned.keys()) setNice(pid, os.getPriority());
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#checkInWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#checkInWaiters.add(done);
    });
  }

  /** Stops refilling, lets waiting daemons go (they exit on end of stream), kills unchecked ones. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#backoff) clearTimeout(this.#backoff);
    if (this.#refill) clearTimeout(this.#refill);
    this.#waiting.splice(0);
    for (const sock of this.#connections) sock.destroy();
    for (const [, s] of this.#spawned) {
      clearTimeout(s.timer);
      s.child.kill('SIGTERM');
    }
    this.#spawned.clear();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * A spare daemon boots Node (~200 ms of CPU) right after a hand-off, while the container
 * that took the previous one is being created: at nice 10 the boot yields to it on a busy
 * host, and the spare still checks in long before the next new group usually needs it.
 */
const BOOT_NICE = 10;

/** Every thread of `pid` (a nice value is per thread; new threads inherit their creator's). */
function setNice(pid: number, nice: number): void {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    tids = [String(pid)];
  }
  for (const tid of tids) {
    try {
      os.setPriority(Number(tid), nice);
    } catch {
      // gone already, or not permitted: only a matter of speed
    }
  }
}
