// OOM notifications without polling (runtime/cgroups/oom.ts): the event stream over a
// wake-up source, and the v2 driver's inotify source on the file-tree fake (its
// memory.events is a real file, so fs.watch sees the writes as it sees the kernel's).
// The v1 eventfd source needs a real memory cgroup: see test/integration/resources.test.ts.

import * as fs from 'node:fs';
import { createCgroupManager } from '../../runtime/cgroups/manager';
import { OOM_KILL_GRACE_MS, oomEventStream, type OomCounters, type OomEvent, type OomSource } from '../../runtime/cgroups/oom';
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

/** A source the test triggers by hand. */
function manualSource(wakeMeansOom: boolean): OomSource & { wake(): void; closed: boolean } {
  let wake: (() => void) | undefined;
  const s = {
    wakeMeansOom,
    closed: false,
    wake: () => wake?.(),
    start: async (w: () => void) => {
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
    src.wake();
    await done;
    expect(src.closed).toBe(true);
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
    const { seen, done } = collect(m.oomEvents({ intervalMs: 600_000 }));
    await sleep(50);
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
