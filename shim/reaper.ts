// The shim daemon's one reaper. The daemon is a child subreaper, so container inits and
// detached execs become its children once vkinit (their parent) exits; nobody else will
// wait(2) for them. libuv, though, also reaps: the children Node spawned itself through
// child_process (vkinit, hooks, binary loggers), with waitpid(<its pid>) on SIGCHLD. A
// waitpid(-1) here would steal those exits and hang their ChildProcess forever.
//
// The choice: reap pids we know, exactly. `watch(pid)` declares a pid ours (the shim calls it
// from vkinit's `pid` report, before the process can even become our child), and every
// SIGCHLD runs waitpid(pid, WNOHANG) for each watched pid only.
//
// Orphans we never heard of (a double-forking process in a container without its own pid
// namespace is reparented to us) would otherwise stay zombies. An unknown zombie child is
// reaped only once it has stayed a zombie across a timer (250 ms by default): libuv reaps
// its own children in the poll phase right after SIGCHLD, and a timer that long guarantees a
// poll phase has passed, so a zombie still there is not libuv's. Such exits are kept for a
// while (10 s, bounded in number) in case someone watches that pid late, and are
// told to subscribers. Not longer: pids are reused, and a stale exit must never be handed to
// a new process that happens to get the same pid.
//
// One per process (sharedReaper): a daemon serves group after group (shim/daemon/reuse.ts),
// and its sweeps go on between them, so orphans of one group do not wait for the next.
import * as fs from 'node:fs';
import { native } from '../runtime/native';

export interface ExitStatus {
  pid: number;
  /** WEXITSTATUS, or 128 + signal for a killed process (what containerd reports). */
  status: number;
  /** When we reaped it. */
  exitedAt: Date;
}

export interface ReaperOptions {
  /** Defaults to true: prctl(PR_SET_CHILD_SUBREAPER). */
  subreaper?: boolean;
  /** How long an unknown zombie must stay one before it is reaped (default 250 ms). */
  orphanGraceMs?: number;
  /** How long an orphan's exit is kept for a late watch() (default 10 s). */
  unclaimedTtlMs?: number;
  /** For diagnostics (unknown orphans reaped, lost pids). */
  log?: (msg: string) => void;
}

/** The status containerd uses for a process whose exit could not be observed. */
export const UNKNOWN_EXIT_STATUS = 255;

const MAX_UNCLAIMED = 1024;
/** How long an orphan's exit waits for a late watch(): an early exit is late by milliseconds. */
const DEFAULT_UNCLAIMED_TTL_MS = 10_000;

interface Watch {
  promise: Promise<ExitStatus>;
  resolve(e: ExitStatus): void;
}

export class Reaper {
  readonly #watched = new Map<number, Watch>();
  /** Exits reaped before anyone watched the pid (orphan sweep), oldest first. */
  readonly #unclaimed = new Map<number, ExitStatus>();
  readonly #subscribers = new Set<(e: ExitStatus) => void>();
  /** Unknown zombie pids seen at the last sweep. */
  #suspects = new Set<number>();
  #sweepTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #graceMs: number;
  readonly #unclaimedTtlMs: number;
  #log: (msg: string) => void;
  readonly #onSignal = (): void => this.reap();

