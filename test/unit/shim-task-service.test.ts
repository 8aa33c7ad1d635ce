// TaskService against a fake runtime and reaper: event order (exec exits before the init's,
// start before exit even for early exits), the error a client sees for each bad request
// (mapped through the one toStatus), Connect/Pids/Shutdown rules.
import { TaskStatus, decode, encode } from '../../shim/proto';
import { PROCESS_TYPE_URL, RESOURCES_TYPE_URL } from '../../shim/task';
import { Code, toStatus } from '../../shim/ttrpc';
import { createReq, makeService, tick, type Harness } from './shim-fakes';

const processAny = (args: string[]) => ({
  type_url: PROCESS_TYPE_URL,
  value: Buffer.from(JSON.stringify({ args, cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] })),
});

function execReq(id: string, execId: string, args = ['/bin/true']) {
  return { id, exec_id: execId, terminal: false, stdin: '', stdout: '', stderr: '', spec: processAny(args) };
}

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return toStatus(err).code;
  }
  return Code.OK;
}

async function running(h: Harness, id = 'c1'): Promise<number> {
  const { pid } = await h.svc.create(createReq(id));
  await h.svc.start({ id, exec_id: '' });
  return pid!;
}

/** Start's pid (the response type allows it to be left out). */
async function startExec(h: Harness, id: string, execId: string): Promise<number> {
  return (await h.svc.start({ id, exec_id: execId })).pid!;
}

describe('TaskService events', () => {
  it('publishes create, start, exit, delete in that order with the init pid', async () => {
    const h = makeService();
    const pid = await running(h);
    h.rt.exit(pid, 7);
    const w = await h.svc.wait({ id: 'c1', exec_id: '' });
    expect(w.exit_status).toBe(7);
    expect(w.exited_at!.seconds).toBeGreaterThan(0);
    const d = await h.svc.delete({ id: 'c1', exec_id: '' });
    expect(d).toMatchObject({ pid, exit_status: 7 });
    expect(h.events.topics()).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
    const [create, start, exit] = h.events.events.map((e) => e.event);
    expect(create).toMatchObject({ container_id: 'c1', bundle: '/tmp/c1', pid });
    expect(start).toMatchObject({ container_id: 'c1', pid });
    expect(exit).toMatchObject({ container_id: 'c1', id: 'c1', pid, exit_status: 7 });
    expect(h.events.events[2].typeName).toBe('containerd.events.TaskExit');
  });

  it('holds the init exit back until running execs have exited', async () => {
    const h = makeService();
    const initPid = await running(h);
    await h.svc.exec(execReq('c1', 'e1'));
    const execPid = await startExec(h, 'c1', 'e1');
    let initWaited = false;
    const initWait = h.svc.wait({ id: 'c1', exec_id: '' }).then(() => (initWaited = true));
    h.rt.exit(initPid, 137); // the init dies first ...
    await tick(10);
    expect(initWaited).toBe(false); // ... but its exit waits for the exec's
    expect(h.events.topics()).not.toContain('/tasks/exit');
    h.rt.exit(execPid, 137);
    await initWait;
    const exits = h.events.events.filter((e) => e.topic === '/tasks/exit').map((e) => e.event.id);
    expect(exits).toEqual(['e1', 'c1']);
    expect(h.events.topics()).toEqual(['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/exit', '/tasks/exit']);
  });

  it('kills what is left of a container without its own pid namespace when the init exits', async () => {
    const h = makeService();
    h.rt.ownPidNs = false;
    const initPid = await running(h);
    await h.svc.exec(execReq('c1', 'e1'));
    const execPid = await startExec(h, 'c1', 'e1');
    h.rt.exit(initPid, 0);
    await tick(5);
    expect(h.rt.calls).toContain('killAll c1 9');
    h.rt.exit(execPid, 137);
    await h.svc.wait({ id: 'c1', exec_id: '' });
  });

  it('publishes TaskStart before the exit of an init that dies during Start', async () => {
    const h = makeService();
    const pid = (await h.svc.create(createReq('c1'))).pid!;
    h.rt.onStart = () => h.rt.exit(pid, 3); // exits before Start returns
    await h.svc.start({ id: 'c1', exec_id: '' });
    await h.svc.wait({ id: 'c1', exec_id: '' });
    expect(h.events.topics()).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit']);
  });

  it('publishes exec-started before the exit of an exec that is gone before spawnExec returns', async () => {
    const h = makeService();
    await running(h);
    await h.svc.exec(execReq('c1', 'quick'));
    h.rt.onSpawnExec = (pid) => h.rt.exit(pid, 0); // reaped before Start even returns
    const pid = await startExec(h, 'c1', 'quick');
    const w = await h.svc.wait({ id: 'c1', exec_id: 'quick' });
    expect(w.exit_status).toBe(0);
    const topics = h.events.topics();
    expect(topics.indexOf('/tasks/exec-started')).toBeLessThan(topics.indexOf('/tasks/exit'));
    expect(h.events.events.find((e) => e.topic === '/tasks/exit')!.event).toMatchObject({ id: 'quick', pid });
  });

  it('publishes exec-added, paused and resumed, and no event for an exec delete', async () => {
    const h = makeService();
    await running(h);
    await h.svc.exec(execReq('c1', 'e1'));
    await h.svc.pause({ id: 'c1' });
    expect((await h.svc.state({ id: 'c1', exec_id: '' })).status).toBe(TaskStatus.PAUSED);
    await h.svc.resume({ id: 'c1' });
    await h.svc.delete({ id: 'c1', exec_id: 'e1' });
    expect(h.events.topics().slice(2)).toEqual(['/tasks/exec-added', '/tasks/paused', '/tasks/resumed']);
  });

  it('kills a created init on Delete and reports its exit', async () => {
    const h = makeService();
    const pid = (await h.svc.create(createReq('c1'))).pid!;
    h.rt.onSignal = (p, sig) => p === pid && sig === 9 && h.rt.exit(p, 137);
    const d = await h.svc.delete({ id: 'c1', exec_id: '' });
    expect(d).toMatchObject({ pid, exit_status: 137 });
    expect(h.events.topics()).toEqual(['/tasks/create', '/tasks/exit', '/tasks/delete']);
    expect(h.svc.containers.size).toBe(0);
  });
});

