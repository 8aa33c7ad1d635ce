// Compiles real profiles with build/vkseccomp and loads the BPF into a test process
// (test/integration/seccomp-testload.c, built here with gcc) the way the init helper does:
// prctl(NO_NEW_PRIVS), seccomp(SECCOMP_SET_MODE_FILTER, flags), then exec or raw syscalls.
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describeIf, hasBinary, repoRoot, requirement } from '../harness';
import { agentMessage } from '../../runtime/seccomp/agent-message';
import { compileSeccomp, CompiledSeccomp } from '../../runtime/seccomp/compile';
import { defaultSeccompProfile } from '../../runtime/seccomp/default-profile';
import { Seccomp, SeccompSyscall } from '../../runtime/spec/types';

const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => fs.existsSync(p));
const ok =
  requirement(process.platform === 'linux', 'linux only') &&
  requirement(hasBinary('gcc'), 'gcc is not installed (needed to build the seccomp test loader)') &&
  requirement(fs.existsSync('/usr/include/seccomp.h'), 'libseccomp-dev is not installed') &&
  requirement(BUSYBOX !== undefined, 'busybox is not installed');

const EPERM = 1;
const ENOSYS = 38;
const EOPNOTSUPP = 95;
const EBADFD = 77;
const CLONE_NEWUSER = 0x10000000;
const SIGCHLD = 17;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], timeoutMs = 20_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** "name ret=R errno=E" lines -> [{ name, ret, errno }]. */
function calls(stdout: string): { name: string; ret: number; errno: number }[] {
  return [...stdout.matchAll(/^(\w+) ret=(-?\d+) errno=(\d+)$/gm)].map((m) => ({ name: m[1], ret: Number(m[2]), errno: Number(m[3]) }));
}

