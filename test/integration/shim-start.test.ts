// The shim binary end to end: build/containerd-shim-vkernel-v2 (the C launcher) on the cold
// path (no manager: it execs node) and the warm path (a private manager with a warm daemon).
// Daemons run test/integration/shim-start-stub.ts instead of the task service
// (VKERNEL_SHIM_SERVE_MODULE): it answers Connect with its pid and config, and exits on
// Shutdown. Everything is private: a temp dir, a unique namespace (so /run/vkernel/shim/<ns>
// and the group socket hashes are ours), a private manager socket. Needs root.
//
// execFile returns only once the launched process has exited AND every holder of its
// stdout/stderr pipes has closed them: each `shim()` call returning is the check that the
// daemon does not hold containerd's pipes (reference §1.6).
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../runtime/native';
import { decodeRequest, encodeReply, MessageReader, REQUEST_MAGIC, type LauncherRequest } from '../../shim/manager/protocol';
import { decode, encode, anyOf } from '../../shim/proto';
import { TtrpcClient } from '../../shim/ttrpc';
import { describeIf, isRoot, makeBundle, pidAlive as alive, repoRoot, requireFixtures, requirement, requireRoot, TestContainerd, type Bundle } from '../harness';

const REPO = repoRoot();
const LAUNCHER = path.join(REPO, 'build', 'containerd-shim-vkernel-v2');
const STUB = path.join(REPO, 'dist', 'test', 'integration', 'shim-start-stub.js');
const MANAGER_MAIN = path.join(REPO, 'dist', 'shim', 'manager', 'main.js');
const TASK = 'containerd.task.v2.Task';

const ok =
  requireRoot() &&
  requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (build it: see shim/launcher/launcher.c)`) &&
  requirement(fs.existsSync(STUB), `${STUB} missing (run \`make ts\`)`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `p`, or a rejection after `ms`; the timer never outlives the race. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface Run {
  stdout: Buffer;
  stderr: Buffer;
  code: number;
  ms: number;
}

interface Env {
  tmp: string;
  ns: string;
  address: string;
  managerSocket: string;
}

let env: Env;
/** Every daemon pid a test saw: shut down (or killed) in afterAll. */
const daemons = new Map<number, string>();
const managers = new Set<ChildProcess>();

function shimEnv(manager: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    TTRPC_ADDRESS: `${env.address}.ttrpc`,
    GRPC_ADDRESS: env.address,
    NAMESPACE: env.ns,
    MAX_SHIM_VERSION: '2',
    VKERNEL_SHIM_SERVE_MODULE: STUB,
    VKERNEL_SHIM_MANAGER: manager,
    VKERNEL_SHIM_MANAGER_AUTOSTART: '0',
  };
}

/** Runs the launcher as containerd would: argv, cwd = bundle, stdin bytes, and the shim env. */
function shim(args: string[], o: { cwd?: string; stdin?: Buffer; manager?: string } = {}): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = execFile(
      LAUNCHER,
      args,
      { cwd: o.cwd ?? env.tmp, env: shimEnv(o.manager ?? 'off'), encoding: 'buffer', timeout: 15_000 },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: unknown; killed?: boolean }) | null;
        if (e && (e.killed || typeof e.code !== 'number')) return reject(new Error(`launcher ${args.join(' ')}: ${e.message}`));
        resolve({ stdout, stderr, code: e ? (e.code as unknown as number) : 0, ms: Date.now() - t0 });
      },
    );
    child.stdin!.end(o.stdin ?? Buffer.alloc(0));
  });
}

const startArgs = (id: string): string[] => ['-namespace', env.ns, '-address', env.address, '-publish-binary', '/usr/bin/containerd', '-id', id, 'start'];
const deleteArgs = (id: string, bundle: string): string[] => ['-namespace', env.ns, '-address', env.address, '-publish-binary', '/usr/bin/containerd', '-id', id, '-bundle', bundle, 'delete'];

function expectedAddress(group: string): string {
  return `unix://${TestContainerd.shimSocketPath(env.address, env.ns, group)}`;
}

