// podman (4.3, with conmon) driving vkernel as its OCI runtime, and the same commands with
// runc to validate the test. podman gets a private storage (--root/--runroot/--tmpdir
// under a temp dir, vfs driver) holding the fixture image, loaded from
// build/fixtures/busybox-oci.tar. vkernel is reached through a wrapper script that logs
// every call (what conmon passes) and execs `node dist/cmd/vkernel.js` with a private
// --root. Everything podman made is removed afterwards and checked for leftovers.
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  defaultFixturesDir,
  describeIf,
  diffLeaks,
  formatLeaks,
  IMAGE_NAME,
  OCI_TAR_NAME,
  parseKeyValues,
  requireBinary,
  requireFixtures,
  requireRoot,
  requireRuntime,
  snapshotLeaks,
  uniqueId,
  vkernelCli,
} from '../harness';

const execFileP = promisify(execFile);

const ok = requireRoot() && requireFixtures() && requireRuntime('vkernel') && requireRuntime('runc') && requireBinary('podman') && requireBinary('conmon');

type Runtime = 'vkernel' | 'runc';
const RUNTIMES: Runtime[] = ['vkernel', 'runc'];

/** The flags of the command line, after `run`. */
const RUN_FLAGS = [
  '--network',
  'none',
  '--cgroup-manager=cgroupfs',
  '--events-backend=file',
  '--ulimit',
  'nofile=20000:20000',
  '--ulimit',
  'nproc=32768:32768',
];

let tmp = '';
let wrapper = '';
let vkState = '';
let callsLog = '';

function storageArgs(): string[] {
  return ['--root', path.join(tmp, 'root'), '--runroot', path.join(tmp, 'runroot'), '--tmpdir', path.join(tmp, 'tmp'), '--storage-driver', 'vfs'];
}