describe('TaskService answers', () => {
  it('maps bad requests to the codes containerd expects', async () => {
    const h = makeService();
    expect(await codeOf(h.svc.state({ id: 'nope', exec_id: '' }))).toBe(Code.NotFound);
    expect(await codeOf(h.svc.kill({ id: 'nope', exec_id: '', signal: 9, all: false }))).toBe(Code.NotFound);
    expect(await codeOf(h.svc.create({ ...createReq('bad/id') }))).toBe(Code.InvalidArgument);
    expect(await codeOf(h.svc.create({ ...createReq('c2'), bundle: 'relative' }))).toBe(Code.InvalidArgument);
    expect(await codeOf(h.svc.create({ ...createReq('c3'), checkpoint: '/x' }))).toBe(Code.Unimplemented);
    const pid = await running(h);
    expect(await codeOf(h.svc.create(createReq('c1')))).toBe(Code.AlreadyExists);
    expect(await codeOf(h.svc.delete({ id: 'c1', exec_id: '' }))).toBe(Code.FailedPrecondition);
    expect(await codeOf(h.svc.start({ id: 'c1', exec_id: '' }))).toBe(Code.FailedPrecondition);
    expect(await codeOf(h.svc.resume({ id: 'c1' }))).toBe(Code.FailedPrecondition);
    expect(await codeOf(h.svc.checkpoint({ id: 'c1', path: '/x', options: null }))).toBe(Code.Unimplemented);
    // Malformed Anys.
    expect(await codeOf(h.svc.exec({ ...execReq('c1', 'x'), spec: { type_url: 'bogus', value: Buffer.from('{}') } }))).toBe(Code.InvalidArgument);
    expect(await codeOf(h.svc.exec({ ...execReq('c1', 'x'), spec: { type_url: PROCESS_TYPE_URL, value: Buffer.from('{not json') } }))).toBe(Code.InvalidArgument);
    expect(await codeOf(h.svc.exec({ ...execReq('c1', 'x'), spec: { type_url: PROCESS_TYPE_URL, value: Buffer.from('{"args":"x"}') } }))).toBe(Code.InvalidArgument);
    expect(await codeOf(h.svc.update({ id: 'c1', resources: { type_url: RESOURCES_TYPE_URL, value: Buffer.from('[1]') }, annotations: {} }))).toBe(Code.InvalidArgument);
    const badOptions = { type_url: 'runtimeoptions.v1.Options', value: Buffer.from([0x12, 0x50, 0x41]) }; // truncated string
    expect(await codeOf(h.svc.create({ ...createReq('c4'), options: badOptions }))).toBe(Code.InvalidArgument);
    // Exec ids are unique per container.
    await h.svc.exec(execReq('c1', 'e1'));
    expect(await codeOf(h.svc.exec(execReq('c1', 'e1')))).toBe(Code.AlreadyExists);
    // An exec that never started cannot be killed; an unknown one is NotFound.
    expect(await codeOf(h.svc.kill({ id: 'c1', exec_id: 'e1', signal: 9, all: false }))).toBe(Code.FailedPrecondition);
    expect(await codeOf(h.svc.kill({ id: 'c1', exec_id: 'e9', signal: 9, all: false }))).toBe(Code.NotFound);
    // A finished process: kill is NotFound, exec is refused, delete works.
    h.rt.exit(pid, 0);
    await h.svc.wait({ id: 'c1', exec_id: '' });
    expect(await codeOf(h.svc.kill({ id: 'c1', exec_id: '', signal: 15, all: false }))).toBe(Code.NotFound);
    expect(await codeOf(h.svc.exec(execReq('c1', 'e2')))).toBe(Code.FailedPrecondition);
    expect(await codeOf(h.svc.update({ id: 'c1', resources: { type_url: RESOURCES_TYPE_URL, value: Buffer.from('{}') }, annotations: {} }))).toBe(Code.FailedPrecondition);
    await h.svc.delete({ id: 'c1', exec_id: '' });
    expect(await codeOf(h.svc.state({ id: 'c1', exec_id: '' }))).toBe(Code.NotFound);
  });

  it('answers Kill of an init the runtime already sees stopped with NotFound', async () => {
    const h = makeService();
    await running(h);
    h.rt.onKill = () => {
      throw new (require('../../runtime/errors').FailedPreconditionError)('container not running');
    };
    expect(await codeOf(h.svc.kill({ id: 'c1', exec_id: '', signal: 15, all: false }))).toBe(Code.NotFound);
  });

  it('passes kill --all to the runtime and forces the terminal flag of an exec', async () => {
    const h = makeService();
    await running(h);
    await h.svc.kill({ id: 'c1', exec_id: '', signal: 9, all: true });
    expect(h.rt.calls).toContain('kill c1 9 all');
    await h.svc.exec({ ...execReq('c1', 'e1', ['/bin/sh']) });
    await h.svc.start({ id: 'c1', exec_id: 'e1' });
    expect(h.rt.calls).toContain('exec c1 /bin/sh terminal=false');
  });

  it('State reports stdio, pid, status and the exit', async () => {
    const h = makeService();
    const pid = await running(h);
    await h.svc.exec({ ...execReq('c1', 'e1'), stdin: '', stdout: '' });
    expect(await h.svc.state({ id: 'c1', exec_id: 'e1' })).toMatchObject({ id: 'c1', exec_id: 'e1', pid: 0, status: TaskStatus.CREATED });
    const execPid = await startExec(h, 'c1', 'e1');
    await h.svc.pause({ id: 'c1' });
    // An exec in a paused container is paused too.
    expect((await h.svc.state({ id: 'c1', exec_id: 'e1' })).status).toBe(TaskStatus.PAUSED);
    await h.svc.resume({ id: 'c1' });
    h.rt.exit(execPid, 5);
    await h.svc.wait({ id: 'c1', exec_id: 'e1' });
    const st = await h.svc.state({ id: 'c1', exec_id: 'e1' });
    expect(st).toMatchObject({ pid: execPid, status: TaskStatus.STOPPED, exit_status: 5 });
    expect(st.exited_at!.seconds).toBeGreaterThan(0);
    // The result stays readable until Delete, then it is gone.
    expect((await h.svc.wait({ id: 'c1', exec_id: 'e1' })).exit_status).toBe(5);
    expect(await h.svc.delete({ id: 'c1', exec_id: 'e1' })).toMatchObject({ pid: execPid, exit_status: 5 });
    expect(await codeOf(h.svc.state({ id: 'c1', exec_id: 'e1' }))).toBe(Code.NotFound);
    expect((await h.svc.state({ id: 'c1', exec_id: '' })).pid).toBe(pid);
  });

  it('Pids is never empty for a live task and tags exec pids', async () => {
    const h = makeService();
    const pid = await running(h);
    await h.svc.exec(execReq('c1', 'e1'));
    const execPid = await startExec(h, 'c1', 'e1');
    const r = (await h.svc.pids({ id: 'c1' })).processes!;
    expect(r.map((p) => p!.pid).sort()).toEqual([pid, execPid].sort());
    const tagged = r.find((p) => p!.pid === execPid)!;
    expect(tagged.info!.type_url).toBe('containerd.runc.v1.ProcessDetails');
    expect(decode('containerd.runc.v1.ProcessDetails', tagged.info!.value!).exec_id).toBe('e1');
    h.rt.pidList = []; // the cgroup read came back empty
    expect((await h.svc.pids({ id: 'c1' })).processes!.map((p) => p!.pid)).toEqual([pid]);
  });

  it('Stats returns a bare-URL cgroups Metrics Any', async () => {
    const h = makeService();
    await running(h);
    const { stats } = await h.svc.stats({ id: 'c1' });
    expect(stats!.type_url).toBe('io.containerd.cgroups.v1.Metrics');
    const m = decode('io.containerd.cgroups.v1.Metrics', stats!.value!);
    expect(m.pids!.current).toBe(2);
    expect(m.memory!.usage!.usage).toBe(4096);
  });

  it('Connect never fails; Shutdown exits only with no container left', async () => {
    const h = makeService();
    expect(await h.svc.connect({ id: 'nope' })).toEqual({ shim_pid: process.pid, task_pid: 0, version: '' });
    const pid = await running(h);
    expect((await h.svc.connect({ id: 'c1' })).task_pid).toBe(pid);
    await h.svc.shutdown({ id: 'c1', now: false });
    await tick(5);
    expect(h.shutdowns).toBe(0);
    h.rt.exit(pid, 0);
    await h.svc.wait({ id: 'c1', exec_id: '' });
    await h.svc.delete({ id: 'c1', exec_id: '' });
    await h.svc.shutdown({ id: 'c1', now: false });
    await tick(5);
    expect(h.shutdowns).toBe(1);
  });

  it('serves several containers independently', async () => {
    const h = makeService();
    const a = await running(h, 'a');
    await running(h, 'b');
    h.rt.exit(a, 0);
    await h.svc.wait({ id: 'a', exec_id: '' });
    await h.svc.delete({ id: 'a', exec_id: '' });
    expect((await h.svc.state({ id: 'b', exec_id: '' })).status).toBe(TaskStatus.RUNNING);
    expect([...h.svc.containers.keys()]).toEqual(['b']);
  });

  it('reads runtime options: runc options are honoured, unknown types tolerated', async () => {
    const h = makeService();
    const runc = { type_url: 'containerd.runc.v1.Options', value: encode('containerd.runc.v1.Options', { no_pivot_root: true }) };
    await h.svc.create({ ...createReq('c1'), options: runc });
    await h.svc.create({ ...createReq('c2'), options: { type_url: 'example.com/Unknown', value: Buffer.from([1, 2, 3]) } });
    expect(h.svc.containers.size).toBe(2);
  });
});