/** A bundle dir with config.json (annotations) and an empty rootfs/, like containerd's. */
function bundleDir(id: string, annotations: Record<string, string> = {}): string {
  const dir = path.join(env.tmp, 'bundles', id);
  fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations }));
  return dir;
}

async function connect(address: string): Promise<{ pid: number; config: Record<string, unknown> }> {
  const c = await TtrpcClient.connect(address, { connectTimeoutMs: 5000 });
  try {
    const r = await c.call(TASK, 'Connect', 'containerd.task.v2.ConnectRequest', { id: 'probe' }, 'containerd.task.v2.ConnectResponse', { timeoutMs: 10_000 });
    daemons.set(r.shim_pid, address);
    return { pid: r.shim_pid, config: JSON.parse(r.version) as Record<string, unknown> };
  } finally {
    c.destroy();
  }
}

async function shutdown(address: string): Promise<void> {
  const c = await TtrpcClient.connect(address, { connectTimeoutMs: 2000 });
  try {
    await c.call(TASK, 'Shutdown', 'containerd.task.v2.ShutdownRequest', { id: 'x' }, 'google.protobuf.Empty', { timeoutMs: 5000 }).catch(() => undefined);
  } finally {
    c.destroy();
  }
}


async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Live processes whose command line contains `needle`. */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').includes(needle) && alive(Number(name))) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

function procStat(pid: number): { ppid: number; pgid: number; sid: number } {
  const rest = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return { ppid: Number(rest[1]), pgid: Number(rest[2]), sid: Number(rest[3]) };
}

interface Manager {
  proc: ChildProcess;
  socket: string;
  log: string;
}

function managerLog(m: Manager): string {
  try {
    return fs.readFileSync(m.log, 'utf8');
  } catch {
    return '';
  }
}

/** Warm daemon pids the manager has reported ready and not yet handed out. */
function warmReady(m: Manager): number[] {
  const log = managerLog(m);
  const ready = [...log.matchAll(/warm daemon (\d+) ready/g)].map((x) => Number(x[1]));
  const adopted = new Set([...log.matchAll(/warm daemon (\d+) adopted/g)].map((x) => Number(x[1])));
  return ready.filter((p) => !adopted.has(p) && alive(p));
}

async function startManager(name: string, extra: string[] = [], waitWarm = true, socket = path.join(env.tmp, `${name}.sock`)): Promise<Manager> {
  const log = path.join(env.tmp, `${name}.log`);
  const proc = spawn(process.execPath, ['--no-warnings', MANAGER_MAIN, '--socket', socket, '--idle-timeout', '0', '--log', log, ...extra], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, VKERNEL_SHIM_SERVE_MODULE: STUB },
  });
  managers.add(proc);
  proc.once('exit', () => managers.delete(proc));
  const m = { proc, socket, log };
  await waitFor('the manager to listen', () => managerLog(m).includes('listening on'));
  if (waitWarm && !extra.includes('0')) await waitFor('a warm daemon', () => warmReady(m).length > 0, 20_000);
  return m;
}

function exitOf(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => proc.once('exit', () => r()));
}

async function stopManager(m: Manager): Promise<void> {
  const exited = exitOf(m.proc);
  m.proc.kill('SIGTERM');
  await exited;
}