describeIf(ok)('seccomp: compile with libseccomp and load into the kernel', () => {
  let tmp: string;
  let compiler: string;
  let loader: string;
  let cacheDir: string;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vk-seccomp-it-'));
    cacheDir = path.join(tmp, 'cache');
    const root = repoRoot();
    compiler = path.join(root, 'build', 'vkseccomp');
    if (!fs.existsSync(compiler)) {
      // `make native` builds it; build a private copy so this file also runs on its own.
      compiler = path.join(tmp, 'vkseccomp');
      execFileSync('gcc', ['-O2', '-Wall', '-D_GNU_SOURCE', '-o', compiler, path.join(root, 'runtime/seccomp/vkseccomp.c'), '-lseccomp']);
    }
    loader = path.join(tmp, 'seccomp-testload');
    execFileSync('gcc', ['-O2', '-Wall', '-D_GNU_SOURCE', '-o', loader, path.join(root, 'test/integration/seccomp-testload.c'), '-lseccomp']);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const compile = async (s: Seccomp): Promise<CompiledSeccomp> => {
    const r = await compileSeccomp(s, { cacheDir, compiler });
    if (!r) throw new Error('profile unexpectedly disables seccomp');
    return r;
  };
  const load = (c: CompiledSeccomp, cmd: string[], extra: string[] = []) =>
    run(loader, ['load', '--flags', String(c.flags), ...extra, c.bpfPath, '--', ...cmd]);
  const allowAll = (...syscalls: SeccompSyscall[]): Seccomp => ({ defaultAction: 'SCMP_ACT_ALLOW', syscalls });

  it('SCMP_ACT_ERRNO returns the configured errnoRet, EPERM by default', async () => {
    const c = await compile(
      allowAll(
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: EOPNOTSUPP },
        { names: ['rmdir'], action: 'SCMP_ACT_ERRNO' },
      ),
    );
    const dir = path.join(tmp, 'errno-dir');
    const r = await load(c, ['@mkdir', `s:${dir}`, '0755', '@mkdirat', '-100', `s:${dir}`, '0755', '@rmdir', `s:${tmp}`, '@getpid']);
    expect(r.code).toBe(0);
    expect(calls(r.stdout)).toEqual([
      { name: 'mkdir', ret: -1, errno: EOPNOTSUPP },
      { name: 'mkdirat', ret: -1, errno: EOPNOTSUPP },
      { name: 'rmdir', ret: -1, errno: EPERM },
      { name: 'getpid', ret: expect.any(Number), errno: 0 },
    ]);
    expect(fs.existsSync(dir)).toBe(false);

    const sh = await load(c, [BUSYBOX!, 'mkdir', dir]);
    expect(sh.code).toBe(1);
    expect(sh.stderr).toMatch(/not supported/i);
  });

  it('SCMP_ACT_KILL_PROCESS and SCMP_ACT_KILL end the process with SIGSYS', async () => {
    for (const action of ['SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD']) {
      const c = await compile(allowAll({ names: ['mkdir', 'mkdirat'], action }));
      const r = await load(c, [BUSYBOX!, 'mkdir', path.join(tmp, 'killed')]);
      expect({ action, signal: r.signal }).toEqual({ action, signal: 'SIGSYS' });
    }
  });

  it('SCMP_ACT_TRAP delivers a catchable SIGSYS', async () => {
    const c = await compile(allowAll({ names: ['getppid'], action: 'SCMP_ACT_TRAP' }));
    const r = await load(c, ['@getpid', '@getppid']);
    expect(r.code).toBe(100);
    expect(r.stdout).toMatch(/^getpid ret=\d+ errno=0\nsigsys syscall=\d+ errno=0\n$/);
  });

  it('SCMP_ACT_TRACE without a tracer fails the call with ENOSYS', async () => {
    const c = await compile(allowAll({ names: ['getppid'], action: 'SCMP_ACT_TRACE', errnoRet: 7 }));
    expect(calls((await load(c, ['@getppid'])).stdout)).toEqual([{ name: 'getppid', ret: -1, errno: ENOSYS }]);
  });

  it('SCMP_ACT_LOG and SCMP_ACT_ALLOW let the call through', async () => {
    const c = await compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: EBADFD,
      syscalls: [
        { names: ['getppid'], action: 'SCMP_ACT_LOG' },
        { names: ['write', 'exit_group', 'rt_sigaction', 'getpid'], action: 'SCMP_ACT_ALLOW' },
      ],
    });
    const r = await load(c, ['@getppid', '@getpid', '@getuid']);
    expect(r.code).toBe(0);
    const [ppid, pid, uid] = calls(r.stdout);
    expect(ppid).toEqual({ name: 'getppid', ret: expect.any(Number), errno: 0 });
    expect(ppid.ret).toBeGreaterThan(0);
    expect(pid.errno).toBe(0);
    expect(uid).toEqual({ name: 'getuid', ret: -1, errno: EBADFD });
  });

  describe('argument comparisons (personality arg0 against 5)', () => {
    const cases: [string, number, number, number[]][] = [
      ['SCMP_CMP_EQ', 5, 0, [5]],
      ['SCMP_CMP_NE', 5, 0, [4, 6]],
      ['SCMP_CMP_LT', 5, 0, [4]],
      ['SCMP_CMP_LE', 5, 0, [4, 5]],
      ['SCMP_CMP_GE', 5, 0, [5, 6]],
      ['SCMP_CMP_GT', 5, 0, [6]],
      // (arg & 3) == 2
      ['SCMP_CMP_MASKED_EQ', 3, 2, [6]],
    ];
    it.each(cases)('%s (value %d, valueTwo %d) blocks %j', async (op, value, valueTwo, blocked) => {
      const c = await compile(allowAll({ names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: EBADFD, args: [{ index: 0, op, value, valueTwo }] }));
      const r = await load(c, ['@personality', '4', '@personality', '5', '@personality', '6']);
      const got = calls(r.stdout).map((x, i) => (x.errno === EBADFD ? 4 + i : -1)).filter((x) => x >= 0);
      expect(got).toEqual(blocked);
    });

    it('ORs comparisons on the same argument and ANDs different arguments (as runc)', async () => {
      const c = await compile(
        allowAll(
          {
            names: ['personality'],
            action: 'SCMP_ACT_ERRNO',
            errnoRet: EBADFD,
            args: [
              { index: 0, op: 'SCMP_CMP_EQ', value: 4 },
              { index: 0, op: 'SCMP_CMP_EQ', value: 6 },
            ],
          },
          {
            names: ['getpriority'],
            action: 'SCMP_ACT_ERRNO',
            errnoRet: EBADFD,
            args: [
              { index: 0, op: 'SCMP_CMP_EQ', value: 0 },
              { index: 1, op: 'SCMP_CMP_EQ', value: 1 },
            ],
          },
        ),
      );
      const r = await load(c, ['@personality', '4', '@personality', '5', '@personality', '6', '@getpriority', '0', '1', '@getpriority', '0', '0', '@getpriority', '1', '1']);
      expect(calls(r.stdout).map((x) => x.errno === EBADFD)).toEqual([true, false, true, true, false, false]);
    });

    it('SCMP_CMP_MASKED_EQ on clone flags refuses CLONE_NEWUSER only', async () => {
      const c = await compile(
        allowAll({
          names: ['clone'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: EBADFD,
          args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: CLONE_NEWUSER, valueTwo: CLONE_NEWUSER }],
        }),
      );
      const r = await load(c, ['@clone', String(CLONE_NEWUSER | SIGCHLD), '@clone', String(SIGCHLD)]);
      expect(calls(r.stdout)).toEqual([
        { name: 'clone', ret: -1, errno: EBADFD },
        { name: 'clone', ret: 1, errno: 0 },
      ]);
    });
  });

  describe('the default profile', () => {
    let c: CompiledSeccomp;
    beforeAll(async () => {
      c = await compile(defaultSeccompProfile());
    });

    it('runs an ordinary shell workload', async () => {
      const dir = path.join(tmp, 'default-ok');
      const r = await load(c, [BUSYBOX!, 'sh', '-c', `echo hello; mkdir ${dir} && rmdir ${dir}; ls / >/dev/null; (sleep 0; true) & wait; cat /proc/self/status | grep -c Seccomp`]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^hello\n/);
    });

    it('refuses the keyring, CLONE_NEWUSER and clone3', async () => {
      const r = await load(c, [
        '@keyctl', '0', '0',
        '@add_key', 's:user', 's:k', 's:v', '1', '0xfffffffd',
        '@request_key', 's:user', 's:k', '0', '0',
        '@unshare', String(CLONE_NEWUSER),
        '@clone', String(CLONE_NEWUSER | SIGCHLD),
        '@clone3', '0', '0',
        '@unshare', '0',
        '@clone', String(SIGCHLD),
      ]);
      expect(r.code).toBe(0);
      expect(calls(r.stdout).map((x) => `${x.name} ${x.errno}`)).toEqual([
        `keyctl ${EPERM}`,
        `add_key ${EPERM}`,
        `request_key ${EPERM}`,
        `unshare ${EPERM}`,
        `clone ${EPERM}`,
        `clone3 ${ENOSYS}`,
        'unshare 0',
        'clone 0',
      ]);
    });

    it('makes `unshare -U` fail', async () => {
      const r = await load(c, [BUSYBOX!, 'unshare', '-U', 'true']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/operation not permitted/i);
    });
  });

  describe('SCMP_ACT_NOTIFY', () => {
    async function withAgent(response: string, profile: Seccomp, cmd: string[]) {
      const sock = profile.listenerPath!;
      const agent = run(loader, ['agent', sock, response]);
      for (let i = 0; i < 200 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 10));
      const c = await compile(profile);
      const message = agentMessage({ ociVersion: '1.0.2', id: 'notify-test', status: 'creating', pid: process.pid, bundle: tmp }, process.pid, profile.listenerMetadata);
      const r = await load(c, cmd, ['--listener', sock, '--message', message]);
      return { c, r, a: await agent, message };
    }

    it('hands the listener fd to the agent, whose answer is the syscall result', async () => {
      const dir = path.join(tmp, 'notify-errno');
      const { c, r, a, message } = await withAgent(
        'errno:13',
        {
          defaultAction: 'SCMP_ACT_ALLOW',
          listenerPath: path.join(tmp, 'agent1.sock'),
          listenerMetadata: 'hello-agent',
          flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'],
          syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
        },
        ['@getpid', '@mkdir', `s:${dir}`, '0755'],
      );
      expect(c).toMatchObject({ notify: true, flags: 8 | 32, listenerMetadata: 'hello-agent' });
      expect(calls(r.stdout)).toEqual([
        { name: 'getpid', ret: expect.any(Number), errno: 0 },
        { name: 'mkdir', ret: -1, errno: 13 },
      ]);
      expect(fs.existsSync(dir)).toBe(false);
      expect(a.code).toBe(0);
      const lines = a.stdout.trim().split('\n');
      expect(lines).toEqual([`message ${message}`, 'notify mkdir']);
      expect(JSON.parse(message)).toMatchObject({ fds: ['seccompFd'], metadata: 'hello-agent', state: { id: 'notify-test' } });
    });

    it('lets the agent continue the syscall', async () => {
      const dir = path.join(tmp, 'notify-continue');
      const { r, a } = await withAgent(
        'continue',
        {
          defaultAction: 'SCMP_ACT_ALLOW',
          listenerPath: path.join(tmp, 'agent2.sock'),
          syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_NOTIFY' }],
        },
        [BUSYBOX!, 'mkdir', dir],
      );
      expect(r.code).toBe(0);
      expect(fs.statSync(dir).isDirectory()).toBe(true);
      expect(a.stdout).toMatch(/\nnotify mkdir/);
    });
  });

  it('serves a second compile from the cache, honours VKERNEL_SECCOMP and reports unknown syscalls', async () => {
    const profile = allowAll({ names: ['getppid', 'no_such_syscall'], action: 'SCMP_ACT_ERRNO' });
    const first = await compile(profile);
    expect(first.warnings).toEqual(['linux.seccomp.syscalls[0]: unknown syscall skipped: "no_such_syscall"']);
    const saved = process.env.VKERNEL_SECCOMP;
    process.env.VKERNEL_SECCOMP = compiler;
    try {
      const again = await compileSeccomp(profile, { cacheDir });
      expect(again).toMatchObject({ bpfPath: first.bpfPath, cached: true, warnings: first.warnings });
    } finally {
      if (saved === undefined) delete process.env.VKERNEL_SECCOMP;
      else process.env.VKERNEL_SECCOMP = saved;
    }
    expect(calls((await load(first, ['@getppid'])).stdout)).toEqual([{ name: 'getppid', ret: -1, errno: EPERM }]);
  });

  it('compiles every known architecture that libseccomp can add next to the native one', async () => {
    const native = process.arch === 'x64' ? ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] : process.arch === 'arm64' ? ['SCMP_ARCH_ARM'] : [];
    const c = await compile({ ...allowAll({ names: ['getppid'], action: 'SCMP_ACT_ERRNO' }), architectures: native });
    expect(fs.statSync(c.bpfPath).size % 8).toBe(0);
  });
});
