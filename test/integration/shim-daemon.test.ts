// The shim daemon end to end, without containerd starting it: serveTasks runs in a child
// node on a temp socket, publishes to a private containerd 1.6 (checked with `ctr events`),
// and this test drives it with our ttrpc client the way containerd would. Real containers,
// real cgroups; afterwards nothing may be left (harness leak checks and leftovers()).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Spec } from '../../runtime/spec/types';
import { TaskStatus, decode } from '../../shim/proto';
import { Code } from '../../shim/ttrpc';
import {
  TestContainerd,
  describeIf,
  makeBundle,
  requireBinary,
  requireFixtures,
  requireRoot,
  requireRuntime,
  uniqueId,
  vktest,
  withLeakCheck,
  type Bundle,
} from '../harness';
import { ClientFifos, DaemonUnderTest, EventWatcher, ensureSubscribed, forceDelete, processAny, waitFor } from './shim-daemon-helpers';

const ok = requireRoot() && requireFixtures() && requireRuntime('vkernel') && requireBinary('/usr/bin/containerd');

describeIf(ok)('shim daemon against containerd 1.6', () => {
  let cd: TestContainerd;
  let daemon: DaemonUnderTest;
  let events: EventWatcher;
  let fifoDir: string;

  beforeAll(async () => {
    cd = await TestContainerd.start({ version: '1.6' });
    events = new EventWatcher(cd);
    await ensureSubscribed(cd, events);
    daemon = await DaemonUnderTest.start(cd);
    fifoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-fifos-'));
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    events?.stop();
    if (fifoDir) fs.rmSync(fifoDir, { recursive: true, force: true });
    if (cd) expect(await cd.stop()).toEqual([]);
  }, 60_000);

  /** Containers a test created; whatever a failed test left is removed through the daemon. */
  const created = new Set<string>();
  afterEach(async () => {
    for (const id of created) await forceDelete(daemon, id);
    created.clear();
  });

  /** A bundle whose cgroup lives under /<namespace>/<id>, as ctr would set it. */
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

  async function create(b: Bundle, io?: ClientFifos, extra: object = {}): Promise<number> {
    created.add(b.id);
    const r = await daemon.call('Create', { id: b.id, bundle: b.dir, ...(io?.paths() ?? {}), ...extra });
    return r.pid;
  }

  async function errorCode(p: Promise<unknown>): Promise<number> {
    try {
      await p;
      return Code.OK;
    } catch (err) {
      return (err as { grpcCode: number }).grpcCode;
    }
  }

  it(
    'runs a container: stdout through the FIFO, exit 0, create/start/exit/delete in containerd',
    leakChecked(async () => {
      const b = await bundle(vktest('echo', 'hello'));
      const io = new ClientFifos(fifoDir, b.id);
      const pid = await create(b, io);
      expect(pid).toBeGreaterThan(0);
      expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
      expect(await daemon.call('State', { id: b.id })).toMatchObject({ id: b.id, bundle: b.dir, pid, status: TaskStatus.CREATED, stdout: io.stdout });
      expect((await daemon.call('Start', { id: b.id })).pid).toBe(pid);
      const w = await daemon.call('Wait', { id: b.id });
      expect(w.exit_status).toBe(0);
      expect(w.exited_at!.seconds).toBeGreaterThan(0);
      await io.outEnded;
      expect(io.out).toBe('hello\n');
      expect(await daemon.call('State', { id: b.id })).toMatchObject({ status: TaskStatus.STOPPED, exit_status: 0 });
      expect(await daemon.call('Delete', { id: b.id })).toMatchObject({ pid, exit_status: 0 });
      await events.waitFor('TaskDelete', (e) => e.topic === '/tasks/delete' && e.event.container_id === b.id);
      expect(events.topicsOf(b.id)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
      expect(events.of(b.id)[2].event).toMatchObject({ id: b.id, pid });
      expect(await errorCode(daemon.call('State', { id: b.id }))).toBe(Code.NotFound);
      io.close();
    }),
  );

  it(
    'reports exit code 7 and 128+9 for a killed init',
    leakChecked(async () => {
      const seven = await bundle(vktest('exit', 7));
      const killed = await bundle(vktest('sleep', 30));
      await create(seven);
      await create(killed);
      await daemon.call('Start', { id: seven.id });
      await daemon.call('Start', { id: killed.id });
      expect((await daemon.call('Wait', { id: seven.id })).exit_status).toBe(7);
      await daemon.call('Kill', { id: killed.id, signal: 9 });
      expect((await daemon.call('Wait', { id: killed.id })).exit_status).toBe(137);
      // Killing a finished process is NotFound ("process already finished").
      expect(await errorCode(daemon.call('Kill', { id: killed.id, signal: 9 }))).toBe(Code.NotFound);
      const exit = await events.waitFor('TaskExit 137', (e) => e.topic === '/tasks/exit' && e.event.container_id === killed.id);
      expect(exit.event.exit_status).toBe(137);
      for (const b of [seven, killed]) await daemon.call('Delete', { id: b.id });
    }),
  );

  it(
    'runs execs: output, exit status, Pids details, and exec exits published before the init exit',
    leakChecked(async () => {
      const b = await bundle(vktest('sleep', 30));
      const initPid = await create(b);
      await daemon.call('Start', { id: b.id });
      const e1 = new ClientFifos(fifoDir, `${b.id}-e1`);
      // It lingers a moment: an exec gone at once is the next test's subject.
      await daemon.call('Exec', { id: b.id, exec_id: 'e1', ...e1.paths(), spec: processAny(b.spec.process!, ['/bin/sh', '-c', 'echo from exec; sleep 0.2']) });
      expect(await errorCode(daemon.call('Exec', { id: b.id, exec_id: 'e1', spec: processAny(b.spec.process!, vktest('echo')) }))).toBe(Code.AlreadyExists);
      const e1Pid = (await daemon.call('Start', { id: b.id, exec_id: 'e1' })).pid;
      expect((await daemon.call('Wait', { id: b.id, exec_id: 'e1' })).exit_status).toBe(0);
      await e1.outEnded;
      expect(e1.out).toBe('from exec\n');
      expect(await daemon.call('Delete', { id: b.id, exec_id: 'e1' })).toMatchObject({ pid: e1Pid, exit_status: 0 });

      await daemon.call('Exec', { id: b.id, exec_id: 'e2', spec: processAny(b.spec.process!, vktest('sleep', 30)) });
      const e2Pid = (await daemon.call('Start', { id: b.id, exec_id: 'e2' })).pid;
      const pids = (await daemon.call('Pids', { id: b.id })).processes;
      expect(pids.map((p) => p.pid)).toEqual(expect.arrayContaining([initPid, e2Pid]));
      const e2Info = pids.find((p) => p.pid === e2Pid)!.info!;
      expect(e2Info.type_url).toBe('containerd.runc.v1.ProcessDetails');
      expect(decode('containerd.runc.v1.ProcessDetails', e2Info.value).exec_id).toBe('e2');
      expect(pids.find((p) => p.pid === initPid)!.info).toBeNull();

      // The init dies; e2 dies with its pid namespace; e2's exit comes first.
      await daemon.call('Kill', { id: b.id, signal: 9 });
      expect((await daemon.call('Wait', { id: b.id })).exit_status).toBe(137);
      expect((await daemon.call('Wait', { id: b.id, exec_id: 'e2' })).exit_status).toBe(137);
      await events.waitFor('init exit', (e) => e.topic === '/tasks/exit' && e.event.id === b.id);
      const exits = events.of(b.id).filter((e) => e.topic === '/tasks/exit').map((e) => e.event.id);
      expect(exits).toEqual(['e1', 'e2', b.id]);
      expect(events.topicsOf(b.id)).toEqual([
        '/tasks/create',
        '/tasks/start',
        '/tasks/exec-added',
        '/tasks/exec-started',
        '/tasks/exit',
        '/tasks/exec-added',
        '/tasks/exec-started',
        '/tasks/exit',
        '/tasks/exit',
      ]);
      await daemon.call('Delete', { id: b.id });
      e1.close();
    }),
  );

  it(
    'keeps the exit status of execs that exit at once (before vkinit is gone)',
    leakChecked(async () => {
      const b = await bundle(vktest('sleep', 30));
      await create(b);
      await daemon.call('Start', { id: b.id });
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) {
        await daemon.call('Exec', { id: b.id, exec_id: `q${i}`, spec: processAny(b.spec.process!, vktest('exit', 5)) });
        await daemon.call('Start', { id: b.id, exec_id: `q${i}` });
        statuses.push((await daemon.call('Wait', { id: b.id, exec_id: `q${i}` })).exit_status);
        await daemon.call('Delete', { id: b.id, exec_id: `q${i}` });
      }
      expect(statuses).toEqual(new Array(10).fill(5));
      await daemon.call('Kill', { id: b.id, signal: 9 });
      await daemon.call('Wait', { id: b.id });
      await daemon.call('Delete', { id: b.id });
    }),
  );

  it(
    'kills every process with all=true, and the leftovers of an init without its own pid namespace',
    leakChecked(async () => {
      const noPidNs = (s: Spec) => {
        s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'pid');
      };
      const b = await bundle(['/bin/sh', '-c', '/vktest sleep 30 & /vktest sleep 30'], noPidNs);
      await create(b);
      await daemon.call('Start', { id: b.id });
      let all: number[] = [];
      for (let i = 0; i < 200 && all.length < 2; i++) {
        all = (await daemon.call('Pids', { id: b.id })).processes.map((p) => p.pid);
        if (all.length < 2) await new Promise((r) => setTimeout(r, 20));
      }
      expect(all.length).toBeGreaterThanOrEqual(2);
      await daemon.call('Kill', { id: b.id, signal: 9, all: true });
      expect((await daemon.call('Wait', { id: b.id })).exit_status).toBe(137);
      await waitFor('all gone', () => all.every((p) => !fs.existsSync(`/proc/${p}`)) || undefined);
      await daemon.call('Delete', { id: b.id });

      // The init exits by itself; the background process it left is killed by the shim.
      const c = await bundle(['/bin/sh', '-c', '/vktest sleep 30 & echo $! > /bg.pid; exit 3'], noPidNs);
      await create(c);
      await daemon.call('Start', { id: c.id });
      expect((await daemon.call('Wait', { id: c.id })).exit_status).toBe(3);
      const bg = Number(fs.readFileSync(path.join(c.rootfs, 'bg.pid'), 'utf8'));
      await waitFor('background process killed', () => !fs.existsSync(`/proc/${bg}`) || undefined);
      await daemon.call('Delete', { id: c.id });
    }),
  );

  it(
    'pauses and resumes, updates resources, reports stats and pids',
    leakChecked(async () => {
      const b = await bundle(vktest('sleep', 30));
      const pid = await create(b);
      await daemon.call('Start', { id: b.id });
      await daemon.call('Pause', { id: b.id });
      expect((await daemon.call('State', { id: b.id })).status).toBe(TaskStatus.PAUSED);
      expect(await errorCode(daemon.call('Delete', { id: b.id }))).toBe(Code.FailedPrecondition);
      expect(fs.readFileSync(`/sys/fs/cgroup/freezer/${cd.namespace}/${b.id}/freezer.state`, 'utf8').trim()).toBe('FROZEN');
      await daemon.call('Resume', { id: b.id });
      expect((await daemon.call('State', { id: b.id })).status).toBe(TaskStatus.RUNNING);
      await events.waitFor('resumed', (e) => e.topic === '/tasks/resumed' && e.event.container_id === b.id);
      expect(events.topicsOf(b.id)).toEqual(['/tasks/create', '/tasks/start', '/tasks/paused', '/tasks/resumed']);

      const resources = { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from(JSON.stringify({ pids: { limit: 50 } })) };
      await daemon.call('Update', { id: b.id, resources, annotations: { a: 'b' } });
      expect(fs.readFileSync(`/sys/fs/cgroup/pids/${cd.namespace}/${b.id}/pids.max`, 'utf8').trim()).toBe('50');
      const bad = { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from('not json') };
      expect(await errorCode(daemon.call('Update', { id: b.id, resources: bad }))).toBe(Code.InvalidArgument);

      const { stats } = await daemon.call('Stats', { id: b.id });
      expect(stats!.type_url).toBe('io.containerd.cgroups.v1.Metrics'); // this host is cgroup v1 (hybrid)
      const m = decode('io.containerd.cgroups.v1.Metrics', stats!.value);
      expect(m.pids!.current).toBe(1);
      expect(m.pids!.limit).toBe(50);
      expect(m.memory!.usage!.usage).toBeGreaterThan(0);
      expect(m.cpu!.usage!.total).toBeGreaterThan(0);
      expect((await daemon.call('Pids', { id: b.id })).processes.map((p) => p.pid)).toEqual([pid]);
      expect(await daemon.call('Connect', { id: b.id })).toMatchObject({ shim_pid: daemon.child.pid, task_pid: pid });

      await daemon.call('Kill', { id: b.id, signal: 9 });
      await daemon.call('Wait', { id: b.id });
      expect(await errorCode(daemon.call('Pause', { id: b.id }))).toBe(Code.FailedPrecondition);
      await daemon.call('Delete', { id: b.id });
    }),
  );

  it(
    'answers bad requests with the codes containerd expects',
    leakChecked(async () => {
      expect(await errorCode(daemon.call('State', { id: 'no-such-task' }))).toBe(Code.NotFound);
      expect(await errorCode(daemon.call('Start', { id: 'no-such-task' }))).toBe(Code.NotFound);
      expect(await daemon.call('Connect', { id: 'no-such-task' })).toMatchObject({ shim_pid: daemon.child.pid, task_pid: 0 });
      const b = await bundle(vktest('sleep', 30));
      await create(b);
      expect(await errorCode(create(b))).toBe(Code.AlreadyExists);
      await daemon.call('Start', { id: b.id });
      expect(await errorCode(daemon.call('Start', { id: b.id }))).toBe(Code.FailedPrecondition);
      expect(await errorCode(daemon.call('Delete', { id: b.id }))).toBe(Code.FailedPrecondition);
      expect(await errorCode(daemon.call('Exec', { id: b.id, exec_id: 'x', spec: { type_url: 'example/Nope', value: Buffer.from('{}') } }))).toBe(Code.InvalidArgument);
      expect(await errorCode(daemon.call('Exec', { id: b.id, exec_id: 'x', spec: processAny({}, ['/x']) }))).toBe(Code.InvalidArgument);
      await daemon.call('Exec', { id: b.id, exec_id: 'never', spec: processAny(b.spec.process!, vktest('echo')) });
      expect(await errorCode(daemon.call('Kill', { id: b.id, exec_id: 'never', signal: 9 }))).toBe(Code.FailedPrecondition);
      expect(await errorCode(daemon.call('Kill', { id: b.id, exec_id: 'unknown', signal: 9 }))).toBe(Code.NotFound);
      expect(await errorCode(daemon.call('Checkpoint', { id: b.id, path: '/tmp/x' }))).toBe(Code.Unimplemented);
      expect(await errorCode(daemon.call('Create', { id: 'bad/id', bundle: b.dir }))).toBe(Code.InvalidArgument);
      // A failing create leaves nothing behind (the bundle has no such command).
      const broken = await bundle(['/no/such/binary']);
      expect(await errorCode(create(broken))).not.toBe(Code.OK);
      expect(await errorCode(daemon.call('State', { id: broken.id }))).toBe(Code.NotFound);
      expect(await daemon.call('Delete', { id: b.id, exec_id: 'never' })).toMatchObject({ pid: 0 });
      await daemon.call('Kill', { id: b.id, signal: 9 });
      await daemon.call('Wait', { id: b.id });
      await daemon.call('Delete', { id: b.id });
    }),
  );

  it(
    'serves two containers on separate connections; deleting one leaves the other running',
    leakChecked(async () => {
      const a = await bundle(vktest('sleep', 30));
      const b = await bundle(vktest('sleep', 30));
      const second = await daemon.connect();
      try {
        await create(a);
        created.add(b.id);
        const { pid: bPid } = await second.call('containerd.task.v2.Task', 'Create', 'containerd.task.v2.CreateTaskRequest', { id: b.id, bundle: b.dir }, 'containerd.task.v2.CreateTaskResponse');
        await daemon.call('Start', { id: a.id });
        await daemon.call('Start', { id: b.id });
        await daemon.call('Kill', { id: a.id, signal: 9 });
        await daemon.call('Wait', { id: a.id });
        await daemon.call('Delete', { id: a.id });
        await daemon.call('Shutdown', { id: a.id }); // containerd sends it after every delete: ignored while b lives
        await new Promise((r) => setTimeout(r, 200));
        expect(daemon.exitCode).toBeUndefined();
        expect(await daemon.call('State', { id: b.id })).toMatchObject({ pid: bPid, status: TaskStatus.RUNNING });
        expect(fs.existsSync(`/proc/${bPid}`)).toBe(true);
        await daemon.call('Kill', { id: b.id, signal: 9 });
        await daemon.call('Wait', { id: b.id });
        await daemon.call('Delete', { id: b.id });
      } finally {
        await second.destroy();
      }
    }),
  );

  it(
    'publishes TaskOOM when the memory cgroup kills the container',
    leakChecked(async () => {
      const limit = 32 << 20;
      const memsw = fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes');
      const b = await bundle(vktest('memhog', 256), (s) => {
        s.linux!.resources = { ...s.linux!.resources, memory: { limit, ...(memsw ? { swap: limit } : {}) } };
      });
      await create(b);
      await daemon.call('Start', { id: b.id });
      expect((await daemon.call('Wait', { id: b.id })).exit_status).toBe(137);
      await events.waitFor('TaskOOM', (e) => e.topic === '/tasks/oom' && e.event.container_id === b.id);
      await daemon.call('Delete', { id: b.id });
    }),
  );

  it(
    'survives a containerd restart: new connections, live pid in Connect and Pids, events reach the new containerd',
    leakChecked(async () => {
      const b = await bundle(vktest('sleep', 30));
      const pid = await create(b);
      await daemon.call('Start', { id: b.id });
      events.stop();
      await cd.restart();
      events = new EventWatcher(cd);
      await ensureSubscribed(cd, events);
      const again = await daemon.connect();
      try {
        const c = await again.call('containerd.task.v2.Task', 'Connect', 'containerd.task.v2.ConnectRequest', { id: b.id }, 'containerd.task.v2.ConnectResponse');
        expect(c).toMatchObject({ shim_pid: daemon.child.pid, task_pid: pid });
        const p = await again.call('containerd.task.v2.Task', 'Pids', 'containerd.task.v2.PidsRequest', { id: b.id }, 'containerd.task.v2.PidsResponse');
        expect(p.processes.map((x) => x.pid)).toContain(pid);
      } finally {
        await again.destroy();
      }
      await daemon.call('Kill', { id: b.id, signal: 9 });
      await daemon.call('Wait', { id: b.id });
      await events.waitFor('exit after restart', (e) => e.topic === '/tasks/exit' && e.event.container_id === b.id);
      await daemon.call('Delete', { id: b.id });
    }),
  );

  it('exits on Shutdown once it serves nothing, removing its socket', async () => {
    expect(daemon.exitCode).toBeUndefined();
    await daemon.call('Shutdown', { id: 'any' });
    await waitFor('daemon exit', () => daemon.exitCode !== undefined);
    expect(daemon.exitCode).toBe(0);
    expect(fs.existsSync(daemon.config.socketPath)).toBe(false);
  });
});