describeIf(ok)('containerd-shim-vkernel-v2 start/delete (launcher, cold and warm)', () => {
  beforeAll(() => {
    const rand = crypto.randomBytes(5).toString('hex');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-shim-'));
    env = { tmp, ns: `vkt-${rand}`, address: path.join(tmp, 'containerd.sock'), managerSocket: path.join(tmp, 'manager.sock') };
  });

  afterAll(async () => {
    for (const [pid, address] of daemons) {
      if (!alive(pid)) continue;
      await shutdown(address).catch(() => undefined);
    }
    for (const m of [...managers]) {
      const exited = new Promise((r) => m.once('exit', r));
      m.kill('SIGTERM');
      await within(exited, 5000, 'manager exit').catch(() => m.kill('SIGKILL'));
    }
    await sleep(100);
    const left = [...processesWith(env.tmp), ...processesWith(env.ns), ...[...daemons.keys()].filter(alive)];
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    const sockets = [...daemons.values()].map((a) => a.slice('unix://'.length)).filter((s) => fs.existsSync(s));
    for (const s of sockets) fs.rmSync(s, { force: true });
    fs.rmSync(path.join('/run/vkernel/shim', env.ns), { recursive: true, force: true });
    for (const m of bundleMounts()) spawnSync('umount', ['-l', m]);
    fs.rmSync(env.tmp, { recursive: true, force: true });
    // Checked last, after cleaning up, so a failure here does not leak into other files.
    expect({ processes: [...new Set(left)], sockets }).toEqual({ processes: [], sockets: [] });
  });

  function bundleMounts(): string[] {
    return fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => !!m && m.startsWith(env.tmp));
  }

  test('cold start: stdout is exactly the address, the launcher exits, the daemon serves detached', async () => {
    const bundle = bundleDir('cold1');
    const r = await shim(startArgs('cold1'), { cwd: bundle });
    expect({ code: r.code, stdout: r.stdout.toString(), stderr: r.stderr.toString() }).toEqual({ code: 0, stdout: expectedAddress('cold1'), stderr: '' });
    expect(fs.readFileSync(path.join(bundle, 'address'), 'utf8')).toBe(expectedAddress('cold1'));
    const d = await connect(expectedAddress('cold1'));
    expect(d.config).toEqual({
      namespace: env.ns,
      address: env.address,
      ttrpcAddress: `${env.address}.ttrpc`,
      grpcAddress: env.address,
      publishBinary: '/usr/bin/containerd',
      socketPath: expectedAddress('cold1').slice('unix://'.length),
      debug: false,
      groupId: 'cold1',
      stateRoot: `/run/vkernel/shim/${env.ns}`,
      protocol: 'ttrpc', // no containerd answers at env.address: version unknown (docs/protocol.md)
    });
    // Its own session and process group; stdio on /dev/null; fd 3 is the group socket.
    const st = procStat(d.pid);
    expect(st.sid).toBe(d.pid);
    expect(st.pgid).toBe(d.pid);
    for (const fd of [0, 1, 2]) expect(fs.readlinkSync(`/proc/${d.pid}/fd/${fd}`)).toBe('/dev/null');
    expect(fs.readFileSync(`/proc/${d.pid}/oom_score_adj`, 'utf8').trim()).toBe(String(Math.min(1000, Number(fs.readFileSync('/proc/self/oom_score_adj', 'utf8')) + 1)));
    expect(fs.statSync(expectedAddress('cold1').slice('unix://'.length)).mode & 0o777).toBe(0o600);
  });

  test('start twice for one group (pod sandbox id): one address, one daemon', async () => {
    const pod = { 'io.kubernetes.cri.sandbox-id': 'pod-a' };
    const a = await shim(startArgs('pod-a'), { cwd: bundleDir('pod-a', pod) });
    const b = await shim(startArgs('app-1'), { cwd: bundleDir('app-1', pod) });
    expect(a.stdout.toString()).toBe(expectedAddress('pod-a'));
    expect(b.stdout.toString()).toBe(a.stdout.toString());
    const d = await connect(a.stdout.toString());
    expect(d.config.groupId).toBe('pod-a');
    expect(processesWith(`-id pod-a -address ${env.address}`)).toEqual([d.pid]);
  });

  test('a stale group socket (nobody listening) is replaced by a serving one', async () => {
    const sock = expectedAddress('stale').slice('unix://'.length);
    fs.mkdirSync(path.dirname(sock), { recursive: true });
    fs.closeSync(native().listenUnix(sock)); // the file stays, nobody accepts
    const r = await shim(startArgs('stale'), { cwd: bundleDir('stale') });
    expect(r.stdout.toString()).toBe(expectedAddress('stale'));
    expect((await connect(expectedAddress('stale'))).config.groupId).toBe('stale');
  });

  test('delete: idempotent, well under 5 s, unmounts <bundle>/rootfs, the group daemon keeps serving', async () => {
    const pod = { 'io.kubernetes.cri.sandbox-id': 'pod-del' };
    const sandbox = bundleDir('pod-del', pod);
    const app = bundleDir('app-del', pod);
    await shim(startArgs('pod-del'), { cwd: sandbox });
    await shim(startArgs('app-del'), { cwd: app });
    const daemon = await connect(expectedAddress('pod-del'));
    expect(spawnSync('mount', ['-t', 'tmpfs', 'vkt-rootfs', path.join(app, 'rootfs')]).status).toBe(0);
    for (let i = 0; i < 2; i++) {
      const before = Math.floor(Date.now() / 1000);
      const r = await shim(deleteArgs('app-del', app), { cwd: app });
      expect(r.code).toBe(0);
      expect(r.stderr.toString()).toBe('');
      expect(r.ms).toBeLessThan(5000);
      const resp = decode('containerd.task.v2.DeleteResponse', r.stdout);
      expect(resp).toMatchObject({ pid: 0, exit_status: 137 });
      expect(resp.exited_at!.seconds).toBeGreaterThanOrEqual(before);
      expect(bundleMounts().filter((m) => m.startsWith(app))).toEqual([]);
    }
    expect(await connect(expectedAddress('pod-del'))).toMatchObject({ pid: daemon.pid });
  });

  describeIf(requireFixtures())('with a real container in the state root', () => {
    let b: Bundle | undefined;
    afterAll(async () => b?.cleanup());

    test('delete kills it, removes its state and reports its pid', async () => {
      const root = `/run/vkernel/shim/${env.ns}`;
      b = await makeBundle({ root });
      // stdio ignored: the container inherits it, and a pipe would keep spawnSync waiting.
      const created = spawnSync(process.execPath, [path.join(REPO, 'dist', 'cmd', 'vkernel.js'), '--root', root, 'create', '--bundle', b.dir, b.id], {
        stdio: 'ignore',
        timeout: 20_000,
      });
      expect(created.status).toBe(0);
      const state = JSON.parse(fs.readFileSync(path.join(root, b.id, 'state.json'), 'utf8')) as { pid: number };
      expect(alive(state.pid)).toBe(true);
      const r = await shim(deleteArgs(b.id, b.dir), { cwd: b.dir });
      expect(r.code).toBe(0);
      expect(r.ms).toBeLessThan(5000);
      expect(decode('containerd.task.v2.DeleteResponse', r.stdout)).toMatchObject({ pid: state.pid, exit_status: 137 });
      expect(alive(state.pid)).toBe(false);
      expect(fs.existsSync(path.join(root, b.id))).toBe(false);
      const again = await shim(deleteArgs(b.id, b.dir), { cwd: b.dir });
      expect({ code: again.code, stderr: again.stderr.toString() }).toEqual({ code: 0, stderr: '' });
      expect(decode('containerd.task.v2.DeleteResponse', again.stdout).pid).toBe(0);
    });
  });

  describe('with a manager', () => {
    let m: Manager;
    beforeAll(async () => {
      m = await startManager('manager', ['--no-watch']);
    });
    afterAll(async () => stopManager(m));

    test('warm path: a waiting daemon adopts the new group, and a replacement is started', async () => {
      const [warm] = warmReady(m);
      const r = await shim(startArgs('warm1'), { cwd: bundleDir('warm1'), manager: m.socket });
      expect({ code: r.code, stdout: r.stdout.toString(), stderr: r.stderr.toString() }).toEqual({ code: 0, stdout: expectedAddress('warm1'), stderr: '' });
      const d = await connect(expectedAddress('warm1'));
      expect(d.pid).toBe(warm);
      expect(d.config).toMatchObject({ namespace: env.ns, groupId: 'warm1', ttrpcAddress: `${env.address}.ttrpc`, stateRoot: `/run/vkernel/shim/${env.ns}` });
      expect(procStat(d.pid).sid).toBe(d.pid);
      for (const fd of [0, 1, 2]) expect(fs.readlinkSync(`/proc/${d.pid}/fd/${fd}`)).toBe('/dev/null');
      expect(fs.readFileSync(`/proc/${d.pid}/oom_score_adj`, 'utf8').trim()).toBe(String(Math.min(1000, Number(fs.readFileSync('/proc/self/oom_score_adj', 'utf8')) + 1)));
      await waitFor('a replacement warm daemon', () => warmReady(m).some((p) => p !== warm), 20_000);
      // Grouping works across paths: the same group through the manager finds the daemon.
      const again = await shim(startArgs('warm1-app'), { cwd: bundleDir('warm1-app', { 'io.vkernel.group': 'warm1' }), manager: m.socket });
      expect(again.stdout.toString()).toBe(expectedAddress('warm1'));
    });

    test('warm and cold give byte-identical answers', async () => {
      const same = async (args: string[], o: { cwd?: string; stdin?: Buffer } = {}): Promise<Run> => {
        const cold = await shim(args, { ...o, manager: 'off' });
        const warm = await shim(args, { ...o, manager: m.socket });
        expect({ code: warm.code, stdout: warm.stdout.toString('hex'), stderr: warm.stderr.toString() }).toEqual({
          code: cold.code,
          stdout: cold.stdout.toString('hex'),
          stderr: cold.stderr.toString(),
        });
        return cold;
      };
      const before = m.proc.pid;
      expect((await same(['-v'])).stdout.toString()).toMatch(/^containerd-shim-vkernel-v2:\n {2}Version: {2}/);
      const options = encode('google.protobuf.Any', anyOf('runtimeoptions.v1.Options', { config_path: '/etc/vkernel/config.toml' }));
      expect(decode('containerd.types.RuntimeInfo', (await same(['-info'], { stdin: options })).stdout).name).toBe('io.containerd.vkernel.v2');
      expect((await same(['-info'])).code).toBe(0);
      // start of a group that is served already (by the daemon the cold path started earlier)
      expect((await same(startArgs('cold1'), { cwd: bundleDir('cold1') })).stdout.toString()).toBe(expectedAddress('cold1'));
      // errors
      expect((await same(['-namespace', env.ns, '-bogus', 'start'])).code).toBe(2);
      expect((await same(['-namespace', env.ns, '-address', env.address, 'start'])).stderr.toString()).toBe('containerd-shim-vkernel-v2: start: -id is required\n');
      expect((await same(startArgs('nobundle'), { cwd: env.tmp })).code).toBe(1);
      // start of new groups: each answer is its own address, in the same form
      const c = await shim(startArgs('new-cold'), { cwd: bundleDir('new-cold'), manager: 'off' });
      const w = await shim(startArgs('new-warm'), { cwd: bundleDir('new-warm'), manager: m.socket });
      expect([c.stdout.toString(), w.stdout.toString()]).toEqual([expectedAddress('new-cold'), expectedAddress('new-warm')]);
      await connect(expectedAddress('new-cold'));
      await connect(expectedAddress('new-warm'));
      // delete: identical except the time
      const bundle = bundleDir('gone');
      const dc = await shim(deleteArgs('gone', bundle), { cwd: bundle, manager: 'off' });
      const dw = await shim(deleteArgs('gone', bundle), { cwd: bundle, manager: m.socket });
      const strip = (r: Run): unknown => {
        const resp = decode('containerd.task.v2.DeleteResponse', r.stdout);
        // Same message, and the bytes are its canonical encoding (only the time's varints differ).
        const canonical = encode('containerd.task.v2.DeleteResponse', resp).equals(r.stdout);
        return { ...resp, exited_at: resp.exited_at && resp.exited_at.seconds > 0, code: r.code, stderr: r.stderr.toString(), canonical };
      };
      expect(strip(dw)).toEqual(strip(dc));
      expect(m.proc.pid).toBe(before);
      expect(managerLog(m)).not.toContain('request failed');
    });
  });

  describe('the launcher against a fake manager', () => {
    let server: net.Server | undefined;
    afterEach(async () => {
      const srv = server;
      server = undefined;
      if (srv) await new Promise<void>((r) => srv.close(() => r()));
    });

    async function fakeManager(name: string, answer: (req: LauncherRequest, sock: net.Socket) => void): Promise<string> {
      const sock = path.join(env.tmp, `${name}.sock`);
      server = net.createServer((c) => {
        const reader = new MessageReader(REQUEST_MAGIC);
        c.on('data', (d: Buffer) => {
          const msg = reader.push(d);
          if (msg) answer(decodeRequest(msg), c);
        });
      });
      await new Promise<void>((r) => server!.listen(sock, r));
      return sock;
    }

    test('forwards argv, cwd, containerd variables, stdin and its parent; relays the reply byte for byte', async () => {
      let got: LauncherRequest | undefined;
      const sock = await fakeManager('fake-relay', (req, c) => {
        got = req;
        c.end(encodeReply({ stdout: Buffer.from([0, 1, 2, 0xff, 0x0a]), stderr: Buffer.from('a warning\n'), exitCode: 3 }));
      });
      const bundle = bundleDir('relay');
      const r = await shim(['-namespace', env.ns, '-id', 'relay', 'delete'], { manager: sock, cwd: bundle, stdin: Buffer.from([9, 8, 7]) });
      expect({ code: r.code, stdout: r.stdout.toString('hex'), stderr: r.stderr.toString() }).toEqual({ code: 3, stdout: '000102ff0a', stderr: 'a warning\n' });
      expect(got).toEqual({
        argv: [LAUNCHER, '-namespace', env.ns, '-id', 'relay', 'delete'],
        cwd: bundle,
        env: { TTRPC_ADDRESS: `${env.address}.ttrpc`, GRPC_ADDRESS: env.address, NAMESPACE: env.ns, MAX_SHIM_VERSION: '2' },
        stdin: Buffer.from([9, 8, 7]),
        ppid: process.pid,
        // The launcher's package (this tree: VK_PKGROOT baked in by make).
        pkgroot: REPO,
      });
    });

    test('a manager that hangs up without a complete reply: the cold path runs, with the same stdin', async () => {
      let asked = 0;
      const sock = await fakeManager('fake-hangup', (_req, c) => {
        asked++;
        c.end(Buffer.from('VKR1\0\0\0\0', 'latin1')); // well formed, but no exit code
      });
      const options = encode('google.protobuf.Any', anyOf('runtimeoptions.v1.Options', { config_path: '/via/cold' }));
      const r = await shim(['-info'], { manager: sock, stdin: options });
      expect(asked).toBe(1);
      expect(r.code).toBe(0);
      const info = decode('containerd.types.RuntimeInfo', r.stdout);
      expect(info.options).toEqual({ type_url: 'runtimeoptions.v1.Options', value: Buffer.from(decode('google.protobuf.Any', options).value) });
    });
  });

  test('killing the manager leaves its daemons serving, and the launcher falls back to cold', async () => {
    const m = await startManager('killed', ['--no-watch']);
    const [warm] = warmReady(m);
    const r = await shim(startArgs('orphan'), { cwd: bundleDir('orphan'), manager: m.socket });
    const adopted = await connect(r.stdout.toString());
    expect(adopted.pid).toBe(warm);
    await waitFor('a replacement warm daemon', () => warmReady(m).length > 0, 20_000);
    const waiting = warmReady(m);
    const exited = exitOf(m.proc);
    m.proc.kill('SIGKILL');
    await exited;
    // The adopted daemon is untouched; a daemon still waiting to be adopted exits (end of stream).
    expect((await connect(r.stdout.toString())).pid).toBe(adopted.pid);
    await waitFor('the waiting daemons to exit', () => waiting.every((p) => !alive(p)));
    // The dead manager's socket file is still there: the launcher gets ECONNREFUSED and goes cold.
    expect(fs.existsSync(m.socket)).toBe(true);
    const cold = await shim(startArgs('after-kill'), { cwd: bundleDir('after-kill'), manager: m.socket });
    expect(cold.stdout.toString()).toBe(expectedAddress('after-kill'));
    expect((await connect(expectedAddress('after-kill'))).config.groupId).toBe('after-kill');
    // A new manager on the same socket takes over the stale files.
    const m2 = await startManager('killed-again', ['--no-watch', '--warm', '0'], false, m.socket);
    const v = await shim(['-v'], { manager: m2.socket });
    expect(v.code).toBe(0);
    expect(managerLog(m2)).toMatch(/manager \d+ listening/);
    await stopManager(m2);
    expect(fs.existsSync(m2.socket)).toBe(false);
  });

  test('one manager per socket: a second one exits at once', async () => {
    const m = await startManager('single', ['--no-watch', '--warm', '0'], false);
    const second = spawnSync(process.execPath, ['--no-warnings', MANAGER_MAIN, '--socket', m.socket, '--warm', '0', '--no-watch'], { timeout: 10_000 });
    expect(second.status).toBe(0);
    expect(fs.readFileSync(path.join(env.tmp, 'single.pid'), 'utf8').trim()).toBe(String(m.proc.pid));
    await stopManager(m);
  });

  test('a manager shuts down (and lets its warm daemons go) when its code changes', async () => {
    // Watching for real: a concurrent build (tsc) may trigger the same shutdown first, which
    // is the same outcome. So no waiting for a warm daemon here.
    const m = await startManager('watched', [], false);
    await waitFor('a warm daemon', () => warmReady(m).length > 0, 5000).catch(() => undefined);
    const probe = path.join(REPO, 'dist', 'shim', 'manager', `.probe-${crypto.randomBytes(4).toString('hex')}.js`);
    const exited = exitOf(m.proc);
    fs.writeFileSync(probe, '');
    try {
      await within(exited, 10_000, 'the manager to exit after its code changed');
    } finally {
      fs.rmSync(probe, { force: true });
    }
    expect(managerLog(m)).toContain('changed: shutting down');
    await waitFor('its daemons to exit', () => processesWith(path.join(env.tmp, 'watched.ctl')).length === 0);
    expect(fs.existsSync(m.socket)).toBe(false);
  });

  test('an idle manager exits by itself, and takes its warm daemons along', async () => {
    const m = await startManager('idle', ['--no-watch', '--idle-timeout', '1500'], false);
    const gone = exitOf(m.proc);
    await waitFor('a warm daemon', () => warmReady(m).length > 0, 20_000).catch(() => undefined);
    await gone;
    expect(managerLog(m)).toContain('idle for 1500 ms');
    const ctl = path.join(env.tmp, 'idle.ctl');
    await waitFor('its daemons to exit', () => processesWith(ctl).length === 0);
    expect(fs.existsSync(m.socket)).toBe(false);
  });
});

