// containerd-shim-vkernel-v2 under failures, against real containerd 1.6 and 1.7 via ctr:
//   - containerd restarted (SIGTERM) while a container runs: the daemon keeps serving, the
//     new containerd reconnects, kill / wait / exec work and the exit code arrives;
//   - containerd SIGKILLed, the container exits while it is down, containerd comes back:
//     the exit status is still delivered;
//   - the shim daemon SIGKILLed: containerd notices, runs our `delete` action, publishes
//     exit/delete, and nothing of the container is left (mounts, cgroups, processes,
//     runtime state, sockets) — for a lone container and for a group of two.
import * as fs from 'node:fs';
import { describeIf, requireFixtures, requirement, requireRoot, type ContainerdVersion } from '../harness';
import {
  alive,
  cgroupDirsOf,
  deletedExitCode,
  EventRecorder,
  LAUNCHER,
  mountsUnder,
  processesWith,
  removeContainer,
  startShimEnv,
  tasks,
  taskStatus,
  waitFor,
  waitStatus,
  type ShimEnv,
  shimSuiteVersions,
} from './helpers/shim-env';

const VERSIONS: ContainerdVersion[] = shimSuiteVersions();

const ok = requireRoot() && requireFixtures() && requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (run \`make all\`)`);

jest.setTimeout(120_000);

/** An init that exits 42 on SIGTERM (pid 1 ignores signals it does not handle). */
const TRAP_TERM = ['sh', '-c', 'trap "exit 42" TERM; while :; do sleep 0.05; done'];

async function expectClean(env: ShimEnv, timeoutMs = 15_000): Promise<void> {
  let left: string[] = [];
  await waitFor('no leftovers', async () => (left = await env.leftovers()).length === 0, timeoutMs, 100).catch(() => undefined);
  expect(left).toEqual([]);
}

interface Footprint {
  initPid: number;
  daemon: number;
  socket: string;
  bundle: string;
  cgroups: string[];
  stateDir: string;
  helpers: number[];
}

