// OOM notifications. The counters are read from the cgroup (v1: memory.oom_control
// "oom_kill" and "under_oom"; v2: memory.events "oom_kill" and "oom"); what decides when to
// read them is a wake-up source:
//   v1: an eventfd registered through cgroup.event_control on memory.oom_control: the
//       kernel signals it at every OOM of the cgroup (before the kill) and when the cgroup
//       is removed. A native thread waits on it (runtime/native watchEventfd), so neither
//       the event loop nor the libuv thread pool blocks.
//   v2: inotify (fs.watch) on the cgroup directory: the kernel reports each change of
//       memory.events there, and the removal of the directory.
//   fallback: a timer every intervalMs, only where the source cannot be set up (no
//       cgroup.event_control, no native addon, a watch that fails).
// After a wake the counters are compared with the previous read: a higher oom_kill is an
// `oom_kill` event. An OOM signalled without a kill (the eventfd itself, v2 "oom" rising,
// v1 under_oom rising) waits up to OOM_KILL_GRACE_MS for the kill that usually follows (the
// kernel notifies before the OOM killer has picked a victim), so one OOM is one event; if
// none comes it is an `oom` event (e.g. disableOOMKiller), as it is when the cgroup is
// removed meanwhile. The v1 eventfd also signals once when the cgroup is removed, so a
// cgroup found gone with one notification more than that unread is an OOM too, one whose
// counters could not be read any more (a foreground `run` deletes the cgroup right after
// the kill).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../native';
import type { CgroupFs } from './fs';

export interface OomEvent {
  /** oom_kill: a process was OOM-killed; oom: the cgroup hit its limit (no kill counted). */
  kind: 'oom' | 'oom_kill';
  /** The counter after the event (oom_kill count, or the number of OOM episodes seen). */
  count: number;
}

export interface OomEventOptions {
  /** Poll interval of the fallback (when no event source can be set up), default 250ms. */
  intervalMs?: number;
  /** Stops the iteration. */
  signal?: AbortSignal;
  /** Called once the stream watches and has read its baseline: every OOM after is reported. */
  onWatching?: () => void;
}

export interface OomCounters {
  oomKill: number;
  /** v2 memory.events "oom" counter. */
  oom?: number;
  /** v1 under_oom flag. */
  underOom?: boolean;
}

/** A started wake-up source. */
export interface OomWatch {
  close(): void;
}

/** Where wake-ups come from; start() throws when the mechanism is unavailable. */
export interface OomSource {
  /**
   * Each wake is itself an OOM notification (v1 eventfd), not just "something changed";
   * the removal of the cgroup is then one notification too.
   */
  readonly wakeMeansOom: boolean;
  /** wake(n): n notifications arrived (default 1; 0 for a wake that is none, e.g. a failed watch). */
  start(wake: (notifications?: number) => void): Promise<OomWatch>;
}

/** How long an OOM without a counted kill waits for the kill before it is an `oom` event. */
export const OOM_KILL_GRACE_MS = 250;
/** While waiting for that kill the counters are re-read this often. */
const PENDING_RECHECK_MS = 10;
/**
 * How long a cgroup found gone waits for another eventfd notification when only one is unread
 * (was it the OOM's or the removal's?). Usually it was the removal's, and no other comes: a
 * stream that is not aborted then ends this long after the removal. When it was an OOM's, the
 * removal's follows within milliseconds (the kernel sends it from a work item after the
 * directory is gone); the margin is for a loaded host. Only the end of the stream waits, never
 * an event; the shim and `vkernel events` abort or bound their wait.
 */
export const REMOVAL_NOTICE_WAIT_MS = 1000;

/** A timer source: the polling fallback. */
export function timerSource(intervalMs: number): OomSource {
  return {
    wakeMeansOom: false,
    start: async (wake) => {
      const t = setInterval(wake, intervalMs);
      return { close: () => clearInterval(t) };
    },
  };
}

const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

/**
 * v1: an eventfd registered for memory.oom_control of `dir` (cgroup.event_control written
 * through `cfs`, so a fake tree without that file falls back to polling).
 */
export function eventfdOomSource(cfs: CgroupFs, dir: string): OomSource {
  return {
    wakeMeansOom: true,
    start: async (wake) => {
      const control = path.join(dir, 'cgroup.event_control');
      if (!(await cfs.exists(control))) throw new Error(`${control} does not exist`);
      const n = native();
      const efd = n.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      let ofd: number | undefined;
      try {
        ofd = fs.openSync(path.join(dir, 'memory.oom_control'), fs.constants.O_RDONLY);
        await cfs.write(control, `${efd} ${ofd}`);
      } catch (err) {
        fs.closeSync(efd);
        throw err;
      } finally {
        // The registration holds what it needs; the file itself can go.
        if (ofd !== undefined) fs.closeSync(ofd);
      }
      // The value is the number of signals since the last read: several OOMs, or an OOM and
      // the removal, can come as one. A failed watch is a wake without a notification.
      const w = n.watchEventfd(efd, (value, errno) => wake(errno === 0 ? value : 0));
      let closed = false;
      return {
        close: () => {
          if (closed) return;
          closed = true;
          n.unwatchEventfd(w);
          fs.closeSync(efd);
        },
      };
    },
  };
}

