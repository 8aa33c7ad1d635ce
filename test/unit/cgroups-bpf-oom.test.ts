// OOM notifications without polling (runtime/cgroups/oom.ts): the event stream over a
// wake-up source, and the v2 driver's inotify source on the file-tree fake (its
// memory.events is a real file, so fs.watch sees the writes as it sees the kernel's).
// The v1 eventfd source needs a real memory cgroup: see test/integration/resources.test.ts.

import * as fs from 'node:fs';
import { createCgroupManager } from '../../runtime/cgroups/manager';
import {
  OOM_KILL_GRACE_MS,
  oomEventStream,
  type OomCounters,
  type OomEvent,
  type OomSource,
} from '../../runtime/cgroups/oom';
import { FakeCgroupTree } from '../../runtime/cgroups/testing';

const trees: FakeCgroupTree[] = [];
afterAll(() => trees.forEach((t) => t.cleanup()));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(fn: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!fn() && Date.now() < end) await sleep(5);
  return fn();
}

/** Collects a stream's events as "kind:count" until it ends. */
function collect(stream: AsyncIterable<OomEvent>): { seen: string[]; done: Promise<void> } {
  const seen: string[] = [];
  const done = (async () => {
    for await (const e of stream) seen.push(`${e.kind}:${e.count}`);
  })();
  return { seen, done };
}

/** onWatching for a stream's options, and a promise that it was called. */
function watchingSignal(): { onWatching: () => void; watching: Promise<void> } {
  let onWatching!: () => void;
  const watching = new Promise<void>((r) => (onWatching = r));
  return { onWatching, watching };
}

/** A source the test triggers by hand; wake(n) delivers n notifications at once. */
function manualSource(wakeMeansOom: boolean): OomSource & { wake(n?: number): void; closed: boolean } {
  let wake: ((n?: number) => void) | undefined;
  const s = {
    wakeMeansOom,
    closed: false,
    wake: (n?: number) => wake?.(n),
    start: async (w: (n?: number) => void) => {
      wake = w;
      return { close: () => void (s.closed = true) };
    },
  };
  return s;
}

