// Container breakouts that runtimes have had, replayed against the runtime under test
// (RUNTIME=vkernel by default; RUNTIME=runc runs them against runc 1.1.5, except where
// that runc is known not to have the protection, as said at the test). The attacker is
// the container: its processes, its rootfs, its config. Helpers: cve-helper.c (built
// here with gcc, static, copied into the rootfs) and the payload /vktest.
import { createHash } from 'crypto';
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Spec } from '../../runtime/spec/types';
import {
  describeIf,
  hasBinary,
  makeBundle,
  mountsUnder,
  parseErrno,
  parseKeyValues,
  repoRoot,
  requireFixtures,
  requireRoot,
  requireRuntime,
  requirement,
  runBundle,
  runRuntime,
  runRuntimeOk,
  runtimeName,
  withLeakCheck,
  type Bundle,
  type RunOptions,
} from '../harness';

const ok =
  requireRoot() && requireFixtures() && requireRuntime() && requirement(hasBinary('gcc'), 'gcc is not installed (needed to build cve-helper)');
const runtime = runtimeName();
const isVkernel = runtime === 'vkernel';

let tmp: string;
let helper: string;
/**
 * The runtime binary the container must not be able to change. For vkernel a private copy
 * of build/vkinit that the CLI is pointed at (VKERNEL_INIT): a regression then damages
 * no file other test runs use. For runc the installed binary.
 */
let victim: string;
let victimHash: string;

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function opts(extra: RunOptions = {}): RunOptions {
  return { ...extra, env: isVkernel ? { VKERNEL_INIT: victim } : undefined };
}

function addCaps(spec: Spec, ...caps: string[]): void {
  const c = spec.process!.capabilities!;
  for (const set of ['bounding', 'effective', 'permitted'] as const) c[set] = [...(c[set] ?? []), ...caps];
}