/** Everything a running container of ours occupies on the host. */
async function footprint(env: ShimEnv, id: string): Promise<Footprint> {
  const initPid = (await tasks(env.cd)).get(id)!.pid;
  const address = env.address(id);
  const daemon = env.daemonOf(address);
  if (daemon === undefined) throw new Error(`no daemon holds ${address} (daemons: ${env.daemons().join(', ')})`);
  const stateDir = `${env.stateRoot}/${id}`;
  return {
    initPid,
    daemon,
    socket: address.replace(/^unix:\/\//, ''),
    bundle: env.bundle(id),
    cgroups: cgroupDirsOf(initPid),
    stateDir,
    helpers: processesWith(stateDir + '/'),
  };
}

/** What of a footprint is still there. */
function remains(env: ShimEnv, f: Footprint): string[] {
  const out: string[] = [];
  if (alive(f.initPid)) out.push(`init ${f.initPid}`);
  // Gone, or back in the manager's pool serving nothing (shim/daemon/reuse.ts).
  if (env.daemons().includes(f.daemon)) out.push(`daemon ${f.daemon}`);
  for (const p of f.helpers) if (alive(p)) out.push(`helper ${p}`);
  for (const p of processesWith(f.stateDir + '/')) if (!f.helpers.includes(p)) out.push(`helper ${p}`);
  for (const m of mountsUnder([f.bundle, f.stateDir])) out.push(`mount ${m}`);
  for (const c of f.cgroups) if (fs.existsSync(c)) out.push(`cgroup ${c}`);
  if (fs.existsSync(f.stateDir)) out.push(`state ${f.stateDir}`);
  for (const s of [f.socket, `${f.socket}.protocol`]) if (fs.existsSync(s)) out.push(`socket ${s}`);
  return out;
}

describeIf(ok).each(VERSIONS)('containerd %s: recovery with io.containerd.vkernel.v2', (version) => {
  let env: ShimEnv;

  beforeAll(async () => {
    env = await startShimEnv(version);
  }, 180_000);

  afterEach(async () => {
    if (!env || env.cd.pid === undefined) return;
    const live = await tasks(env.cd).catch(() => new Map());
    const containers = (await env.cd.ctr(['containers', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    for (const id of new Set([...live.keys(), ...containers])) await removeContainer(env.cd, id);
  });

  afterAll(async () => {
    if (!env) return;
    expect(await env.stop()).toEqual([]);
  }, 120_000);

  it('containerd restarted while a container runs: RUNNING afterwards, exec, kill, wait and the exit code work', async () => {
    await env.cd.ctrOk(env.runArgs('rs', TRAP_TERM, ['-d']));
    await waitStatus(env.cd, 'rs', 'RUNNING');
    const before = await footprint(env, 'rs');

    await env.cd.restart();

    const t = (await tasks(env.cd)).get('rs');
    expect(t).toEqual({ pid: before.initPid, status: 'RUNNING' });
    expect(alive(before.daemon)).toBe(true);
    expect(env.daemonOf(env.address('rs'))).toBe(before.daemon);
    const ex = await env.cd.ctr(['task', 'exec', '--exec-id', 'after', 'rs', 'echo', 'after-restart']);
    expect({ code: ex.code, stdout: ex.stdout }).toEqual({ code: 0, stdout: 'after-restart\n' });
    expect((await env.cd.ctrOk(['task', 'ps', 'rs'])).stdout).toContain(String(before.initPid));

    const rec = await EventRecorder.start(env.cd);
    try {
      // `ctr task attach` waits for the task (Wait through the new connection), exits with its
      // status and then deletes the task (as it does with runc). Its Wait may reach the shim
      // before the kill below or after it (ctr sends it from a goroutine, with nothing to see
      // from outside): either way it gets the status, as an exited process's stays until Delete.
      const attach = env.cd.ctr(['task', 'attach', 'rs'], { timeoutMs: 30_000 });
      await env.cd.ctrOk(['task', 'kill', '-s', 'SIGTERM', 'rs']);
      expect((await attach).code).toBe(42);
      await rec.waitFor('/tasks/delete of rs', (r) => r.topics('rs').includes('/tasks/delete'));
      expect(rec.topics('rs')).toEqual(['/tasks/exit', '/tasks/delete']);
      expect(rec.taskEvents('rs')[0].event).toMatchObject({ container_id: 'rs', id: 'rs', pid: before.initPid, exit_status: 42 });
      expect(rec.taskEvents('rs')[1].event).toMatchObject({ container_id: 'rs', pid: before.initPid, exit_status: 42 });
      expect(await taskStatus(env.cd, 'rs')).toBeUndefined();
    } finally {
      rec.stop();
    }
    await env.cd.ctrOk(['container', 'delete', 'rs']);
    await waitFor('the daemon to leave its group', () => !env.daemons().includes(before.daemon), 15_000);
    expect(remains(env, before)).toEqual([]);
    await expectClean(env);
  });

  // 1.6 reconnects and keeps the stopped task (its status readable until Delete). 1.7 asks
  // Pids after reconnecting and, finding no process, deletes the task itself as a leaked
  // shim ("cleaning leaked shim process") — exactly what it does with io.containerd.runc.v2.
  it('containerd SIGKILLed, the container exits while it is down: after the restart (1.6) the exit status is delivered, (1.7) the task is cleaned up as with runc', async () => {
    await env.cd.ctrOk(env.runArgs('down', TRAP_TERM, ['-d']));
    await waitStatus(env.cd, 'down', 'RUNNING');
    const before = await footprint(env, 'down');

    await env.cd.kill9();
    process.kill(before.initPid, 'SIGTERM');
    await waitFor('the init to exit while containerd is down', () => !alive(before.initPid), 10_000);
    expect(alive(before.daemon)).toBe(true);
    await env.cd.restart();

    if (version === '1.6') {
      await waitStatus(env.cd, 'down', 'STOPPED');
      expect(deletedExitCode(await env.cd.ctr(['task', 'delete', 'down']))).toBe(42);
    } else {
      await waitStatus(env.cd, 'down', undefined);
      expect(env.cd.log()).toMatch(/cleaning leaked shim process.*id=down/);
    }
    await env.cd.ctrOk(['container', 'delete', 'down']);
    await waitFor('the daemon to leave its group', () => !env.daemons().includes(before.daemon), 15_000);
    expect(remains(env, before)).toEqual([]);
    await expectClean(env);
  });

  it('kill -9 of the shim daemon: containerd runs our delete action; exit/delete are published; nothing is left', async () => {
    const rec = await EventRecorder.start(env.cd);
    let before: Footprint;
    try {
      await env.cd.ctrOk(env.runArgs('k9', ['sleep', '600'], ['-d']));
      await waitStatus(env.cd, 'k9', 'RUNNING');
      before = await footprint(env, 'k9');
      expect(alive(before.daemon)).toBe(true);

      process.kill(before.daemon, 'SIGKILL');

      await rec.waitFor('containerd to publish exit and delete for k9', (r) => r.topics('k9').includes('/tasks/delete'));
      expect(rec.topics('k9')).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
      // containerd's own events for a dead shim: status 137 (what our delete action answers).
      expect(rec.taskEvents('k9')[2].event).toMatchObject({ container_id: 'k9', id: 'k9', exit_status: 137 });
      expect(rec.taskEvents('k9')[3].event).toMatchObject({ container_id: 'k9', exit_status: 137 });
    } finally {
      rec.stop();
    }
    expect(await taskStatus(env.cd, 'k9')).toBeUndefined();
    let left: string[] = [];
    await waitFor('the container to be cleaned up', () => (left = remains(env, before)).length === 0, 10_000).catch(() => undefined);
    expect(left).toEqual([]);
    await env.cd.ctrOk(['container', 'delete', 'k9']);
    await expectClean(env);
  });

  it('kill -9 of a daemon serving a group of two: both containers are cleaned up', async () => {
    const group = ['--annotation', 'io.containerd.runc.v2.group=crashgroup'];
    await env.cd.ctrOk(env.runArgs('kg1', ['sleep', '600'], ['-d', ...group]));
    await env.cd.ctrOk(env.runArgs('kg2', ['sleep', '600'], ['-d', ...group]));
    const a = await footprint(env, 'kg1');
    const b = await footprint(env, 'kg2');
    expect(b.daemon).toBe(a.daemon);

    process.kill(a.daemon, 'SIGKILL');

    await waitFor('both tasks to be gone', async () => {
      const t = await tasks(env.cd);
      return !t.has('kg1') && !t.has('kg2');
    }, 20_000);
    let left: string[] = [];
    await waitFor('both containers to be cleaned up', () => (left = [...remains(env, a), ...remains(env, b)]).length === 0, 10_000).catch(() => undefined);
    expect([...new Set(left)]).toEqual([]);
    await env.cd.ctrOk(['container', 'delete', 'kg1', 'kg2']);
    await expectClean(env);
  });
});