/** v2: inotify on the cgroup directory (memory.events changes and the directory's removal). */
export function inotifyOomSource(dir: string): OomSource {
  return {
    wakeMeansOom: false,
    start: async (wake) => {
      const w = fs.watch(dir, { persistent: true }, (event, name) => {
        if (event === 'rename' || name === null || name === 'memory.events') wake();
      });
      // A watch that fails later (the directory went away) wakes the reader, which ends.
      w.on('error', wake);
      return { close: () => w.close() };
    },
  };
}

/**
 * Yields an event for each OOM (see above). Ends when `read` returns undefined (the cgroup
 * is gone) or the signal aborts. Events that happened before the iteration began are not
 * reported (compare oomKillCount() yourself if you need them). Without `source`, or when it
 * cannot start, the counters are polled every intervalMs.
 */
export async function* oomEventStream(
  read: () => Promise<OomCounters | undefined>,
  source: OomSource | undefined,
  opts: OomEventOptions = {},
): AsyncGenerator<OomEvent, void, undefined> {
  const signal = opts.signal;
  if (signal?.aborted) return;
  let woken = false;
  /** Notifications (wakeMeansOom) that no read issued after them has seen the cgroup for. */
  let unread = 0;
  let waiter: (() => void) | undefined;
  const wakeWith =
    (oom: boolean) =>
    (notifications = 1): void => {
      woken = true;
      if (oom) unread += notifications;
      waiter?.();
    };
  /** Until a wake, the abort, or `timeout` ms (none: no timeout). */
  const nextWake = async (timeout?: number): Promise<void> => {
    await new Promise<void>((resolve) => {
      const t = timeout === undefined ? undefined : setTimeout(resolve, timeout);
      waiter = () => {
        if (t) clearTimeout(t);
        resolve();
      };
    });
    waiter = undefined;
  };
  let watch: OomWatch | undefined;
  let wakeMeansOom = false;
  if (source) {
    try {
      watch = await source.start(wakeWith(source.wakeMeansOom));
      wakeMeansOom = source.wakeMeansOom;
    } catch {
      watch = undefined;
    }
  }
  // Read the baseline only once watching, so nothing between the two is missed.
  watch ??= await timerSource(opts.intervalMs ?? 250).start(wakeWith(false));
  const onAbort = (): void => waiter?.();
  signal?.addEventListener('abort', onAbort, { once: true });
  /**
   * The cgroup is gone: was an OOM notified that no read saw? The removal itself is one
   * notification (the eventfd's last), so two unread mean yes; with one, it waits (bounded)
   * for the removal's to tell which that one was.
   */
  const unreadOomAtRemoval = async (): Promise<boolean> => {
    if (!wakeMeansOom) return false;
    const end = Date.now() + REMOVAL_NOTICE_WAIT_MS;
    while (unread === 1 && !signal?.aborted && Date.now() < end) await nextWake(end - Date.now());
    return unread >= 2;
  };
  try {
    // A read sees the counters after the notifications that came before it.
    let seen = unread;
    let prev = await read();
    if (prev === undefined) return;
    unread -= seen;
    opts.onWatching?.();
    let episodes = prev.oom ?? 0;
    /** When an OOM without a counted kill was first seen (waiting for its kill). */
    let pendingSince: number | undefined;
    while (!signal?.aborted) {
      if (!woken) {
        const timeout =
          pendingSince === undefined ? undefined : Math.max(0, Math.min(PENDING_RECHECK_MS, pendingSince + OOM_KILL_GRACE_MS - Date.now()));
        await nextWake(timeout);
      }
      if (signal?.aborted) return;
      woken = false;
      seen = unread;
      const cur = await read();
      if (cur === undefined) {
        // The cgroup went away while an OOM it signalled waited for its kill, or before the
        // counters could be read after its notification: still an OOM.
        if (pendingSince !== undefined || (await unreadOomAtRemoval())) yield { kind: 'oom', count: episodes + 1 };
        return;
      }
      unread -= seen;
      const notified = seen > 0;
      if (cur.oomKill > prev.oomKill) {
        pendingSince = undefined;
        if (cur.oom !== undefined) episodes = cur.oom;
        yield { kind: 'oom_kill', count: cur.oomKill };
      } else {
        const signalled = notified || (cur.oom !== undefined && cur.oom > (prev.oom ?? 0)) || (cur.underOom === true && !prev.underOom);
        if (signalled && pendingSince === undefined) pendingSince = Date.now();
        if (pendingSince !== undefined && Date.now() - pendingSince >= OOM_KILL_GRACE_MS) {
          pendingSince = undefined;
          episodes = cur.oom !== undefined && cur.oom > episodes ? cur.oom : episodes + 1;
          yield { kind: 'oom', count: episodes };
        }
      }
      prev = cur;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    watch.close();
  }
}

/** The polling-only stream (kept for callers that want no event source). */
export function pollOomEvents(
  read: () => Promise<OomCounters | undefined>,
  opts: OomEventOptions = {},
): AsyncGenerator<OomEvent, void, undefined> {
  return oomEventStream(read, undefined, opts);
}