describe('oomEventStream', () => {
  test('an eventfd-style wake (itself an OOM): the kill that follows makes it one oom_kill event', async () => {
    let c: OomCounters | undefined = { oomKill: 0, underOom: false };
    const src = manualSource(true);
    const { seen, done } = collect(oomEventStream(async () => c, src, { intervalMs: 600_000 }));
    await sleep(10);
    src.wake(); // notified before the kill is counted
    await sleep(20);
    c = { oomKill: 1, underOom: false }; // re-read while waiting for the kill
    expect(await until(() => seen.length === 1)).toBe(true);
    await sleep(OOM_KILL_GRACE_MS + 50);
    expect(seen).toEqual(['oom_kill:1']);
    // A notification without a kill (disableOOMKiller): an oom event after the grace time.
    c = { oomKill: 1, underOom: true };
    src.wake();
    expect(await until(() => seen.length === 2)).toBe(true);
    expect(seen).toEqual(['oom_kill:1', 'oom:1']);
    c = undefined; // the cgroup is gone: the stream ends and closes its source
    src.wake(); // the removal's notification alone: no event
    await done;
    expect(src.closed).toBe(true);
    expect(seen).toEqual(['oom_kill:1', 'oom:1']);
  });

  // A foreground `run` deletes the cgroup right after the kill, which can be before the
  // counters are read: the OOM's notification plus the removal's are one more than a removal
  // alone, whether they come as two wakes or as one counter value of 2.
  test.each([
    ['an OOM and the removal, two wakes', [1, 1], ['oom:1']],
    ['an OOM and the removal, one counter value of 2', [2], ['oom:1']],
    ['the removal alone', [1], []],
  ])('notifications whose read finds the cgroup removed: %s', async (_what, wakes, want) => {
    let c: OomCounters | undefined = { oomKill: 0 };
    const src = manualSource(true);
    const { onWatching, watching } = watchingSignal();
    const { seen, done } = collect(oomEventStream(async () => c, src, { onWatching }));
    await watching;
    c = undefined;
    for (const n of wakes) src.wake(n);
    await done;
    expect(seen).toEqual(want);
    expect(src.closed).toBe(true);
  });

  test('the removal notification may come after the read found the directory gone', async () => {
    let c: OomCounters | undefined = { oomKill: 0 };
    let foundGone!: () => void;
    const gone = new Promise<void>((r) => (foundGone = r));
    const src = manualSource(true);
    const { onWatching, watching } = watchingSignal();
    const read = async () => {
      if (c === undefined) foundGone();
      return c;
    };
    const { seen, done } = collect(oomEventStream(read, src, { onWatching }));
    await watching;
    c = undefined;
    src.wake(); // the OOM's: its read finds nothing
    await gone;
    await new Promise((r) => setImmediate(r)); // the stream now waits for the removal's
    expect(seen).toEqual([]);
    src.wake();
    await done;
    expect(seen).toEqual(['oom:1']);
  });

  test('onWatching comes after the baseline read: an OOM right after it is reported', async () => {
    let c: OomCounters | undefined = { oomKill: 0 };
    const reads: string[] = [];
    const src = manualSource(true);
    const ac = new AbortController();
    const { seen, done } = collect(
      oomEventStream(
        async () => {
          reads.push('read');
          return c;
        },
        src,
        {
          signal: ac.signal,
          onWatching: () => {
            reads.push('watching');
            c = { oomKill: 1 }; // killed at once
            src.wake();
          },
        },
      ),
    );
    expect(await until(() => seen.length === 1)).toBe(true);
    ac.abort();
    await done;
    expect(seen).toEqual(['oom_kill:1']);
    expect(reads.slice(0, 2)).toEqual(['read', 'watching']);
  });

  test('an OOM signalled just before the cgroup disappears is still reported', async () => {
    let c: OomCounters | undefined = { oomKill: 0 };
    const src = manualSource(true);
    const { seen, done } = collect(oomEventStream(async () => c, src));
    await sleep(10);
    src.wake();
    await sleep(5);
    c = undefined;
    await done;
    expect(seen).toEqual(['oom:1']);
  });

  test('a source that cannot start falls back to polling at intervalMs', async () => {
    let c: OomCounters = { oomKill: 0 };
    const broken: OomSource = { wakeMeansOom: true, start: async () => Promise.reject(new Error('no eventfd')) };
    const ac = new AbortController();
    const { seen, done } = collect(oomEventStream(async () => c, broken, { intervalMs: 5, signal: ac.signal }));
    await sleep(20);
    c = { oomKill: 3 };
    expect(await until(() => seen.length === 1)).toBe(true);
    ac.abort();
    await done;
    expect(seen).toEqual(['oom_kill:3']);
  });

  test('abort ends a stream waiting on its source', async () => {
    const src = manualSource(false);
    const ac = new AbortController();
    const { done } = collect(oomEventStream(async () => ({ oomKill: 0 }), src, { signal: ac.signal }));
    await sleep(10);
    ac.abort();
    await done;
    expect(src.closed).toBe(true);
  });
});

describe('v2 driver: inotify on memory.events', () => {
  test('kills and OOMs are seen through fs.watch (no polling); removing the cgroup ends the stream', async () => {
    const tree = new FakeCgroupTree({ mode: 'unified' });
    trees.push(tree);
    const m = createCgroupManager({ id: 'c1', cgroupsPath: '/vk/c1', root: tree.root, host: tree.host, fs: tree.fs, skipDevices: true });
    await m.create({ memory: { limit: 1 << 25 } });
    const events = tree.p('vk', 'c1', 'memory.events');
    const { onWatching, watching } = watchingSignal();
    const { seen, done } = collect(m.oomEvents({ intervalMs: 600_000, onWatching }));
    await watching;
    // The kernel bumps "oom" first and "oom_kill" after the kill: one event.
    fs.writeFileSync(events, 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n');
    await sleep(20);
    fs.writeFileSync(events, 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    expect(await until(() => seen.length === 1)).toBe(true);
    // An OOM without a kill.
    fs.writeFileSync(events, 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n');
    expect(await until(() => seen.length === 2)).toBe(true);
    expect(seen).toEqual(['oom_kill:1', 'oom:2']);
    await m.destroy();
    await done;
  });
});