  constructor(opts: ReaperOptions = {}) {
    this.#graceMs = opts.orphanGraceMs ?? 250;
    this.#unclaimedTtlMs = opts.unclaimedTtlMs ?? DEFAULT_UNCLAIMED_TTL_MS;
    this.#log = opts.log ?? (() => undefined);
    if (opts.subreaper !== false) native().setChildSubreaper();
    process.on('SIGCHLD', this.#onSignal);
  }

  /**
   * Resolves with the exit of `pid` once it is reaped. Idempotent per pid; call it before the
   * process can exit unseen (the shim does it from vkinit's pid report). An exit the orphan
   * sweep already took is returned at once.
   */
  watch(pid: number): Promise<ExitStatus> {
    const existing = this.#watched.get(pid);
    if (existing) return existing.promise;
    let resolve!: (e: ExitStatus) => void;
    const promise = new Promise<ExitStatus>((r) => (resolve = r));
    const w: Watch = { promise, resolve };
    this.#watched.set(pid, w);
    let early = this.#unclaimed.get(pid);
    if (early && Date.now() - early.exitedAt.getTime() > this.#unclaimedTtlMs) {
      this.#unclaimed.delete(pid); // another process that had this pid once
      early = undefined;
    }
    if (early) {
      this.#unclaimed.delete(pid);
      this.#settle(pid, early, false); // subscribers heard of it when it was swept
    } else {
      this.#tryReap(pid);
    }
    return promise;
  }

  /** Stops watching a pid (a create that failed: vkinit reaped it, or it never existed). */
  unwatch(pid: number): void {
    this.#watched.delete(pid);
  }

  /** Every exit this reaper reaps, watched or orphan. Returns the unsubscribe function. */
  subscribe(fn: (e: ExitStatus) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** Pids being watched and not yet reaped. */
  get watching(): number[] {
    return [...this.#watched.keys()];
  }

  /** One reaping round: every watched pid, then a look for unknown zombies. Runs on SIGCHLD. */
  reap(): void {
    if (this.#closed) return;
    for (const pid of [...this.#watched.keys()]) this.#tryReap(pid);
    this.#lookForOrphans();
  }

  /** Where diagnostics go from now on (the group being served). */
  setLog(log: (msg: string) => void): void {
    this.#log = log;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    process.off('SIGCHLD', this.#onSignal);
    clearTimeout(this.#sweepTimer);
  }

  #tryReap(pid: number): void {
    let r: [number, number, number] | null;
    try {
      r = native().waitpid(pid, true);
    } catch (err) {
      if ((err as { errno?: number }).errno !== ECHILD) throw err;
      // Not our child. Still alive: it is vkinit's child until vkinit exits (then ours).
      // Gone: its parent reaped it (a failed create/exec) and we will never see a status.
      if (!fs.existsSync(`/proc/${pid}`)) {
        this.#log(`reaper: pid ${pid} is gone and was not our child: exit status unknown`);
        this.#settle(pid, { pid, status: UNKNOWN_EXIT_STATUS, exitedAt: new Date() });
      }
      return;
    }
    if (r === null) return;
    this.#settle(pid, toExit(r));
  }

  #settle(pid: number, e: ExitStatus, tell = true): void {
    const w = this.#watched.get(pid);
    this.#watched.delete(pid);
    w?.resolve(e);
    if (tell) this.#tell(e);
  }

  #tell(e: ExitStatus): void {
    for (const fn of this.#subscribers) {
      try {
        fn(e);
      } catch (err) {
        this.#log(`reaper: subscriber failed: ${(err as Error).message}`);
      }
    }
  }

  /** Cheap check first (waitid WNOWAIT); the /proc walk only when an unknown zombie exists. */
  #lookForOrphans(): void {
    let pid: number;
    try {
      pid = native().peekExitedChild();
    } catch {
      return;
    }
    if (pid === 0 || this.#sweepTimer) return;
    this.#sweepTimer = setTimeout(() => this.#sweep(), this.#graceMs);
    this.#sweepTimer.unref();
  }

  #sweep(): void {
    this.#sweepTimer = undefined;
    if (this.#closed) return;
    const zombies = zombieChildren().filter((pid) => !this.#watched.has(pid));
    const next = new Set<number>();
    for (const pid of zombies) {
      if (!this.#suspects.has(pid)) {
        next.add(pid); // first sighting: give libuv its poll phase
        continue;
      }
      let r: [number, number, number] | null = null;
      try {
        r = native().waitpid(pid, true);
      } catch {
        continue; // reaped meanwhile
      }
      if (r === null) continue;
      const e = toExit(r);
      this.#log(`reaper: reaped orphan pid ${pid} (status ${e.status})`);
      this.#unclaimed.set(pid, e);
      if (this.#unclaimed.size > MAX_UNCLAIMED) this.#unclaimed.delete(this.#unclaimed.keys().next().value!);
      this.#tell(e);
    }
    this.#suspects = next;
    if (next.size > 0) {
      this.#sweepTimer = setTimeout(() => this.#sweep(), this.#graceMs);
      this.#sweepTimer.unref();
    }
  }
}

const ECHILD = 10;

function toExit([pid, code, signal]: [number, number, number]): ExitStatus {
  return { pid, status: signal > 0 ? 128 + signal : code, exitedAt: new Date() };
}

/** Our zombie children, from /proc/self/task/<tid>/children (children hang off the thread that got them). */
export function zombieChildren(): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/self/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const p of text.split(' ')) {
      const pid = Number(p);
      if (!pid) continue;
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') out.push(pid);
      } catch {
        // gone meanwhile
      }
    }
  }
  return out;
}

let shared: Reaper | undefined;

/** The process's reaper (created on first use; it is never closed): what a shim daemon uses. */
export function sharedReaper(log: (msg: string) => void): Reaper {
  shared ??= new Reaper();
  shared.setLog(log);
  return shared;
}