function runtimeArg(rt: Runtime): string {
  return rt === 'vkernel' ? wrapper : 'runc';
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** podman with the private storage (and the runtime, when given); never rejects. */
function podman(args: string[], opts: { runtime?: Runtime; input?: string; timeoutMs?: number } = {}): Promise<Result> {
  const full = [...storageArgs(), ...(opts.runtime ? ['--runtime', runtimeArg(opts.runtime)] : []), ...args];
  return new Promise((resolve) => {
    const child = spawn('podman', full, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0), stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

function describeResult(r: Result): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** The calls conmon/podman made to vkernel since `mark` (lines of the wrapper's log). */
function callsSince(mark: number): string[] {
  return fs.readFileSync(callsLog, 'utf8').split('\n').slice(mark).filter(Boolean);
}

function callMark(): number {
  return fs.readFileSync(callsLog, 'utf8').split('\n').filter(Boolean).length;
}

/** Runs fn with a fresh container name and a cidfile; afterwards nothing of it may remain. */
async function withPodmanLeakCheck(rt: Runtime, fn: (name: string, cidfile: string) => Promise<void>): Promise<void> {
  const name = uniqueId('vkt-pm');
  const cidfile = path.join(tmp, `${name}.cid`);
  let failure: unknown;
  try {
    await fn(name, cidfile);
  } catch (e) {
    failure = e;
  }
  // Whatever happened: remove the container (a no-op after --rm), then check.
  await podman(['rm', '--force', '--ignore', '--time', '0', name], { runtime: rt });
  const cid = fs.existsSync(cidfile) ? fs.readFileSync(cidfile, 'utf8').trim() : '';
  fs.rmSync(cidfile, { force: true });
  if (failure) throw failure;
  expect(cid).toMatch(/^[0-9a-f]{64}$/);
  const root = rt === 'vkernel' ? vkState : '/run/runc';
  const empty = snapshotLeaks([], root, { bundleDirs: [] });
  // conmon and the runtime's processes may take a moment to go; conmon's asynchronous
  // `podman container cleanup <cid>` (a podman boot, then a `vkernel delete` Node boot) has
  // the id in its argv until it exits, which takes seconds on a loaded machine.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const leaks = diffLeaks(empty, snapshotLeaks([cid, name], root, { bundleDirs: [] }));
    if (Object.keys(leaks).length === 0) break;
    if (Date.now() > deadline) throw new Error(`podman (${rt}) left behind:\n${formatLeaks(leaks)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  expect((await podman(['ps', '--all', '--quiet', '--filter', `name=${name}`])).stdout.trim()).toBe('');
}

describeIf(ok)('podman with vkernel (and runc) as the OCI runtime', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-podman-'));
    fs.chmodSync(tmp, 0o755);
    vkState = path.join(tmp, 'vkernel-state');
    callsLog = path.join(tmp, 'calls.log');
    fs.writeFileSync(callsLog, '');
    wrapper = path.join(tmp, 'vkernel-runtime');
    fs.writeFileSync(
      wrapper,
      [
        '#!/bin/sh',
        '# podman --runtime target: log the call, then run vkernel with a private state root.',
        `printf '%s\\n' "$*" >> '${callsLog}'`,
        `exec '${process.execPath}' '${vkernelCli()}' --root '${vkState}' "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const load = await podman(['load', '--input', path.join(defaultFixturesDir(), OCI_TAR_NAME)], { timeoutMs: 120_000 });
    if (load.code !== 0) throw new Error(`podman load: ${describeResult(load)}`);
    expect(load.stdout + load.stderr).toContain(IMAGE_NAME);
  }, 180_000);

  afterAll(async () => {
    if (!tmp) return;
    for (const rt of RUNTIMES) await podman(['rm', '--all', '--force', '--time', '0'], { runtime: rt });
    await podman(['rmi', '--all', '--force']);
    // vfs needs no mounts, but podman mounts a shm tmpfs per container (and overlay
    // would mount layers): detach anything left under the temp dir before removing it.
    const mounts = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((mp): mp is string => !!mp && mp.startsWith(tmp + '/'))
      .sort((a, b) => b.length - a.length);
    for (const mp of mounts) await execFileP('umount', ['-l', mp]).catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 120_000);

  it.each(RUNTIMES)('%s: podman run --rm --network none ... IMAGE echo hi prints hi', (rt) =>
    withPodmanLeakCheck(rt, async (name, cidfile) => {
      const mark = rt === 'vkernel' ? callMark() : 0;
      const r = await podman(['run', '--rm', '--name', name, '--cidfile', cidfile, ...RUN_FLAGS, IMAGE_NAME, 'echo', 'hi'], { runtime: rt });
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: 'hi\n' });
      if (rt === 'vkernel') {
        // What conmon/podman asked of the runtime: create (bundle, pid file), start, delete.
        const calls = callsSince(mark);
        expect(calls[0]).toMatch(/^create --bundle \S+\/userdata --pid-file \S+\/pidfile [0-9a-f]{64}$/);
        expect(calls.map((c) => c.split(' ')[0])).toEqual(['create', 'start', 'delete']);
        expect(calls[2]).toMatch(/^delete --force [0-9a-f]{64}$/);
      }
    }),
  );

  it.each(RUNTIMES)('%s: the workload\'s exit code is podman\'s', (rt) =>
    withPodmanLeakCheck(rt, async (name, cidfile) => {
      const r = await podman(['run', '--rm', '--name', name, '--cidfile', cidfile, ...RUN_FLAGS, IMAGE_NAME, 'sh', '-c', 'echo out; echo err >&2; exit 7'], { runtime: rt });
      expect(r.code).toBe(7);
      expect(r.stdout).toBe('out\n');
      expect(r.stderr).toContain('err\n');
    }),
  );

  it.each(RUNTIMES)('%s: the --ulimit values and --network none reach the container', (rt) =>
    withPodmanLeakCheck(rt, async (name, cidfile) => {
      const script = 'echo nofile=$(ulimit -n); echo nproc=$(ulimit -u); echo ifs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")';
      const r = await podman(['run', '--rm', '--name', name, '--cidfile', cidfile, ...RUN_FLAGS, IMAGE_NAME, 'sh', '-c', script], { runtime: rt });
      expect(r.code).toBe(0);
      // --network none: a network namespace with lo only.
      expect(parseKeyValues(r.stdout)).toEqual({ nofile: '20000', nproc: '32768', ifs: 'lo' });
    }),
  );

  it.each(RUNTIMES)('%s: -m 256m --cpus 0.5: vkernel\'s view is that machine (MemTotal 262144 kB, nproc 1), runc\'s the host', (rt) =>
    withPodmanLeakCheck(rt, async (name, cidfile) => {
      // docs/nerdctl-docker-podman.md's command, through the same runtime wrapper.
      const script = 'echo mem=$(awk "/^MemTotal:/{print \\$2 \\$3}" /proc/meminfo); echo nproc=$(nproc); echo online=$(cat /sys/devices/system/cpu/online)';
      const r = await podman(['run', '--rm', '--name', name, '--cidfile', cidfile, ...RUN_FLAGS, '-m', '256m', '--cpus', '0.5', IMAGE_NAME, 'sh', '-c', script], { runtime: rt });
      if (r.code !== 0) throw new Error(`podman run -m 256m --cpus 0.5 (${rt}): ${describeResult(r)}`);
      const hostMem = /^MemTotal:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1];
      const hostOnline = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
      expect(parseKeyValues(r.stdout)).toEqual(
        rt === 'vkernel' ? { mem: '262144kB', nproc: '1', online: '0' } : { mem: `${hostMem}kB`, nproc: String(os.cpus().length), online: hostOnline },
      );
    }),
  );

  it.each(RUNTIMES)('%s: stdin with -i', (rt) =>
    withPodmanLeakCheck(rt, async (name, cidfile) => {
      const r = await podman(['run', '--rm', '-i', '--name', name, '--cidfile', cidfile, ...RUN_FLAGS, IMAGE_NAME, 'cat'], { runtime: rt, input: 'through-stdin\n' });
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: 'through-stdin\n' });
    }),
  );

  it.each(RUNTIMES)('%s: a terminal with -t (conmon passes --console-socket)', (rt) =>
    withPodmanLeakCheck(rt, async (name, cidfile) => {
      const mark = rt === 'vkernel' ? callMark() : 0;
      const r = await podman(['run', '--rm', '-t', '--name', name, '--cidfile', cidfile, ...RUN_FLAGS, IMAGE_NAME, 'sh', '-c', 'tty; echo done'], { runtime: rt });
      expect(r.code).toBe(0);
      expect(r.stdout.replace(/\r/g, '')).toMatch(/^\/dev\/pts\/\d+\ndone\n$/);
      if (rt === 'vkernel') expect(callsSince(mark)[0]).toMatch(/^create --bundle \S+ --pid-file \S+ --console-socket \S+ [0-9a-f]{64}$/);
    }),
  );

  it.each(RUNTIMES)('%s: run -d, exec (plain, exit code, -t), stop, rm', (rt) =>
    withPodmanLeakCheck(rt, async (name, cidfile) => {
      const mark = rt === 'vkernel' ? callMark() : 0;
      const started = await podman(['run', '-d', '--name', name, '--cidfile', cidfile, ...RUN_FLAGS, IMAGE_NAME, 'sleep', '60'], { runtime: rt });
      expect(started.code).toBe(0);
      const exec1 = await podman(['exec', name, 'echo', 'from-exec'], { runtime: rt });
      expect({ code: exec1.code, stdout: exec1.stdout }).toEqual({ code: 0, stdout: 'from-exec\n' });
      expect((await podman(['exec', name, 'sh', '-c', 'exit 5'], { runtime: rt })).code).toBe(5);
      const execT = await podman(['exec', '-t', name, 'tty'], { runtime: rt });
      expect(execT.stdout.replace(/\r/g, '')).toMatch(/^\/dev\/pts\/\d+\n$/);
      const top = await podman(['top', name], { runtime: rt });
      expect(top.stdout).toMatch(/sleep 60/);
      const stop = await podman(['stop', '--time', '1', name], { runtime: rt });
      expect(stop.code).toBe(0);
      const inspect = await podman(['inspect', '--format', '{{.State.Status}}', name], { runtime: rt });
      expect(inspect.stdout.trim()).toBe('exited');
      expect((await podman(['rm', name], { runtime: rt })).code).toBe(0);
      if (rt === 'vkernel') {
        const verbs = callsSince(mark).map((c) => c.split(' ')[0]);
        expect(verbs).toEqual(expect.arrayContaining(['create', 'start', 'exec', 'kill', 'delete']));
        // conmon runs exec as `exec --pid-file F --process F --detach [--tty --console-socket S] ID`.
        expect(callsSince(mark).filter((c) => c.startsWith('exec '))[0]).toMatch(/^exec --pid-file \S+ --process \S+ --detach [0-9a-f]{64}$/);
      }
    }),
  );
});
