// The shim protocol against a real containerd 1.7 (docs/protocol.md), in both modes:
//
//   grpc   negotiated (nothing forced): `start` asks containerd's Version service, announces
//          {"version":2,"protocol":"grpc",...}, and containerd calls containerd.task.v3.Task
//          over gRPC; events go by gRPC Publish. Proven from the bundle's `address` file,
//          containerd's "shim bootstrap parameters" line and the shim's own log.
//   ttrpc  forced by VKERNEL_SHIM_PROTOCOL=ttrpc in containerd's environment: the plain address.
//
// VKERNEL_TEST_SHIM_PROTOCOL=grpc|ttrpc runs one mode only (CI runs the suite once per mode);
// unset runs both. Each mode drives ctr run/exec/kill/pause/resume/metrics/ps/events and a
// containerd restart through a private shim manager (the warm path). gRPC mode adds: the
// cold path, the keep-alive (a detached container gets State calls at a short configured
// interval with no client activity), and a grpc-js client calling every task method on a
// running shim daemon.
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { decode, encode, methodTypes, serviceMethods, TaskStatus } from '../../shim/proto';
import { Code } from '../../shim/ttrpc';
import { containerd17Dir, describeIf, makeBundle, requireFixtures, requireRoot, requireRuntime, requirement, uniqueId, vktest, withLeakCheck } from '../harness';
import { startShimEnv, sleep, tasks, waitFor, RUNTIME, type ShimEnv } from './helpers/shim-env';
import { EventWatcher, ensureSubscribed, processAny } from './shim-daemon-helpers';

type Mode = 'grpc' | 'ttrpc';
const only = process.env.VKERNEL_TEST_SHIM_PROTOCOL;
const MODES: Mode[] = only === 'grpc' || only === 'ttrpc' ? [only] : ['grpc', 'ttrpc'];

const have17 = process.env.CI === 'true' || fs.existsSync(path.join(containerd17Dir(), 'usr', 'bin', 'containerd'));
const ok =
  requireRoot() &&
  requireFixtures() &&
  requireRuntime('vkernel') &&
  requirement(have17, `containerd 1.7 missing under ${containerd17Dir()} (scripts/install-containerd17.sh)`);

const V3 = 'containerd.task.v3.Task';

/** Lines of containerd's log (which holds the shim's log lines) matching `re`. */
function logLines(env: ShimEnv, re: RegExp): string[] {
  return env.cd.log().split('\n').filter((l) => re.test(l));
}

/** time="..." of a logrus line, in epoch ms. */
function lineTime(line: string): number {
  return Date.parse(/time="([^"]+)"/.exec(line)![1]);
}

/**
 * What env.stop() found, less the runtime's per-root cache dir (`<state root>/.vkernel`, made
 * by runtime/vkernel, not a container).
 */
async function stopEnv(env: ShimEnv): Promise<string[]> {
  return (await env.stop()).filter((l) => !/^vkernel-state: .*\/\.vkernel$/.test(l));
}

/** SIGKILL, wait, `task rm`, `container rm`; quiet about whatever is already gone. */
async function removeTask(env: ShimEnv, id: string): Promise<void> {
  await env.cd.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
  await waitFor('the task to stop', async () => !new RegExp(`${id}\\s+\\d+\\s+(RUNNING|PAUSED)`).test((await env.cd.ctr(['task', 'ls'])).stdout), 15_000).catch(() => undefined);
  await env.cd.ctr(['task', 'rm', '-f', id]);
  await env.cd.ctr(['container', 'rm', id]);
}

/** `<bundle>/address` exactly as `start` wrote it. */
function addressFile(env: ShimEnv, id: string): string {
  return fs.readFileSync(path.join(env.bundle(id), 'address'), 'utf8');
}