/** A file (0755) in the bundle's rootfs. */
function put(b: Bundle, name: string, content: string | Buffer): void {
  fs.writeFileSync(path.join(b.rootfs, name), content, { mode: 0o755 });
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Caught {
  pid: number;
  exe: string;
  wopen: number;
  write: number;
}

function parseScan(text: string): { caught: Caught[]; denied: number } {
  const caught: Caught[] = [];
  let denied = -1;
  for (const line of text.split('\n')) {
    const m = /^caught pid=(\d+) exe=(.*) wopen=(-?\d+) write=(-?\d+)$/.exec(line);
    if (m) caught.push({ pid: Number(m[1]), exe: m[2], wopen: Number(m[3]), write: Number(m[4]) });
    const d = /^denied=(\d+)$/.exec(line);
    if (d) denied = Number(d[1]);
  }
  if (denied < 0) throw new Error(`no scan result in ${JSON.stringify(text)}`);
  return { caught, denied };
}

/**
 * Runs the scanner as the detached container's init (so no runtime process stays and
 * keeps the runtime binary busy) and `exec -d`s `args` into it `rounds` times.
 */
async function scanDuringExecs(caps: string[], execs: string[][], rounds: number): Promise<{ caught: Caught[]; denied: number }> {
  const b = await makeBundle({ args: ['/cve-helper', 'scan', '30', '/tmp/stop'], mutate: (s) => addCaps(s, ...caps) });
  put(b, 'cve-helper', fs.readFileSync(helper));
  // CVE-2019-5736's first trick: an executable whose interpreter is /proc/self/exe makes
  // the runtime's exec re-run the runtime's own binary inside the container.
  put(b, 'evil', '#!/proc/self/exe\n');
  const stop = path.join(b.rootfs, 'tmp/stop');
  await runRuntimeOk(['run', '-d', '--bundle', b.dir, b.id], opts());
  try {
    await waitFor(() => fs.existsSync(`${stop}.ready`), 10_000, 'the scanner');
    for (let i = 0; i < rounds; i++) {
      for (const args of execs) await runRuntime(['exec', '-d', b.id, ...args], opts());
    }
    fs.writeFileSync(stop, '');
    // The file exists from the scanner's freopen on, but its (stdio-buffered) lines land at
    // its exit: wait for the last one, denied=N, whole. A deadline, not a sleep: a starved
    // scanner may take a while to notice the stop file.
    const out = () => (fs.existsSync(`${stop}.out`) ? fs.readFileSync(`${stop}.out`, 'utf8') : '');
    await waitFor(() => /^denied=\d+\n/m.test(out()), 20_000, 'the scan result');
    return parseScan(out());
  } finally {
    await runRuntime(['delete', '--force', b.id], opts());
  }
}

describeIf(ok)(`CVEs (${runtime})`, () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-cve-'));
    fs.chmodSync(tmp, 0o755);
    helper = path.join(tmp, 'cve-helper');
    execFileSync('gcc', ['-O2', '-Wall', '-D_GNU_SOURCE', '-static', '-o', helper, path.join(repoRoot(), 'test/integration/cve-helper.c')]);
    if (isVkernel) {
      victim = path.join(tmp, 'vkinit');
      fs.copyFileSync(path.join(repoRoot(), 'build', 'vkinit'), victim);
      fs.chmodSync(victim, 0o755);
    } else {
      victim = fs.realpathSync(execFileSync('sh', ['-c', `command -v ${runtime}`], { encoding: 'utf8' }).trim());
    }
    victimHash = sha256(victim);
  });

  afterEach(() => {
    // Whatever a test did: the runtime on the host is what it was.
    expect(sha256(victim)).toBe(victimHash);
  });

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('CVE-2019-5736: overwriting the runtime through /proc/PID/exe', () => {
    it('caught during exec (with CAP_SYS_PTRACE, and through #!/proc/self/exe), the runtime exe cannot be written', () =>
      withLeakCheck(async () => {
        const { caught } = await scanDuringExecs(['CAP_SYS_PTRACE'], [['/vktest', 'exit', '0'], ['/evil']], 5);
        // The scanner saw the runtime's helper in the container: not a vacuous pass.
        const runtimeImages = caught.filter((c) => c.exe !== '/vktest');
        expect(runtimeImages.length).toBeGreaterThan(0);
        if (isVkernel) for (const c of runtimeImages) expect(c.exe).toBe('/memfd:vkinit (deleted)');
        // Reopening for writing may work (a memfd), writing never does.
        for (const c of runtimeImages) expect({ ...c, written: c.wopen === 0 && c.write === 0 }).toMatchObject({ written: false });
      }));

    it('caught as the created container init (waiting for start), it cannot be written after start', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: ['/vktest', 'sleep', '30'] });
        put(
          b,
          'attack.sh',
          [
            'exec 3</proc/1/exe || exit 3',
            'readlink /proc/self/fd/3 > /tmp/held.tmp && mv /tmp/held.tmp /tmp/held',
            // until `start` made pid 1 exec the workload
            'i=0; while [ "$(readlink /proc/1/exe)" != /vktest ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done',
            'sleep 0.2',
            'echo PWNED >> /proc/self/fd/3 && echo written || echo refused',
            '',
          ].join('\n'),
        );
        await runRuntimeOk(['create', '--bundle', b.dir, b.id], opts());
        const attack = runRuntime(['exec', '--cap', 'CAP_SYS_PTRACE', b.id, 'sh', '/attack.sh'], opts({ timeoutMs: 40_000 }));
        await waitFor(() => fs.existsSync(path.join(b.rootfs, 'tmp/held')), 10_000, 'the attacker');
        if (isVkernel) expect(fs.readFileSync(path.join(b.rootfs, 'tmp/held'), 'utf8')).toBe('/memfd:vkinit (deleted)\n');
        await runRuntimeOk(['start', b.id], opts());
        const r = await attack;
        expect(r.stdout).toBe('refused\n');
        await runRuntimeOk(['delete', '--force', b.id], opts());
      }));
  });

  describe('CVE-2016-9962: the init is not ptraceable while it holds runtime state', () => {
    it('exec: the helper is non-dumpable from its first instant (no CAP_SYS_PTRACE: always refused)', () =>
      withLeakCheck(async () => {
        const { caught, denied } = await scanDuringExecs([], [['/vktest', 'exit', '0']], 5);
        // Every catch is of the workload after its execve; the helper itself was refused.
        expect(caught.filter((c) => c.exe !== '/vktest')).toEqual([]);
        expect(denied).toBeGreaterThan(0);
      }));

    // runc 1.1.5 keeps its create-mode init dumpable until execve (it only drops dumpable
    // when joining namespaces): vkernel only.
    if (isVkernel) {
      it('create: the init waiting for start cannot be inspected (environ, exe, mem = ptrace attach)', () =>
        withLeakCheck(async () => {
          const b = await makeBundle({ args: ['/vktest', 'sleep', '30'] });
          put(b, 'probe.sh', 'cat /proc/1/environ >/dev/null 2>&1; echo environ=$?; readlink /proc/1/exe >/dev/null 2>&1; echo exe=$?; /vktest tryopen /proc/1/mem r\n');
          await runRuntimeOk(['create', '--bundle', b.dir, b.id], opts());
          const r = await runRuntimeOk(['exec', b.id, 'sh', '/probe.sh'], opts());
          const kv = parseKeyValues(r.stdout);
          expect(kv.environ).toBe('1');
          expect(kv.exe).toBe('1');
          expect(parseErrno(r.stdout).errname).toBe('EACCES');
          await runRuntimeOk(['delete', '--force', b.id], opts());
        }));
    }
  });

  describe('CVE-2024-21626 and friends: no host fd reaches the container', () => {
    it('the workload and exec processes hold only their stdio', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: ['/vktest', 'fds'] });
        const r = await runBundle(b, opts());
        expect(r.code).toBe(0);
        expect(Object.keys(parseKeyValues(r.stdout))).toEqual(['0', '1', '2']);

        const s = await makeBundle({ args: ['/vktest', 'sleep', '30'] });
        await runRuntimeOk(['run', '-d', '--bundle', s.dir, s.id], opts());
        const e = await runRuntimeOk(['exec', s.id, '/vktest', 'fds'], opts());
        expect(Object.keys(parseKeyValues(e.stdout))).toEqual(['0', '1', '2']);
        await runRuntimeOk(['delete', '--force', s.id], opts());
      }));

    it('a cwd of /proc/self/fd/N never leaves the container root', () =>
      withLeakCheck(async () => {
        const outside = (cwd: string) => !cwd.startsWith('/') || cwd.includes('unreachable');
        for (let n = 3; n <= 9; n++) {
          const b = await makeBundle({ args: ['/vktest', 'cwd'], mutate: (s) => (s.process!.cwd = `/proc/self/fd/${n}`) });
          const r = await runBundle(b, opts());
          if (r.code === 0) expect({ n, cwd: r.stdout.trim(), outside: outside(r.stdout.trim()) }).toMatchObject({ outside: false });
          await b.cleanup();
        }
        const s = await makeBundle({ args: ['/vktest', 'sleep', '30'] });
        await runRuntimeOk(['run', '-d', '--bundle', s.dir, s.id], opts());
        for (let n = 3; n <= 9; n++) {
          const r = await runRuntime(['exec', '--cwd', `/proc/self/fd/${n}`, s.id, '/vktest', 'cwd'], opts());
          if (r.code === 0) expect({ n, cwd: r.stdout.trim(), outside: outside(r.stdout.trim()) }).toMatchObject({ outside: false });
        }
        await runRuntimeOk(['delete', '--force', s.id], opts());
      }));
  });

  describe('mount destinations through symlinks (CVE-2021-30465 and the like)', () => {
    it('a destination under a symlink to a host path is created inside the rootfs', () =>
      withLeakCheck(async () => {
        const host = fs.mkdtempSync(path.join(tmp, 'host-'));
        const b = await makeBundle({
          args: ['/vktest', 'echo', 'ok'],
          mutate: (s) => s.mounts!.push({ destination: '/link/sub', type: 'tmpfs', source: 'tmpfs', options: ['size=64k'] }),
        });
        fs.symlinkSync(host, path.join(b.rootfs, 'link'));
        const r = await runBundle(b, opts());
        expect(r.stdout).toBe('ok\n');
        expect(fs.readdirSync(host)).toEqual([]);
        expect(fs.existsSync(path.join(b.rootfs, host, 'sub'))).toBe(true);
      }));

    it('a directory swapped with such a symlink while containers are set up: nothing lands outside', () =>
      withLeakCheck(async () => {
        const host = fs.mkdtempSync(path.join(tmp, 'host-'));
        const b = await makeBundle({
          args: ['/vktest', 'echo', 'ok'],
          mutate: (s) => s.mounts!.push({ destination: '/swap/sub/dir', type: 'tmpfs', source: 'tmpfs', options: ['size=64k'] }),
        });
        fs.mkdirSync(path.join(b.rootfs, 'swap'));
        fs.symlinkSync(host, path.join(b.rootfs, 'swaplink'));
        // Bounded: the racer stops by itself; at most 12 containers or 20 s.
        const racer = spawn(helper, ['swap', b.rootfs, 'swap', 'swaplink', '25'], { stdio: ['ignore', 'pipe', 'inherit'] });
        let started = 0;
        let succeeded = 0;
        try {
          const end = Date.now() + 20_000;
          for (; started < 12 && Date.now() < end; started++) {
            const r = await runBundle(b, opts());
            if (r.code === 0 && r.stdout === 'ok\n') succeeded++;
          }
        } finally {
          racer.kill('SIGKILL');
          await new Promise((r) => racer.on('close', r));
        }
        expect(started).toBeGreaterThan(0);
        expect(fs.readdirSync(host)).toEqual([]);
        expect(mountsUnder(host)).toEqual([]);
        // Informational: some runs may fail on the race (never escape).
        process.stderr.write(`[cve] swap race: ${succeeded}/${started} containers ran\n`);
      }));
  });

  describe('what the container may touch', () => {
    it('masked paths read empty; readonly paths and /proc/sys are read-only', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: ['sh', '/probe.sh'] });
        const masked = (b.spec.linux!.maskedPaths ?? []).filter((p) => fs.existsSync(p));
        const script = [
          ...masked.map((p) => `echo "${p}=$(if [ -d ${p} ]; then ls -A ${p} | wc -l; else wc -c < ${p}; fi)"`),
          ...['/proc/sys/kernel/domainname', '/proc/sys/vm/drop_caches', '/proc/sys/net/ipv4/ip_forward', '/proc/irq/default_smp_affinity']
            .filter((p) => fs.existsSync(p))
            .map((p) => `echo "${p}=$(/vktest tryopen ${p} w | grep errname)"`),
        ];
        put(b, 'probe.sh', script.join('\n') + '\n');
        const r = await runBundle(b, opts());
        expect(r.code).toBe(0);
        const kv = parseKeyValues(r.stdout);
        expect(masked.length).toBeGreaterThan(0);
        for (const p of masked) expect({ p, v: kv[p] }).toEqual({ p, v: '0' });
        const ro = Object.entries(kv).filter(([k]) => !masked.includes(k));
        expect(ro.length).toBeGreaterThan(0);
        for (const [p, v] of ro) expect({ p, v }).toEqual({ p, v: 'errname=EROFS' });
      }));

    it('a device outside the allow list cannot be opened, even after mknod', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: ['sh', '/dev.sh'], mutate: (s) => addCaps(s, 'CAP_MKNOD') });
        put(
          b,
          'dev.sh',
          [
            'mknod /dev/vk-mem c 1 1 && echo mem-mknod=ok',
            'echo "mem=$(/vktest tryopen /dev/vk-mem r | grep errname)"',
            'mknod /dev/vk-sda b 8 0 && echo sda-mknod=ok',
            'echo "sda=$(/vktest tryopen /dev/vk-sda r | grep errname)"',
            'echo "null=$(/vktest tryopen /dev/null w | grep errname)"',
            '',
          ].join('\n'),
        );
        const r = await runBundle(b, opts());
        expect(r.code).toBe(0);
        expect(parseKeyValues(r.stdout)).toEqual({
          'mem-mknod': 'ok',
          mem: 'errname=EPERM',
          'sda-mknod': 'ok',
          sda: 'errname=EPERM',
          null: 'errname=OK',
        });
      }));
  });
});
