// A shim daemon nobody uses exits by itself: no container and no connection for
// idle_exit_ms ([shim] config; default 2 min). containerd connects right after `start`, so
// a daemon that never sees a connection, or is left with none, was orphaned.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { watchIdle } from '../../shim/daemon/serve';

describe('watchIdle', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('fires once after the condition held for the whole period', () => {
    const onIdle = jest.fn();
    watchIdle(1000, () => true, onIdle);
    jest.advanceTimersByTime(999);
    expect(onIdle).not.toHaveBeenCalled();
    jest.advanceTimersByTime(300);
    expect(onIdle).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(10_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it('a busy moment restarts the clock', () => {
    const onIdle = jest.fn();
    let idle = true;
    watchIdle(1000, () => idle, onIdle);
    jest.advanceTimersByTime(750);
    idle = false;
    jest.advanceTimersByTime(250);
    idle = true;
    jest.advanceTimersByTime(1000);
    expect(onIdle).not.toHaveBeenCalled();
    jest.advanceTimersByTime(250);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });
});

describe('serveTasks idle exit (a daemon in a child process)', () => {
  const dist = path.resolve(__dirname, '../..');
  // Runs serveTasks with a short idle_exit_ms; prints when it went idle, relative to start.
  const script = (connectForMs: number): string => `
    const fs = require('fs'), net = require('net');
    const { serveTasks } = require(${JSON.stringify(dist + '/shim/daemon/serve')});
    const { native } = require(${JSON.stringify(dist + '/runtime/native')});
    const tmp = fs.mkdtempSync('/tmp/vkt-idle-');
    const sock = tmp + '/d.sock';
    const t0 = Date.now();
    (async () => {
      await serveTasks({ namespace: 'ns1', address: tmp + '/none.sock', ttrpcAddress: tmp + '/none.sock.ttrpc', publishBinary: 'x',
        socketPath: sock, debug: false, groupId: 'g', stateRoot: tmp + '/state', idleExitMs: 300 }, native().listenUnix(sock), {
        exitProcess: false,
        onIdle: () => {
          process.stdout.write(JSON.stringify({ ms: Date.now() - t0, socketLeft: fs.existsSync(sock) }));
          fs.rmSync(tmp, { recursive: true, force: true });
          process.exit(0);
        },
      });
      if (${connectForMs} > 0) {
        const c = net.connect(sock);
        setTimeout(() => c.destroy(), ${connectForMs});
      }
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const run = (connectForMs: number): { ms: number; socketLeft: boolean } =>
    JSON.parse(execFileSync(process.execPath, ['-e', script(connectForMs)], { encoding: 'utf8', timeout: 20_000 }));

  it('exits after idle_exit_ms without a connection and removes its socket', () => {
    const r = run(0);
    expect(r.socketLeft).toBe(false);
    expect(r.ms).toBeGreaterThanOrEqual(300);
  });

  it('an open connection keeps it up; the clock starts when it closes', () => {
    const r = run(1500);
    expect(r.socketLeft).toBe(false);
    expect(r.ms).toBeGreaterThanOrEqual(1800);
  });
});
