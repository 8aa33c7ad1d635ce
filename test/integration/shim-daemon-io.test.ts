// The shim daemon's stdio and rootfs handling with real containers: a terminal through the
// console socket (ResizePty, stdin), stdin EOF through CloseIO, file:// and binary:// logging,
// the bundle's log FIFO, and rootfs mount lists (overlay + a 1.7-style target), including a
// failing one. Nothing may be left behind.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../runtime/native';
import type { Spec } from '../../runtime/spec/types';
import { Code } from '../../shim/ttrpc';
import {
  TestContainerd,
  describeIf,
  makeBundle,
  mountsUnder,
  removeTree,
  requireBinary,
  requireFixtures,
  requireRoot,
  requireRuntime,
  uniqueId,
  vktest,
  withLeakCheck,
  type Bundle,
} from '../harness';
import {
  ClientFifos,
  DaemonUnderTest,
  EventWatcher,
  ensureSubscribed,
  forceDelete,
  processAny,
  waitFor,
  type TaskReq,
  type TaskRes,
} from './shim-daemon-helpers';

const ok = requireRoot() && requireFixtures() && requireRuntime('vkernel') && requireBinary('/usr/bin/containerd');

describeIf(ok)('shim daemon stdio and rootfs', () => {
  let cd: TestContainerd;
  let daemon: DaemonUnderTest;
  let events: EventWatcher;
  let tmp: string;

  beforeAll(async () => {
    cd = await TestContainerd.start({ version: '1.6' });
    events = new EventWatcher(cd);
    await ensureSubscribed(cd, events);
    daemon = await DaemonUnderTest.start(cd);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-io-'));
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    events?.stop();
    if (tmp) await removeTree(tmp);
    if (cd) expect(await cd.stop()).toEqual([]);
  }, 60_000);

  function bundle(args: string[], mutate?: (s: Spec) => void): Promise<Bundle> {
    const id = uniqueId('vks');
    return makeBundle({
      id,
      args,
      mutate: (s) => {
        s.linux!.cgroupsPath = `/${cd.namespace}/${id}`;
        mutate?.(s);
      },
    });
  }

  const leakChecked = (fn: () => Promise<void>) => () => withLeakCheck(fn, { root: daemon.config.stateRoot, settleMs: 5000 });

  /** Containers a test created; whatever a failed test left is removed through the daemon. */
  const created = new Set<string>();
  afterEach(async () => {
    for (const id of created) await forceDelete(daemon, id);
    created.clear();
  });

  /** Create through the daemon, remembering the id for cleanup. */
  function create(req: TaskReq<'Create'>): Promise<TaskRes<'Create'>> {
    created.add(req.id!);
    return daemon.call('Create', req);
  }

  async function finish(id: string, status = 0): Promise<void> {
    expect((await daemon.call('Wait', { id })).exit_status).toBe(status);
    await daemon.call('Delete', { id });
  }

  it(
    'runs a terminal through the console socket: ResizePty, stdin, a tty on 0-2, no stderr FIFO',
    leakChecked(async () => {
      const b = await bundle(['/bin/sh', '-c', 'read line; echo got:$line; /vktest winsize; /vktest isatty'], (s) => {
        s.process!.terminal = true;
      });
      const io = new ClientFifos(tmp, b.id, { stdin: true, stderr: false });
      await create({ id: b.id, bundle: b.dir, terminal: true, ...io.paths() });
      await daemon.call('Start', { id: b.id });
      await daemon.call('ResizePty', { id: b.id, width: 100, height: 40 });
      io.write('hi\n');
      await finish(b.id);
      await io.outEnded;
      expect(io.out).toContain('got:hi');
      expect(io.out).toContain('rows=40\r\ncols=100');
      expect(io.out).toContain('0=1\r\n1=1\r\n2=1');
      io.close();
    }),
  );

  it(
    'forces the terminal of an exec from the request',
    leakChecked(async () => {
      const b = await bundle(vktest('sleep', 30));
      await create({ id: b.id, bundle: b.dir });
      await daemon.call('Start', { id: b.id });
      const io = new ClientFifos(tmp, `${b.id}-tty`, { stderr: false });
      // The process JSON says no terminal; the request's terminal=true wins.
      await daemon.call('Exec', { id: b.id, exec_id: 'tty', terminal: true, ...io.paths(), spec: processAny(b.spec.process!, ['/bin/sh', '-c', '/vktest isatty; sleep 0.2'], { terminal: false }) });
      await daemon.call('Start', { id: b.id, exec_id: 'tty' });
      await daemon.call('ResizePty', { id: b.id, exec_id: 'tty', width: 80, height: 24 });
      expect((await daemon.call('Wait', { id: b.id, exec_id: 'tty' })).exit_status).toBe(0);
      await io.outEnded;
      expect(io.out).toContain('0=1\r\n1=1\r\n2=1');
      await daemon.call('Delete', { id: b.id, exec_id: 'tty' });
      await daemon.call('Kill', { id: b.id, signal: 9 });
      await finish(b.id, 137);
      io.close();
    }),
  );

  it(
    'gives stdin EOF after the client closes it and calls CloseIO',
    leakChecked(async () => {
      const b = await bundle(['/bin/cat']);
      const io = new ClientFifos(tmp, b.id, { stdin: true });
      await create({ id: b.id, bundle: b.dir, ...io.paths() });
      await daemon.call('Start', { id: b.id });
      io.write('abc\n');
      io.closeStdin();
      await new Promise((r) => setTimeout(r, 200));
      expect((await daemon.call('State', { id: b.id })).status).toBe(2); // still running: the shim holds stdin open
      await daemon.call('CloseIO', { id: b.id, stdin: true });
      await finish(b.id);
      await io.outEnded;
      expect(io.out).toBe('abc\n');
      io.close();
    }),
  );

  it(
    'appends stdout and stderr to a file:// URI, and writes the shim log to the bundle log FIFO',
    leakChecked(async () => {
      const b = await bundle(['/bin/sh', '-c', 'echo out; echo err >&2']);
      const logFifo = path.join(b.dir, 'log');
      native().mkfifo(logFifo, 0o600);
      // containerd opens it O_RDWR|O_NONBLOCK and copies what arrives.
      const logSock = new net.Socket({ fd: fs.openSync(logFifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK), readable: true, writable: false });
      let shimLog = '';
      logSock.on('data', (d) => (shimLog += d));
      const file = path.join(tmp, 'logs', `${b.id}.log`);
      await create({ id: b.id, bundle: b.dir, stdout: `file://${file}`, stderr: `file://${file}` });
      await daemon.call('Start', { id: b.id });
      await finish(b.id);
      expect(fs.readFileSync(file, 'utf8').split('\n').sort()).toEqual(['', 'err', 'out']);
      await waitFor('shim log lines', () => shimLog.includes('created, init pid'));
      expect(shimLog).toMatch(/^time="[^"]+" level=info msg="created, init pid \d+" namespace=\S+ id=vks-/m);
      logSock.destroy();
      fs.rmSync(logFifo);
    }),
  );

  it(
    'feeds a binary:// logger through fds 3 and 4 after its ready signal, with only the container env',
    leakChecked(async () => {
      const logger = path.join(tmp, 'logger.sh');
      fs.writeFileSync(logger, '#!/bin/sh\nenv > "$2.env"\ncat <&3 > "$2.out" &\ncat <&4 > "$2.err" &\nprintf r >&5\nexec 5>&-\nwait\n', { mode: 0o755 });
      const b = await bundle(['/bin/sh', '-c', 'echo out; echo err >&2']);
      const base = path.join(tmp, `${b.id}-bin`);
      await create({ id: b.id, bundle: b.dir, stdout: `binary://${logger}?file=${base}`, stderr: `binary://${logger}?file=${base}` });
      await daemon.call('Start', { id: b.id });
      await finish(b.id); // Delete waits for the logger to drain
      expect(fs.readFileSync(`${base}.out`, 'utf8')).toBe('out\n');
      expect(fs.readFileSync(`${base}.err`, 'utf8')).toBe('err\n');
      const env = fs.readFileSync(`${base}.env`, 'utf8');
      expect(env).toContain(`CONTAINER_ID=${b.id}`);
      expect(env).toContain(`CONTAINER_NAMESPACE=${cd.namespace}`);
      expect(env).not.toMatch(/^HOME=/m);
    }),
  );

  it(
    'mounts an overlay rootfs and a 1.7-style targeted bind, and unmounts both on Delete',
    leakChecked(async () => {
      const b = await bundle(['/bin/sh', '-c', '/vktest write /hello.txt hi && cat /mnt/data/file.txt']);
      const layers = fs.mkdtempSync(path.join(tmp, 'layers-'));
      const [lower, upper, work, data] = ['lower', 'upper', 'work', 'data'].map((d) => path.join(layers, d));
      fs.renameSync(b.rootfs, lower);
      for (const d of [b.rootfs, upper, work, data]) fs.mkdirSync(d);
      fs.writeFileSync(path.join(data, 'file.txt'), 'data\n');
      const io = new ClientFifos(tmp, b.id);
      const rootfs = [
        { type: 'overlay', source: 'overlay', options: [`lowerdir=${lower}`, `upperdir=${upper}`, `workdir=${work}`] },
        { type: 'bind', source: data, target: 'mnt/data', options: ['rbind', 'ro'] },
      ];
      await create({ id: b.id, bundle: b.dir, rootfs, ...io.paths() });
      expect(mountsUnder(b.dir).sort()).toEqual([b.rootfs, path.join(b.rootfs, 'mnt/data')]);
      await daemon.call('Start', { id: b.id });
      await finish(b.id);
      await io.outEnded;
      expect(io.out).toBe('data\n');
      expect(fs.readFileSync(path.join(upper, 'hello.txt'), 'utf8')).toBe('hi');
      expect(mountsUnder(b.dir)).toEqual([]);
      io.close();

      // A mount list that fails halfway leaves nothing mounted and no task.
      const bad = [rootfs[0], { type: 'bind', source: path.join(layers, 'missing'), target: 'x', options: ['rbind'] }];
      const c = await bundle(vktest('echo'));
      const err = await create({ id: c.id, bundle: c.dir, rootfs: bad }).catch((e: { grpcCode: number; message: string }) => e);
      expect(err).toMatchObject({ message: expect.stringContaining('rootfs: mount bind') });
      expect(mountsUnder(c.dir)).toEqual([]);
      await expect(daemon.call('State', { id: c.id })).rejects.toMatchObject({ grpcCode: Code.NotFound });
      await removeTree(layers);
    }),
  );
});