// The same start/delete against real containerds. The stub daemon answers Create with
// Unimplemented, so `ctr run` fails, and containerd then runs its whole cleanup: task Delete,
// Shutdown (the stub exits), and our `delete` action. Nothing may be left afterwards.
const withContainerd = ok && isRoot() && requireFixtures();
describeIf(withContainerd)('containerd drives the launcher', () => {
  for (const version of ['1.6', '1.7'] as const) {
    test(`containerd ${version}: start is parsed, cleanup runs delete, nothing leaks`, async () => {
      const managerSocket = path.join(os.tmpdir(), `vkt-cd-manager-${crypto.randomBytes(4).toString('hex')}.sock`);
      const cd = await TestContainerd.start({
        version,
        // The stub daemon speaks ttrpc only: no gRPC on 1.7 (docs/protocol.md).
        env: { PATH: path.dirname(LAUNCHER), VKERNEL_SHIM_SERVE_MODULE: STUB, VKERNEL_SHIM_MANAGER: managerSocket, VKERNEL_SHIM_MANAGER_AUTOSTART: '0', VKERNEL_SHIM_PROTOCOL: 'ttrpc' },
      });
      try {
        const ref = await cd.importImage(path.join(REPO, 'build', 'fixtures', 'busybox-oci.tar'));
        const r = await cd.ctr(['run', '--rm', '--runtime', 'io.containerd.vkernel.v2', ref, 'vkt-e2e', '/bin/true'], { timeoutMs: 30_000 });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/not implemented|unimplemented/i);
        expect(r.durationMs).toBeLessThan(20_000);
      } finally {
        expect(await cd.stop()).toEqual([]);
      }
    });
  }
});
