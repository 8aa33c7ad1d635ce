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
import { alive, waitFor } from './helpers/shim-env';

jest.setTimeout(60_000);

describeIf(requireRoot())('warm pool: daemons back from their group', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-pool-'));
  const lines: string[] = [];
  const log = (m: string): void => void lines.push(m);
  const pool = new WarmPool({ size: 1, controlSocket: path.join(dir, 'ctl.sock'), reuse: true, log });
  const started = new Set<number>();

  afterAll(async () => {
    await pool.close();
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  let group = 0;
  /** Hands the waiting daemon a group that goes idle after `idleMs` (nobody connects). */
  const handOut = async (idleMs = 300): Promise<number> => {
    const name = `g${group++}`;
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
      const pid = await pool.adopt(launch);
      if (pid === undefined) throw new Error('no daemon waiting');
      started.add(pid);
      return pid;
    } finally {
      fs.closeSync(listenFd);
    }
  };
  const logged = (re: RegExp): boolean => lines.some((l) => re.test(l));

  it('a daemon comes back after its group and is handed the next one; the socket it served is gone', async () => {
    await pool.start();
    await waitFor('a warm daemon', () => pool.ready === 1, 30_000);
    const [first] = pool.pids;
    started.add(first);
    expect(await handOut()).toBe(first);
    expect(pool.ready).toBe(0);
    await waitFor('the daemon back', () => logged(new RegExp(`warm daemon ${first} ready \\(back, reused 1 times\\)`)), 10_000);
    expect(pool.pids).toEqual([first]);
    expect(fs.existsSync(path.join(dir, 'g0.sock'))).toBe(false);
    // The grace period passed without a refill: it came back in time.
    await new Promise((r) => setTimeout(r, 1200));
    expect(pool.pids).toEqual([first]);

    expect(await handOut()).toBe(first);
    await waitFor('the daemon back again', () => logged(new RegExp(`warm daemon ${first} ready \\(back, reused 2 times\\)`)), 10_000);
  });

  it('a full pool lets a returning daemon go: it exits', async () => {
    const [daemon] = pool.pids;
    // Out long enough (idle after 3 s) for a new spare to be waiting when it comes back.
    expect(await handOut(3000)).toBe(daemon);
    pool.fill(); // what the grace period's end does
    await waitFor('a new spare', () => pool.ready === 1 && !pool.pids.includes(daemon), 30_000);
    for (const p of pool.pids) started.add(p);
    await waitFor('the returning daemon to exit', () => !alive(daemon), 10_000);
    expect(logged(new RegExp(`warm daemon ${daemon} came back: not needed, it exits`))).toBe(true);
    expect(pool.ready).toBe(1);
  });

  it('a check-in whose pid is not the connecting process is refused', async () => {
    const sock = net.connect(path.join(dir, 'ctl.sock'));
    await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    const [waiting] = pool.pids;
    sock.write(`${JSON.stringify({ pid: waiting, reuse: 1 })}\n`);
    await new Promise<void>((resolve) => sock.once('close', () => resolve()).resume());
    expect(logged(new RegExp(`check-in says pid ${waiting}, but the connection is from pid ${process.pid}`))).toBe(true);
    expect(pool.pids).toEqual([waiting]);
  });

  it('a check-in claiming to be back, from a pid this pool never handed out, is refused', async () => {
    const sock = net.connect(path.join(dir, 'ctl.sock'));
    await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    sock.write(`${JSON.stringify({ pid: process.pid, reuse: 1 })}\n`);
    await new Promise<void>((resolve) => sock.once('close', () => resolve()).resume());
    expect(logged(new RegExp(`daemon ${process.pid} came back, but this manager did not hand it out`))).toBe(true);
    expect(pool.pids).not.toContain(process.pid);
    expect(pool.ready).toBe(1);
  });
});
