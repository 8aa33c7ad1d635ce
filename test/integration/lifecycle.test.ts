// Lifecycle verbs through the CLI, as runc users drive them. Runs against the runtime
// under test (RUNTIME=vkernel by default; RUNTIME=runc validates the tests themselves).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  cleanupRuntimeRoot,
  describeIf,
  makeBundle,
  requireFixtures,
  requireRoot,
  requireRuntime,
  runBundle,
  runRuntime,
  runRuntimeOk,
  runtimeName,
  spawnRuntime,
  withLeakCheck,
} from '../harness';

const ok = requireRoot() && requireFixtures() && requireRuntime();
const isRunc = runtimeName() === 'runc';

async function stateOf(id: string): Promise<{ status: string; pid: number }> {
  const r = await runRuntimeOk(['state', id]);
  return JSON.parse(r.stdout);
}

describeIf(ok)(`lifecycle (${runtimeName()})`, () => {
  afterAll(() => cleanupRuntimeRoot());

  it('run prints the workload output and returns its exit code', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'echo', 'hello', 'world'] });
      const r = await runBundle(b);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('hello world\n');
      expect(r.code).toBe(0);
      const b7 = await makeBundle({ args: ['/vktest', 'exit', '7'] });
      expect((await runBundle(b7)).code).toBe(7);
    }));

  it('run returns 128+N when the workload dies of signal N', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'] });
      const child = runBundle(b);
      let pid = 0;
      for (let i = 0; i < 200 && !pid; i++) {
        await new Promise((r) => setTimeout(r, 25));
        const s = await runRuntime(['state', b.id]);
        if (s.code === 0 && JSON.parse(s.stdout).status === 'running') pid = JSON.parse(s.stdout).pid;
      }
      expect(pid).toBeGreaterThan(0);
      await runRuntimeOk(['kill', b.id, 'KILL']);
      expect((await child).code).toBe(137);
    }));

  it('create → start → state → kill → delete, with runc transitions and errors', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'] });
      const created = await runRuntime(['create', '--bundle', b.dir, b.id]);
      expect(created.code).toBe(0);
      const s1 = await stateOf(b.id);
      expect(s1.status).toBe('created');
      expect(s1.pid).toBeGreaterThan(0);

      expect((await runRuntime(['create', '--bundle', b.dir, b.id])).stderr).toMatch(/container with given ID already exists/);
      await runRuntimeOk(['start', b.id]);
      expect((await stateOf(b.id)).status).toBe('running');

      const again = await runRuntime(['start', b.id]);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(/cannot start an already running container/);

      const del = await runRuntime(['delete', b.id]);
      expect(del.code).not.toBe(0);
      expect(del.stderr).toMatch(/is not stopped|running/);

      await runRuntimeOk(['kill', b.id, 'KILL']);
      for (let i = 0; i < 100 && (await stateOf(b.id)).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20));
      const stopped = await stateOf(b.id);
      expect(stopped.status).toBe('stopped');

      const startStopped = await runRuntime(['start', b.id]);
      expect(startStopped.code).not.toBe(0);
      expect(startStopped.stderr).toMatch(/cannot start a container that has stopped/);

      await runRuntimeOk(['delete', b.id]);
      const gone = await runRuntime(['state', b.id]);
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toMatch(/container does not exist/);
    }));

  it('kill of a created container, delete of a created container', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'] });
      await runRuntimeOk(['create', '--bundle', b.dir, b.id]);
      await runRuntimeOk(['delete', b.id]);
      expect((await runRuntime(['state', b.id])).code).not.toBe(0);
    }));

  it('pause and resume of a created container: paused, start refused, then created again and startable', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'] });
      await runRuntimeOk(['create', '--bundle', b.dir, b.id]);
      await runRuntimeOk(['pause', b.id]);
      expect((await stateOf(b.id)).status).toBe('paused');
      const start = await runRuntime(['start', b.id]);
      expect(start.code).not.toBe(0);
      expect(start.stderr).toMatch(/cannot start a container in the paused state/);
      await runRuntimeOk(['resume', b.id]);
      expect((await stateOf(b.id)).status).toBe('created');
      await runRuntimeOk(['start', b.id]);
      expect((await stateOf(b.id)).status).toBe('running');
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('delete --force removes a running container', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'] });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      expect((await stateOf(b.id)).status).toBe('running');
      await runRuntimeOk(['delete', '--force', b.id]);
      expect((await runRuntime(['state', b.id])).code).not.toBe(0);
    }));

  it('kill accepts names and numbers, and --all signals every process', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/bin/sh', '-c', 'trap "echo got-usr1" USR1; /vktest sleep 60 & wait; wait'] });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      await runRuntimeOk(['kill', b.id, '15']);
      await runRuntimeOk(['kill', b.id, 'SIGUSR1']);
      const bad = await runRuntime(['kill', b.id, 'SIGNOPE']);
      expect(bad.code).not.toBe(0);
      await runRuntimeOk(['kill', '--all', b.id, 'KILL']);
      for (let i = 0; i < 100 && (await stateOf(b.id)).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20));
      expect((await stateOf(b.id)).status).toBe('stopped');
      const killStopped = await runRuntime(['kill', b.id, 'KILL']);
      expect(killStopped.code).not.toBe(0);
      await runRuntimeOk(['delete', b.id]);
    }));

  it('list and ps show the container', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'] });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      const q = await runRuntimeOk(['list', '--quiet']);
      expect(q.stdout.split('\n')).toContain(b.id);
      const j = JSON.parse((await runRuntimeOk(['list', '--format', 'json'])).stdout) as { id: string; status: string; bundle: string }[];
      const me = j.find((e) => e.id === b.id)!;
      expect(me.status).toBe('running');
      expect(fs.realpathSync(me.bundle)).toBe(fs.realpathSync(b.dir));
      const table = (await runRuntimeOk(['list'])).stdout;
      expect(table.split('\n')[0]).toMatch(/^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER/);
      const pids = JSON.parse((await runRuntimeOk(['ps', '--format', 'json', b.id])).stdout) as number[];
      expect(pids).toContain((await stateOf(b.id)).pid);
      const ps = (await runRuntimeOk(['ps', b.id])).stdout;
      expect(ps).toMatch(/PID/);
      expect(ps).toMatch(/sleep/);
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('exec runs a process inside the container with runc flags', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'] });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      expect((await runRuntimeOk(['exec', b.id, '/vktest', 'echo', 'from', 'exec'])).stdout).toBe('from exec\n');
      expect((await runRuntime(['exec', b.id, '/vktest', 'exit', '3'])).code).toBe(3);
      expect((await runRuntimeOk(['exec', '--cwd', '/tmp', b.id, '/vktest', 'cwd'])).stdout.trim()).toBe('/tmp');
      const env = (await runRuntimeOk(['exec', '--env', 'FOO=bar', b.id, '/vktest', 'env'])).stdout;
      expect(env).toMatch(/^FOO=bar$/m);
      const ids = (await runRuntimeOk(['exec', '--user', '1000:1000', b.id, '/vktest', 'ids'])).stdout;
      expect(ids).toMatch(/^uid=1000$/m);
      expect(ids).toMatch(/^gid=1000$/m);
      const nnp = (await runRuntimeOk(['exec', '--no-new-privs', b.id, '/vktest', 'caps'])).stdout;
      expect(nnp).toMatch(/NoNewPrivs=1/);
      // The exec'd process shares the container's pid namespace: it sees the init as pid 1.
      expect((await runRuntimeOk(['exec', b.id, '/vktest', 'pid'])).stdout).toMatch(/ppid=0/);
      const pidFile = path.join(os.tmpdir(), `${b.id}.exec.pid`);
      await runRuntimeOk(['exec', '--detach', '--pid-file', pidFile, b.id, '/vktest', 'sleep', '30']);
      const execPid = Number(fs.readFileSync(pidFile, 'utf8'));
      fs.rmSync(pidFile);
      expect(execPid).toBeGreaterThan(0);
      expect(fs.existsSync(`/proc/${execPid}`)).toBe(true);
      const missing = await runRuntime(['exec', b.id, '/no/such/binary']);
      expect(missing.code).not.toBe(0);
      await runRuntimeOk(['delete', '--force', b.id]);
      const stopped = await runRuntime(['exec', b.id, '/vktest', 'echo']);
      expect(stopped.code).not.toBe(0);
    }));

  it('exec --process takes a process.json', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'] });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      const proc = { ...b.spec.process!, args: ['/vktest', 'echo', 'via-process-json'], terminal: false };
      const file = path.join(b.dir, 'process.json');
      fs.writeFileSync(file, JSON.stringify(proc));
      expect((await runRuntimeOk(['exec', '--process', file, b.id])).stdout).toBe('via-process-json\n');
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('--pid-file gets the init pid', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'] });
      const pidFile = path.join(b.dir, 'init.pid');
      await runRuntimeOk(['create', '--pid-file', pidFile, '--bundle', b.dir, b.id]);
      expect(Number(fs.readFileSync(pidFile, 'utf8'))).toBe((await stateOf(b.id)).pid);
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('--preserve-fds passes extra fds to the workload', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'readfd', '3'] });
      const file = path.join(b.dir, 'extra.txt');
      fs.writeFileSync(file, 'passed-through\n');
      const fd = fs.openSync(file, 'r');
      try {
        const r = await runRuntime(['run', '--preserve-fds', '1', '--bundle', b.dir, b.id], { extraFds: [fd] });
        expect(r.stdout).toBe('passed-through\n');
        expect(r.code).toBe(0);
      } finally {
        fs.closeSync(fd);
      }
    }));

  it('features prints the OCI features document; spec writes a default config', async () => {
    const f = JSON.parse((await runRuntimeOk(['features'])).stdout);
    expect(f.hooks).toEqual(expect.arrayContaining(['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']));
    expect(f.linux.namespaces).toEqual(expect.arrayContaining(['pid', 'mount', 'user', 'cgroup']));
    expect(f.linux.capabilities).toContain('CAP_SYS_ADMIN');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-spec-'));
    try {
      await runRuntimeOk(['spec', '--bundle', dir]);
      const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      expect(spec.process.args).toEqual(['sh']);
      expect(spec.root.path).toBe('rootfs');
      const again = await runRuntime(['spec', '--bundle', dir]);
      expect(again.code).not.toBe(0);
      fs.rmSync(path.join(dir, 'config.json'));
      await runRuntimeOk(['spec', '--rootless', '--bundle', dir]);
      const rootless = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      expect(rootless.linux.uidMappings).toHaveLength(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('unknown ids give runc errors', async () => {
    for (const verb of [['start'], ['state'], ['kill'], ['delete'], ['exec']]) {
      const args = verb[0] === 'exec' ? ['exec', 'vkt-nope', '/vktest'] : [...verb, 'vkt-nope'];
      const r = await runRuntime(args);
      // runc exits 255 when exec fails, 1 for the other verbs.
      expect(r.code).toBe(verb[0] === 'exec' ? 255 : 1);
      expect(r.stderr).toMatch(/container does not exist/);
    }
  });

  it('a foreground run forwards SIGTERM from the caller to the workload', () =>
    withLeakCheck(async () => {
      if (isRunc) return; // runc forwards too; the test's process handling differs there (no pty)
      // The shell is the container's init: until its trap is set, SIGTERM is ignored (not
      // fatal), so it is sent only once the shell says the trap is in place.
      const b = await makeBundle({ args: ['/bin/sh', '-c', 'trap "exit 42" TERM; : > /tmp/trapped; while :; do sleep 0.05; done'] });
      const trapped = path.join(b.rootfs, 'tmp', 'trapped');
      const child = spawnRuntime(['run', '--bundle', b.dir, b.id], { stdio: 'ignore' });
      for (let i = 0; i < 600 && !fs.existsSync(trapped); i++) await new Promise((r) => setTimeout(r, 50));
      if (!fs.existsSync(trapped)) {
        await runRuntime(['delete', '--force', b.id]);
        throw new Error('the workload did not set its SIGTERM trap within 30 s');
      }
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      expect(code).toBe(42);
    }));
});