/** The mode's proof, from the running container's bundle and the logs. */
function expectProtocol(env: ShimEnv, id: string, mode: Mode): void {
  const address = addressFile(env, id);
  if (mode === 'grpc') {
    expect(address).toMatch(/^\{"version":2,"protocol":"grpc","address":"\/run\/containerd\/s\/[0-9a-f]{64}"\}$/);
    const socket = (JSON.parse(address) as { address: string }).address;
    expect(logLines(env, /msg="shim bootstrap parameters"/).some((l) => l.includes(`address=${socket}`) && l.includes('protocol=grpc'))).toBe(true);
    expect(logLines(env, new RegExp(`msg="shim protocol grpc, bootstrap version 2, answered as json \\(negotiated; containerd 1\\.7\\..*id=${id}\\b`))).toHaveLength(1);
    expect(logLines(env, new RegExp(`msg="grpc: Start id=${id}"`)).length).toBeGreaterThan(0);
  } else {
    expect(address).toMatch(/^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
    expect(logLines(env, /msg="shim bootstrap parameters"/).some((l) => l.includes(address) && l.includes('protocol=ttrpc'))).toBe(true);
    expect(logLines(env, new RegExp(`msg="shim protocol ttrpc, bootstrap version 2, answered as plain \\(forced by environment;.*id=${id}\\b`))).toHaveLength(1);
    expect(logLines(env, /msg="grpc: /)).toEqual([]);
  }
}

describe.each(MODES)('containerd 1.7, shim protocol %s', (mode) => {
  describeIf(ok)('ctr through the warm shim manager', () => {
    let env: ShimEnv;
    let events: EventWatcher;

    beforeAll(async () => {
      env = await startShimEnv('1.7', { debug: true, env: { VKERNEL_SHIM_PROTOCOL: mode === 'grpc' ? 'auto' : 'ttrpc' } });
      events = new EventWatcher(env.cd);
      await ensureSubscribed(env.cd, events);
    }, 90_000);

    afterAll(async () => {
      events?.stop();
      if (env) expect(await stopEnv(env)).toEqual([]);
    }, 60_000);

    it('ctr run --rm: output and exit code', async () => {
      const r = await env.cd.ctrOk(env.runArgs(uniqueId('g'), ['/bin/busybox', 'echo', 'hello over', mode], ['--rm']));
      expect(r.stdout).toBe(`hello over ${mode}\n`);
      const bad = await env.cd.ctr(env.runArgs(uniqueId('g'), ['/bin/busybox', 'sh', '-c', 'exit 7'], ['--rm']));
      expect(bad.code).toBe(7);
    });

    it('run -d, exec, ps, pause/resume, metrics, kill, events, rm', async () => {
      const id = uniqueId('g');
      await env.cd.ctrOk(env.runArgs(id, ['/bin/busybox', 'sleep', '300'], ['-d']));
      try {
        await runDetached(id);
      } finally {
        await removeTask(env, id);
      }
    }, 90_000);

    async function runDetached(id: string): Promise<void> {
      expectProtocol(env, id, mode);
      const exec = await env.cd.ctrOk(['task', 'exec', '--exec-id', 'e1', id, '/bin/busybox', 'sh', '-c', 'echo from exec; exit 3'], { timeoutMs: 30_000 }).catch((e: Error) => e);
      // ctr task exec exits with the exec's status.
      expect(exec instanceof Error ? exec.message : '').toMatch(/exited 3/);
      const out = await env.cd.ctr(['task', 'exec', '--exec-id', 'e2', id, '/bin/busybox', 'echo', 'again']);
      expect(out).toMatchObject({ code: 0, stdout: 'again\n' });
      const ps = await env.cd.ctrOk(['task', 'ps', id]);
      expect(ps.stdout).toMatch(/^PID\s+INFO/);
      expect(ps.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(2);
      await env.cd.ctrOk(['task', 'pause', id]);
      expect((await env.cd.ctrOk(['task', 'ls'])).stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+PAUSED`));
      await env.cd.ctrOk(['task', 'resume', id]);
      expect((await env.cd.ctrOk(['task', 'ls'])).stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
      const metrics = await env.cd.ctrOk(['task', 'metrics', id]);
      expect(metrics.stdout).toMatch(/memory\.usage_in_bytes|memory\.current|pids\.current/);
      await env.cd.ctrOk(['task', 'kill', '-s', 'SIGKILL', id]);
      await waitFor('the task to stop', async () => /STOPPED/.test((await env.cd.ctr(['task', 'ls'])).stdout), 15_000);
      await env.cd.ctrOk(['task', 'rm', id]);
      await env.cd.ctrOk(['container', 'rm', id]);
      await events.waitFor('TaskDelete', (e) => e.topic === '/tasks/delete' && e.event.container_id === id, 15_000);
      const topics = events.topicsOf(id);
      for (const t of ['/tasks/create', '/tasks/start', '/tasks/exec-added', '/tasks/exec-started', '/tasks/paused', '/tasks/resumed', '/tasks/exit', '/tasks/delete']) {
        expect(topics).toContain(t);
      }
      expect(topics.indexOf('/tasks/create')).toBeLessThan(topics.indexOf('/tasks/start'));
      expect(topics.indexOf('/tasks/paused')).toBeLessThan(topics.indexOf('/tasks/resumed'));
      expect(topics[topics.length - 1]).toBe('/tasks/delete');
      const initExit = events.of(id).find((e) => e.topic === '/tasks/exit' && e.event.id === id)!;
      expect(initExit.event.exit_status).toBe(137);
    }

    it('survives a containerd restart: reconnects with the protocol in the address file', async () => {
      const id = uniqueId('g');
      await env.cd.ctrOk(env.runArgs(id, ['/bin/busybox', 'sleep', '300'], ['-d']));
      try {
        const before = addressFile(env, id);
        const restartedAt = Date.now();
        await env.cd.restart();
        // `ctr events` ended with the old containerd.
        events.stop();
        events = new EventWatcher(env.cd);
        await ensureSubscribed(env.cd, events);
        expect((await env.cd.ctrOk(['task', 'ls'])).stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
        expect(addressFile(env, id)).toBe(before);
        expect(await env.cd.ctr(['task', 'exec', '--exec-id', 'after', id, '/bin/busybox', 'echo', 'still here'])).toMatchObject({ code: 0, stdout: 'still here\n' });
        await env.cd.ctrOk(['task', 'kill', '-s', 'SIGKILL', id]);
        await events.waitFor('TaskExit after the restart', (e) => e.topic === '/tasks/exit' && e.event.container_id === id, 15_000);
        if (mode === 'grpc') {
          // containerd reconnected over gRPC: the calls after the restart arrived on gRPC.
          expect(logLines(env, new RegExp(`msg="grpc: (Connect|State|Exec|Kill) id=${id}`)).filter((l) => lineTime(l) > restartedAt).length).toBeGreaterThan(2);
        }
      } finally {
        await removeTask(env, id);
      }
    }, 90_000);
  });
});

// Defined only when gRPC mode runs (a ttrpc-only run has nothing to skip).
(MODES.includes('grpc') ? describeIf(ok) : (() => undefined) as unknown as jest.Describe)('containerd 1.7, gRPC mode only', () => {
  it('the cold path (no manager) negotiates gRPC too', async () => {
    const env = await startShimEnv('1.7', { manager: 'off', debug: true, env: { VKERNEL_SHIM_PROTOCOL: 'auto' } });
    try {
      const id = uniqueId('c');
      await env.cd.ctrOk(env.runArgs(id, ['/bin/busybox', 'sleep', '300'], ['-d']));
      try {
        expectProtocol(env, id, 'grpc');
        expect(await env.cd.ctr(['task', 'exec', '--exec-id', 'x', id, '/bin/busybox', 'echo', 'cold'])).toMatchObject({ code: 0, stdout: 'cold\n' });
      } finally {
        await removeTask(env, id);
      }
    } finally {
      expect(await stopEnv(env)).toEqual([]);
    }
  }, 90_000);

  it('keep-alive: a detached container gets State calls at the configured interval, with no client activity', async () => {
    const env = await startShimEnv('1.7', { debug: true, env: { VKERNEL_SHIM_PROTOCOL: 'auto' } });
    const interval = 1500;
    try {
      const config = path.join(env.dir, 'vkernel.toml');
      fs.writeFileSync(config, `[shim]\ngrpc_keepalive_interval_ms = ${interval}\n`);
      const id = uniqueId('k');
      await env.cd.ctrOk(env.runArgs(id, ['/bin/busybox', 'sleep', '300'], ['-d', '--runtime-config-path', config]));
      try {
        await keepAlive(id);
      } finally {
        await removeTask(env, id);
      }
    } finally {
      expect(await stopEnv(env)).toEqual([]);
    }

    async function keepAlive(id: string): Promise<void> {
      const task = async () => (await tasks(env.cd)).get(id);
      const shimBefore = env.shimPidOf(id);
      const taskBefore = await task();
      expect(taskBefore?.status).toBe('RUNNING');
      const t0 = Date.now() + 200; // ctr's own calls (State after Start) are done by then
      // Eight rounds' worth: enough that a containerd latency spike delaying or skipping a
      // round or two (a round is skipped while the previous one runs) leaves the period clear.
      await sleep(8 * interval + 500); // nobody calls containerd meanwhile
      const t1 = Date.now();
      // Nothing else changes: the same task pid, still running, served by the same daemon,
      // and the shim got no call but State in the window (no Delete, no reconnection).
      expect(await task()).toEqual(taskBefore);
      expect(env.shimPidOf(id)).toBe(shimBefore);
      const others = logLines(env, /msg="grpc: \w+/)
        .filter((l) => lineTime(l) >= t0 && lineTime(l) <= t1)
        .map((l) => /msg="grpc: (\w+)/.exec(l)![1])
        .filter((m) => m !== 'State');
      expect(others).toEqual([]);
      expect(logLines(env, /shim disconnected|cleaning up after shim|cleanup dead shim/).filter((l) => lineTime(l) >= t0)).toEqual([]);
      const states = logLines(env, new RegExp(`msg="grpc: State id=${id}"`)).map(lineTime).filter((t) => t >= t0 && t <= t1);
      const gets = logLines(env, new RegExp(`msg="keep-alive: Tasks.Get ${env.namespace}/${id} done`)).map(lineTime).filter((t) => t >= t0 && t <= t1);
      expect(states.length).toBeGreaterThanOrEqual(4);
      expect(gets.length).toBeGreaterThanOrEqual(4);
      // At the configured interval: the median gap, which a late round (one long gap, then a
      // short one) or a skipped one does not move.
      const gaps = states.slice(1).map((t, i) => t - states[i]).sort((a, b) => a - b);
      const median = gaps[Math.floor(gaps.length / 2)];
      expect(median).toBeGreaterThan(interval * 0.5);
      expect(median).toBeLessThan(interval * 1.5);
      // The mechanism is logged once, saying what it does and why.
      const announce = logLines(env, /msg="keep-alive: every 1500 ms the shim calls containerd's Tasks.Get at /);
      expect(announce).toHaveLength(1);
      expect(announce[0]).toContain('so containerd calls State on it (containerd 1.7 tears a gRPC shim down after 30 idle minutes)');
    }
  }, 90_000);

  describe('a grpc-js client against a running shim daemon', () => {
    let env: ShimEnv;
    let daemon: ChildProcess;
    let stderr = '';
    let dir: string;
    let socket: string;
    let client: grpc.Client;

    beforeAll(async () => {
      env = await startShimEnv('1.7', { image: false, env: { VKERNEL_SHIM_PROTOCOL: 'auto' } });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-grpcd-'));
      socket = path.join(dir, 'shim.sock');
      const config = {
        namespace: env.namespace,
        address: env.cd.address,
        ttrpcAddress: env.cd.ttrpcAddress,
        grpcAddress: env.cd.address,
        publishBinary: env.cd.binary,
        socketPath: socket,
        debug: true,
        groupId: 'grpc-test',
        stateRoot: path.join(dir, 'state'),
        configPath: path.join(dir, 'no-config.toml'),
        protocol: 'grpc',
      };
      daemon = spawn(process.execPath, [path.join(__dirname, 'shim-serve-entry.js')], {
        env: { ...process.env, VKERNEL_TEST_DAEMON: JSON.stringify(config) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      daemon.stderr!.on('data', (d) => (stderr += d));
      const ready = await new Promise<boolean>((resolve) => {
        daemon.stdout!.once('data', () => resolve(true));
        daemon.once('exit', () => resolve(false));
      });
      if (!ready) throw new Error(`shim daemon did not start:\n${stderr}`);
      client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
    }, 90_000);

    afterAll(async () => {
      client?.close();
      if (daemon && daemon.exitCode === null) {
        daemon.kill('SIGKILL');
        await new Promise((r) => daemon.once('exit', r));
      }
      const left = env ? await stopEnv(env) : [];
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      expect(left).toEqual([]);
    }, 60_000);

    function call(method: string, req: object): Promise<Record<string, unknown>> {
      const { requestType, responseType } = methodTypes(V3, method);
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          `/${V3}/${method}`,
          (b: Buffer) => b,
          (b: Buffer) => b,
          encode(requestType, req as never),
          new grpc.Metadata(),
          {},
          (err: grpc.ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(decode(responseType, res!) as unknown as Record<string, unknown>)),
        );
      });
    }

    async function codeOf(p: Promise<unknown>): Promise<number> {
      try {
        await p;
        return Code.OK;
      } catch (err) {
        return (err as grpc.ServiceError).code;
      }
    }

    /** A unary call with raw bytes to any path: the status code it ends with. */
    function rawCode(route: string, body: Buffer): Promise<number> {
      return new Promise((resolve) => {
        client.makeUnaryRequest(route, (b: Buffer) => b, (b: Buffer) => b, body, new grpc.Metadata(), {}, (err: grpc.ServiceError | null) =>
          resolve(err ? err.code : Code.OK),
        );
      });
    }

    it('bad input: unknown methods, malformed and oversized messages, junk connections -> status codes; the daemon keeps serving', async () => {
      expect(await rawCode(`/${V3}/NoSuchMethod`, Buffer.alloc(0))).toBe(Code.Unimplemented);
      expect(await rawCode('/no.such.Service/State', Buffer.alloc(0))).toBe(Code.Unimplemented);
      expect(await rawCode(`/${V3}/State`, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toBe(Code.InvalidArgument); // a length past the end
      expect(await rawCode(`/${V3}/Create`, Buffer.from([0xff, 0xff, 0xff]))).toBe(Code.InvalidArgument);
      expect(await rawCode(`/${V3}/State`, Buffer.alloc(5 * 1024 * 1024, 0x41))).toBe(Code.ResourceExhausted);
      for (const junk of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.alloc(4096, 0xee)]) {
        await new Promise<void>((resolve) => {
          const conn = net.connect(socket, () => conn.end(junk));
          conn.on('error', () => resolve());
          conn.on('close', () => resolve());
          conn.resume();
        });
      }
      expect(await codeOf(call('State', { id: 'no-such-task' }))).toBe(Code.NotFound);
      expect(await codeOf(call('Create', { id: '../escape', bundle: dir }))).toBe(Code.InvalidArgument);
      expect(daemon.exitCode).toBeNull();
      expect(stderr).not.toMatch(/uncaught|unhandled/i);
    });

    it('calls every method of containerd.task.v3.Task on real containers', () =>
      withLeakCheck(
        async () => {
          const called = new Set<string>();
          const c = (m: string, req: object) => {
            called.add(m);
            return call(m, req);
          };
          const id = uniqueId('vkg');
          const b = await makeBundle({ id, args: vktest('sleep', 60), mutate: (s) => void (s.linux!.cgroupsPath = `/${env.namespace}/${id}`) });
          try {
            const { pid } = await c('Create', { id, bundle: b.dir });
            expect(await c('Connect', { id })).toMatchObject({ shim_pid: daemon.pid, task_pid: pid });
            expect(await c('State', { id })).toMatchObject({ id, pid, status: TaskStatus.CREATED, bundle: b.dir });
            expect(await c('Start', { id })).toEqual({ pid });
            expect(((await c('Pids', { id })).processes as Array<{ pid: number }>).map((p) => p.pid)).toContain(pid);
            await c('Exec', { id, exec_id: 'e1', spec: processAny(b.spec.process!, vktest('sleep', 60)) });
            const { pid: execPid } = await c('Start', { id, exec_id: 'e1' });
            expect(await codeOf(c('ResizePty', { id, exec_id: 'e1', width: 80, height: 24 }))).not.toBe(Code.Unimplemented);
            expect(await c('CloseIO', { id, exec_id: 'e1', stdin: true })).toEqual({});
            expect(await c('Pause', { id })).toEqual({});
            expect((await c('State', { id })).status).toBe(TaskStatus.PAUSED);
            expect(await c('Resume', { id })).toEqual({});
            expect(await c('Update', { id, resources: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from('{"pids":{"limit":64}}') } })).toEqual({});
            const stats = (await c('Stats', { id })).stats as { type_url: string };
            expect(stats.type_url).toMatch(/^io\.containerd\.cgroups\.v[12]\.Metrics$/);
            expect(await codeOf(c('Checkpoint', { id, path: path.join(dir, 'cp') }))).toBe(Code.Unimplemented);
            const execWait = c('Wait', { id, exec_id: 'e1' });
            await c('Kill', { id, exec_id: 'e1', signal: 9 });
            expect(await execWait).toMatchObject({ exit_status: 137 });
            expect(await c('Delete', { id, exec_id: 'e1' })).toMatchObject({ pid: execPid, exit_status: 137 });
            const wait = c('Wait', { id });
            await c('Kill', { id, signal: 9 }); // the init is pid 1 of its namespace: SIGTERM would be ignored
            expect(await wait).toMatchObject({ exit_status: 137 });
            expect(await c('Delete', { id })).toMatchObject({ pid, exit_status: 137 });
            expect(await codeOf(c('State', { id }))).toBe(Code.NotFound);
            const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
            expect(await c('Shutdown', { id })).toEqual({});
            expect(await exited).toBe(0); // nothing left to serve: the daemon exits
            expect(fs.existsSync(socket)).toBe(false);
            expect([...called].sort()).toEqual([...serviceMethods(V3)].sort());
            expect(stderr).toMatch(/serving tasks over gRPC on .* events by gRPC Publish; keep-alive: every 5 min/);
          } finally {
            await b.cleanup();
          }
        },
        { root: path.join(dir, 'state'), settleMs: 5000 },
      ), 60_000);
  });
});
