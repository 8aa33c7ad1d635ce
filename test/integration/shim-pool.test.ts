// The manager's warm pool and daemons coming back to it (shim/manager/pool.ts,
// shim/daemon/reuse.ts), in-process with real warm daemons and no containerd: a daemon handed
// a group whose socket nobody connects to goes idle after idle_exit_ms, which ends its group
// just as a Shutdown does, and it checks in again.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../runtime/native';
import type { DaemonLaunch } from '../../shim/bootstrap/daemon-config';
import { WarmPool } from '../../shim/manager/pool';
import { describeIf, requireRoot } from '../harness';
import { alive, sleep, waitFor } from './helpers/shim-env';

jest.setTimeout(60_000);

describeIf(requireRoot())('warm pool: daemons back from their group', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-pool-'));
  const lines: string[] = [];
  const log = (m: string): void => void lines.push(m);
  // Far longer than a daemon's round trip (idle, closing its group, checking in) on a loaded
  // host: a refill before it is back would make it surplus, which is not what these tests follow.
  const poolGraceMs = 5000;
  const pool = new WarmPool({ size: 1, controlSocket: path.join(dir, 'ctl.sock'), reuse: true, reuseGraceMs: poolGraceMs, log });
  const started = new Set<number>();

  afterAll(async () => {
    await pool.close();
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  let group = 0;
  /** Hands the waiting daemon a group that goes idle after `idleMs` (nobody connects). */
  const handOut = (idleMs = 300, from = pool): Promise<number> => handOutGroup(`g${group++}`, idleMs, from);
  const handOutGroup = async (name: string, idleMs: number, from: WarmPool): Promise<number> => {
    const socketPath = path.join(dir, `${name}.sock`);
    const listenFd = native().listenUnix(socketPath);
    const launch: DaemonLaunch = {
      config: {
        namespace: 'vkt-pool',
        address: path.join(dir, 'no-containerd.sock'),
        ttrpcAddress: path.join(dir, 'no-containerd.sock.ttrpc'),
        publishBinary: '/bin/false',
        socketPath,
        debug: false,
        groupId: name,
        stateRoot: path.join(dir, 'state'),
        idleExitMs: idleMs,
        bundle: dir,
      },
      listenFd,
      containerdPid: process.pid,
    };
    try {
      const pid = await from.adopt(launch);
      if (pid === undefined) throw new Error('no daemon waiting');
      started.add(pid);
      return pid;
    } finally {
      fs.closeSync(listenFd);
    }
  };
  const logged = (re: RegExp): boolean => lines.some((l) => re.test(l));
  /**
   * A pool of its own (control socket <name>.sock, reuse on, `size` default 1), started, with
   * all its daemons waiting; their pids are killed after all if still alive.
   */
  const ownPool = async (name: string, opts: { size?: number; reuseGraceMs: number; reuseLimit?: number }): Promise<WarmPool> => {
    const size = opts.size ?? 1;
    const env = opts.reuseLimit === undefined ? process.env : { ...process.env, VKERNEL_SHIM_REUSE: String(opts.reuseLimit) };
    const own = new WarmPool({ size, controlSocket: path.join(dir, `${name}.sock`), env, reuse: true, reuseGraceMs: opts.reuseGraceMs, log });
    try {
      await own.start();
      await waitFor(`${size} warm daemon(s) in pool ${name}`, () => own.ready === size, 30_000);
    } catch (err) {
      await own.close();
      throw err;
    }
    for (const pid of own.pids) started.add(pid);
    return own;
  };
  /** One line to the shared pool's control socket, as a daemon's check-in; resolves when the pool drops the connection. */
  const sendControl = async (msg: object): Promise<void> => {
    const sock = net.connect(path.join(dir, 'ctl.sock'));
    await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    sock.write(`${JSON.stringify(msg)}\n`);
    await new Promise<void>((resolve) => sock.once('close', () => resolve()).resume());
  };
  /**
   * A connection to a group's socket: the group does not go idle while it is open (as
   * containerd's connection keeps a group busy while it manages a task).
   */
  const hold = (group: string): net.Socket => {
    const sock = net.connect(path.join(dir, `${group}.sock`));
    sock.on('error', () => undefined);
    return sock;
  };
  /** Every pid `from` shows until stop(): sampled often enough to see a spare while it boots (100s of ms). */
  const watchPids = (from: WarmPool): { seen: Set<number>; stop: () => void } => {
    const seen = new Set<number>(from.pids);
    const timer = setInterval(() => from.pids.forEach((p) => seen.add(p)), 10);
    return { seen, stop: () => clearInterval(timer) };
  };

  it('a daemon comes back after its group and is handed the next one; the socket it served is gone', async () => {
    await pool.start();
    await waitFor('a warm daemon', () => pool.ready === 1, 30_000);
    const [first] = pool.pids;
    started.add(first);
    const out = Date.now();
    expect(await handOut()).toBe(first);
    expect(pool.ready).toBe(0);
    await waitFor('the daemon back', () => logged(new RegExp(`warm daemon ${first} ready \\(back, reused 1 times\\)`)), 10_000);
    expect(pool.pids).toEqual([first]);
    expect(fs.existsSync(path.join(dir, 'g0.sock'))).toBe(false);
    // The grace period passed without a refill: it came back in time.
    await sleep(out + poolGraceMs + 500 - Date.now());
    expect(pool.pids).toEqual([first]);

    expect(await handOut()).toBe(first);
    await waitFor('the daemon back again', () => logged(new RegExp(`warm daemon ${first} ready \\(back, reused 2 times\\)`)), 10_000);
  });

  it('a full pool lets a returning daemon go: it exits', async () => {
    const [daemon] = pool.pids;
    expect(await handOutGroup('held', 3000, pool)).toBe(daemon);
    // A connection keeps its group from going idle (as containerd's does while it manages a
    // task): it comes back only once the new spare is waiting and we let go.
    const held = hold('held');
    try {
      // Its grace period ends while it is out: a spare is booted for its slot.
      await waitFor('a new spare', () => pool.ready === 1 && !pool.pids.includes(daemon), poolGraceMs + 30_000);
      for (const p of pool.pids) started.add(p);
      expect(alive(daemon)).toBe(true);
    } finally {
      held.destroy();
    }
    await waitFor('the returning daemon to exit', () => !alive(daemon), 30_000);
    expect(logged(new RegExp(`warm daemon ${daemon} came back: not needed, it exits`))).toBe(true);
    expect(pool.ready).toBe(1);
  });

  it('a check-in whose pid is not the connecting process is refused', async () => {
    const [waiting] = pool.pids;
    await sendControl({ pid: waiting, reuse: 1 });
    expect(logged(new RegExp(`check-in says pid ${waiting}, but the connection is from pid ${process.pid}`))).toBe(true);
    expect(pool.pids).toEqual([waiting]);
  });

  it('a check-in claiming to be back, from a pid this pool never handed out, is refused', async () => {
    await sendControl({ pid: process.pid, reuse: 1 });
    expect(logged(new RegExp(`daemon ${process.pid} came back, but this manager did not hand it out`))).toBe(true);
    expect(pool.pids).not.toContain(process.pid);
    expect(pool.ready).toBe(1);
  });

  it('the grace period runs from the latest hand-off: a daemon that always comes back in time is never made surplus', async () => {
    const graceMs = 10_000;
    const own = await ownPool('grace', { reuseGraceMs: graceMs });
    let pids: { seen: Set<number>; stop: () => void } | undefined;
    try {
      const [daemon] = own.pids;
      pids = watchPids(own);
      const back = (n: number) => (): boolean => logged(new RegExp(`warm daemon ${daemon} ready \\(back, reused ${n} times\\)`));
      const first = Date.now();
      expect(await handOut(300, own)).toBe(daemon);
      await waitFor('the daemon back', back(1), 10_000);
      // Out again from half-way through the first hand-off's grace period until past its end
      // (idle after graceMs / 2, which it notices no sooner than 1.25 times that), and back
      // seconds before the second period ends. A timer kept from the first hand-off would boot
      // a spare meanwhile: seen here even if the daemon is back before that spare checks in.
      await sleep(first + graceMs / 2 - Date.now());
      const second = Date.now();
      expect(await handOut(graceMs / 2, own)).toBe(daemon);
      await waitFor('the daemon back again', back(2), graceMs);
      await sleep(second + graceMs + 500 - Date.now());
      expect([...pids.seen]).toEqual([daemon]);
      expect(own.pids).toEqual([daemon]);
      expect(logged(new RegExp(`warm daemon ${daemon} came back: not needed`))).toBe(false);
    } finally {
      pids?.stop();
      await own.close();
    }
  }, 90_000);

  it('a daemon that may not come back says why and exits; its pool refills at once, not after the grace period', async () => {
    const strict = await ownPool('strict', { reuseGraceMs: 10 * 60_000, reuseLimit: 0 });
    try {
      const [daemon] = strict.pids;
      expect(await handOut(300, strict)).toBe(daemon);
      await waitFor('the daemon to say it leaves', () => logged(new RegExp(`warm daemon ${daemon} does not come back: reused 0 times \\(limit 0\\)`)), 10_000);
      await waitFor('the daemon to exit', () => !alive(daemon), 10_000);
      // Not the grace timer (ten minutes): the message brought the refill.
      await waitFor('a replacement', () => strict.ready === 1 && !strict.pids.includes(daemon), 30_000);
      for (const p of strict.pids) started.add(p);
    } finally {
      await strict.close();
    }
  });

  it('a daemon saying it leaves, from a pid this pool never handed out, is refused', async () => {
    await sendControl({ pid: process.pid, leaving: 'forged' });
    expect(logged(new RegExp(`daemon ${process.pid} leaves, but this manager did not hand it out`))).toBe(true);
    expect(logged(/does not come back: forged/)).toBe(false);
    expect(pool.ready).toBe(1);
  });

  it('each hand-off holds its own slot: later hand-offs never postpone the refill for a daemon that stays out', async () => {
    const graceMs = 3000;
    const two = await ownPool('two', { size: 2, reuseGraceMs: graceMs });
    let long: net.Socket | undefined;
    try {
      const [a, b] = two.pids;
      expect(await handOutGroup('stays', 3000, two)).toBe(a);
      long = hold('stays');
      const out = Date.now();
      // Short groups one after another, each handed out well within the grace period of the
      // one before: with one timer restarted at each hand-off, a's slot would never be refilled.
      let spare: number | undefined;
      while (spare === undefined && Date.now() - out < graceMs + 30_000) {
        if (two.ready > 0 && two.pids.includes(b)) {
          expect(await handOut(300, two)).toBe(b);
        }
        await sleep(graceMs / 3);
        spare = two.pids.find((p) => p !== a && p !== b);
      }
      expect(spare).toBeDefined();
      started.add(spare!);
      expect(logged(new RegExp(`warm daemon ${b} came back: not needed`))).toBe(false);
    } finally {
      long?.destroy();
      await two.close();
    }
  }, 90_000);

  it('a daemon that leaves after its slot was refilled long ago makes no refill: the daemon out now comes back', async () => {
    const graceMs = 8000;
    // One reuse each: x serves a first group and comes back, then leaves after its second.
    const once = await ownPool('once', { reuseGraceMs: graceMs, reuseLimit: 1 });
    let long: net.Socket | undefined;
    try {
      const [x] = once.pids;
      expect(await handOut(300, once)).toBe(x);
      await waitFor('x back', () => once.ready === 1 && once.pids.includes(x), 10_000);
      expect(await handOutGroup('x-last', 300, once)).toBe(x);
      long = hold('x-last');
      await waitFor('a spare in x\'s slot after its grace period', () => once.ready === 1 && !once.pids.includes(x), graceMs + 30_000);
      const [s] = once.pids;
      started.add(s);
      const pids = watchPids(once);
      try {
        // s is out (idle after 3 s, well within its grace period) when x ends (idle soon after
        // we let go) and says it leaves: x's slot was refilled long ago, so nothing is booted,
        // and s comes back to its own place.
        expect(await handOutGroup('s-first', 3000, once)).toBe(s);
        long.destroy();
        await waitFor('x to leave', () => logged(new RegExp(`warm daemon ${x} does not come back: reused 1 times \\(limit 1\\)`)), 20_000);
        await waitFor('s back', () => logged(new RegExp(`warm daemon ${s} ready \\(back, reused 1 times\\)`)), 20_000);
        expect([...pids.seen]).toEqual([s]);
        expect(once.pids).toEqual([s]);
      } finally {
        pids.stop();
      }
    } finally {
      long?.destroy();
      await once.close();
    }
  }, 90_000);
});
