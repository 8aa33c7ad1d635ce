// OOM notification by polling. The event-driven v1 API (cgroup.event_control + eventfd on
// memory.oom_control) and v2's inotify on memory.events both need native code in Node, so
// for now the counters are polled at an interval:
//   v1: memory.oom_control "oom_kill" (kills) and "under_oom" rising edges (OOM with the
//       killer disabled), v2: memory.events "oom_kill" and "oom".
// An eventfd/inotify implementation can replace pollOomEvents behind the same
// AsyncIterable<OomEvent> without changing callers.

export interface OomEvent {
  /** oom_kill: a process was OOM-killed; oom: the cgroup hit its limit (no kill counted). */
  kind: 'oom' | 'oom_kill';
  /** The counter after the event (oom_kill count, or the number of OOM episodes seen). */
  count: number;
}

export interface OomEventOptions {
  /** Poll interval, default 250ms. */
  intervalMs?: number;
  /** Stops the iteration. */
  signal?: AbortSignal;
}

export interface OomCounters {
  oomKill: number;
  /** v2 memory.events "oom" counter. */
  oom?: number;
  /** v1 under_oom flag. */
  underOom?: boolean;
}

function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Yields an event each time the counters move. Ends when `read` returns undefined (the
 * cgroup is gone) or the signal aborts. Events that happened before the first poll are not
 * reported (compare oomKillCount() yourself if you need them).
 */
export async function* pollOomEvents(
  read: () => Promise<OomCounters | undefined>,
  opts: OomEventOptions = {},
): AsyncGenerator<OomEvent, void, undefined> {
  const interval = opts.intervalMs ?? 250;
  let prev = await read();
  if (prev === undefined) return;
  let episodes = prev.oom ?? 0;
  while (!opts.signal?.aborted) {
    await wait(interval, opts.signal);
    if (opts.signal?.aborted) return;
    const cur = await read();
    if (cur === undefined) return;
    if (cur.oomKill > prev.oomKill) {
      if (cur.oom !== undefined) episodes = cur.oom;
      yield { kind: 'oom_kill', count: cur.oomKill };
    } else if (cur.oom !== undefined && cur.oom > (prev.oom ?? 0)) {
      episodes = cur.oom;
      yield { kind: 'oom', count: episodes };
    } else if (cur.underOom && !prev.underOom) {
      episodes++;
      yield { kind: 'oom', count: episodes };
    }
    prev = cur;
  }
}
