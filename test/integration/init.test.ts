// vkinit on the real kernel (root): hand-built InitPlans against a busybox rootfs, effects
// checked from inside the container through captured stdout.
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { InitStepError } from '../../runtime/errors';
import { launchInit, resolveVkinit, type InitHandle, type LaunchOptions } from '../../runtime/init/channel';
import type { InitPlan, PlanMount } from '../../runtime/init/plan-types';

const REPO = path.resolve(__dirname, '..', '..', '..');

const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  BIND: 0x1000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
};
const CLONE = {
  NEWNS: 0x20000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
};
const ALL_NS = CLONE.NEWNS | CLONE.NEWUTS | CLONE.NEWIPC | CLONE.NEWPID | CLONE.NEWNET;
const APPLETS = ['sh', 'echo', 'cat', 'ls', 'id', 'hostname', 'sleep', 'true', 'grep', 'touch', 'mkdir', 'tty', 'stty', 'readlink', 'umask', 'pwd', 'wc', 'head'];

let base: string; // 0755 temp dir holding every test's files
let rootfs: string;
let hostMountsBefore: string[];
const pids = new Set<number>(); // container pids to check for leftovers

function mount(source: string, destination: string, fstype: string, flags = 0, data = '', kind: 'dir' | 'file' = 'dir'): PlanMount {
  return { source, destination, fstype, flags, propagation: [], data, kind };
}

const PROC = mount('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC);
const DEV = mount('tmpfs', '/dev', 'tmpfs', MS.NOSUID, 'mode=755,size=64k');
const TMP = mount('tmpfs', '/tmp', 'tmpfs', MS.NOSUID | MS.NODEV, 'size=1m');
const DEVPTS = mount('devpts', '/dev/pts', 'devpts', MS.NOSUID | MS.NOEXEC, 'newinstance,ptmxmode=0666,mode=0620');

function plan(over: Partial<InitPlan> = {}): InitPlan {
  return {
    mode: 'create',
    cloneFlags: ALL_NS,
    joins: [],
    cgroupProcs: [],
    wait: true,
    syncHooks: false,
    preserveFds: 0,
    rootfs,
    rootPropagation: MS.SLAVE | MS.REC,
    mounts: [PROC, DEV, TMP],
    devices: [
      { path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0, bind: false },
      { path: '/dev/zero', type: 'c', major: 1, minor: 5, mode: 0o666, uid: 0, gid: 0, bind: false },
    ],
    symlinks: [],
    maskedPaths: [],
    readonlyPaths: [],
    sysctl: [],
    hostname: 'vktest',
    terminal: false,
    cwd: '/',
    args: ['sh', '-c', 'true'],
    env: ['PATH=/bin', 'HOME=/'],
    rlimits: [],
    uid: 0,
    gid: 0,
    additionalGids: [],
    noNewPrivileges: false,
    createContainerHooks: [],
    startContainerHooks: [],
    ...over,
  };
}

function tmpFile(name: string): string {
  return path.join(fs.mkdtempSync(path.join(base, `${name}-`)), name);
}

interface Run {
  code: number;
  out: string;
  err: string;
  pid: number;
}

/** Launch with wait, capture stdout/stderr in files, return the exit code. */
async function run(p: Partial<InitPlan>, opts: LaunchOptions = {}): Promise<Run> {
  const outPath = tmpFile('out');
  const errPath = tmpFile('err');
  const out = fs.openSync(outPath, 'w');
  const err = fs.openSync(errPath, 'w');
  try {
    const h = await launchInit(plan({ wait: true, ...p }), {
      stdio: ['ignore', out, err],
      ...opts,
      onPid: (pid) => {
        pids.add(pid);
        return opts.onPid?.(pid);
      },
    });
    const code = await h.waitExit();
    return { code, out: fs.readFileSync(outPath, 'utf8'), err: fs.readFileSync(errPath, 'utf8'), pid: h.pid };
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
  }
}

/** Expect launchInit to reject with an InitStepError. */
async function runFails(p: Partial<InitPlan>, opts: LaunchOptions = {}): Promise<InitStepError> {
  const e = await run(p, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(InitStepError);
  return e as InitStepError;
}

function sh(script: string): Partial<InitPlan> {
  return { args: ['sh', '-c', script] };
}

function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Until `pid` is in `state`: true, or false after `ms`. */
async function waitState(pid: number, state: string, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (procState(pid) === state) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Gone, or a zombie waiting for the host's init to reap it. */
async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    const st = procState(pid);
    if (st === undefined || st === 'Z' || st === 'X') return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Our own children still running (vkinit must never stay behind). */
function ourChildren(): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') out.push(`${d} ${stat.slice(0, stat.lastIndexOf(')') + 1)}`);
    } catch {
      // raced with exit
    }
  }
  return out;
}

/** Run `script` in a fresh node (channel.js as `launchInit`); fd 3 of it is `fd3` when given. */
async function inNode(script: string, fd3?: number): Promise<{ code: number | null; out: string; err: string }> {
  const prelude = `const { launchInit } = require(${JSON.stringify(path.join(REPO, 'dist/runtime/init/channel.js'))});\n`;
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
  if (fd3 !== undefined) stdio.push(fd3);
  const child = spawn(process.execPath, ['-e', prelude + script], { stdio });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  return { code, out, err };
}

function hostMountsUnderBase(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(base));
}

function buildRootfs(dir: string): void {
  for (const d of ['bin', 'proc', 'dev', 'tmp', 'etc', 'sys', 'secret', 'data']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(path.join(dir, 'etc/marker'), 'rootfs-etc\n');
  fs.writeFileSync(path.join(dir, 'secret/key'), 'hidden\n');
  fs.writeFileSync(path.join(dir, 'data/file'), 'data\n');
  // A destination that is a symlink pointing at the host's /etc, and one climbing out.
  fs.symlinkSync('/etc', path.join(dir, 'evil'));
  fs.symlinkSync('../../../../../../etc', path.join(dir, 'evil2'));
}

beforeAll(() => {
  expect(process.getuid?.()).toBe(0);
  execFileSync('make', ['-s', 'build/vkinit'], { cwd: REPO, stdio: 'inherit' });
  expect(resolveVkinit()).toBe(path.join(REPO, 'build', 'vkinit'));
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'vkinit-test-'));
  fs.chmodSync(base, 0o755); // user-namespace roots must be able to traverse it
  rootfs = path.join(base, 'rootfs');
  buildRootfs(rootfs);
  hostMountsBefore = hostMountsUnderBase();
});

afterEach(async () => {
  for (const pid of pids) {
    if (!(await waitGone(pid, 200))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
      throw new Error(`container process ${pid} was left running`);
    }
  }
  pids.clear();
  expect(ourChildren()).toEqual([]);
  expect(hostMountsUnderBase()).toEqual(hostMountsBefore);
});

afterAll(() => {
  if (base && hostMountsUnderBase().length === 0) fs.rmSync(base, { recursive: true, force: true });
});

describe('create + wait', () => {
  test('namespaces, proc, tmpfs, devices, hostname, domainname', async () => {
    const hostNet = fs.readlinkSync('/proc/self/ns/net');
    const r = await run({
      domainname: 'example.org',
      ...sh(
        'echo pid=$$; hostname; cat /proc/sys/kernel/domainname; readlink /proc/self/ns/net; ' +
          'ls -l /dev/null /dev/zero; echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; ' +
          'grep -E " /(proc|tmp|dev) " /proc/self/mountinfo | while read a b c d mp rest; do echo mnt=$mp; done; ls /',
      ),
    });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines).toContain('pid=1');
    expect(lines).toContain('vktest');
    expect(lines).toContain('example.org');
    expect(r.out).toMatch(/^net:\[\d+\]$/m);
    expect(r.out).not.toContain(hostNet);
    expect(r.out).toMatch(/^crw-rw-rw-\s+1 0\s+0\s+1,\s+3 .* \/dev\/null$/m);
    expect(r.out).toMatch(/^crw-rw-rw-\s+1 0\s+0\s+1,\s+5 .* \/dev\/zero$/m);
    expect(lines).toContain('null-ok');
    expect(lines).toContain('4');
    expect(lines).toEqual(expect.arrayContaining(['mnt=/proc', 'mnt=/tmp', 'mnt=/dev']));
    // the host is gone after pivot_root
    expect(lines).toEqual(expect.arrayContaining(['bin', 'evil', 'secret']));
    expect(r.out).not.toMatch(/^(usr|root|home)$/m);
  });

  test('exit codes: 7, and 128+9 when killed', async () => {
    expect((await run(sh('exit 7'))).code).toBe(7);

    const outPath = tmpFile('out');
    const out = fs.openSync(outPath, 'w');
    const h = await launchInit(plan({ args: ['sleep', '1000'] }), { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    pids.add(h.pid);
    process.kill(h.pid, 'SIGKILL');
    expect(await h.waitExit()).toBe(128 + 9);
  });

  test('signals sent to vkinit are forwarded to the container', async () => {
    // No pid namespace: pid 1 would ignore SIGTERM without a handler.
    const outPath = tmpFile('out');
    const out = fs.openSync(outPath, 'w');
    const h = await launchInit(plan({ cloneFlags: CLONE.NEWNS, hostname: undefined, args: ['sleep', '1000'] }), {
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    pids.add(h.pid);
    const vkinit = Number(fs.readFileSync(`/proc/${h.pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
    expect(fs.readFileSync(`/proc/${vkinit}/comm`, 'utf8').trim()).toBe('vkinit');
    process.kill(vkinit, 'SIGTERM');
    expect(await h.waitExit()).toBe(128 + 15);
  });

  test('user, groups, caps, rlimits, umask, oom_score_adj, no_new_privs, cwd', async () => {
    const CAP_CHOWN = 0;
    const CAP_NET_BIND_SERVICE = 10;
    const bit = (n: number) => (1n << BigInt(n)).toString(16);
    const r = await run({
      uid: 1000,
      gid: 1000,
      additionalGids: [10, 20],
      caps: {
        bounding: ((1n << BigInt(CAP_CHOWN)) | (1n << BigInt(CAP_NET_BIND_SERVICE))).toString(16),
        effective: bit(CAP_NET_BIND_SERVICE),
        permitted: bit(CAP_NET_BIND_SERVICE),
        inheritable: bit(CAP_NET_BIND_SERVICE),
        ambient: bit(CAP_NET_BIND_SERVICE),
        lastCap: Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')),
      },
      rlimits: [{ resource: 7 /* RLIMIT_NOFILE */, soft: '512', hard: '1024' }],
      umask: 0o27,
      oomScoreAdj: 123,
      noNewPrivileges: true,
      cwd: '/tmp/work/dir',
      ...sh('id; grep -E "^(Cap|NoNewPrivs)" /proc/self/status; umask; cat /proc/self/oom_score_adj; pwd; ' + 'grep "open files" /proc/self/limits; touch /tmp/f; ls -ln /tmp/f'),
    });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('uid=1000 gid=1000 groups=10,20');
    expect(r.out).toMatch(/^CapInh:\s+0+400$/m);
    expect(r.out).toMatch(/^CapPrm:\s+0+400$/m);
    expect(r.out).toMatch(/^CapEff:\s+0+400$/m);
    expect(r.out).toMatch(/^CapBnd:\s+0+401$/m);
    expect(r.out).toMatch(/^CapAmb:\s+0+400$/m);
    expect(r.out).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(r.out).toMatch(/^0027$/m);
    expect(r.out).toMatch(/^123$/m);
    expect(r.out).toMatch(/^\/tmp\/work\/dir$/m);
    expect(r.out).toMatch(/^Max open files\s+512\s+1024\s+files/m);
    expect(r.out).toMatch(/^-rw-r-----\s+1 1000\s+1000\s+0 .* \/tmp\/f$/m);
  });

  test('masked, readonly, sysctl in the new IPC namespace, read-only root', async () => {
    const hostShmmax = fs.readFileSync('/proc/sys/kernel/shmmax', 'utf8');
    const r = await run({
      sysctl: [['kernel/shmmax', '123456789']],
      maskedPaths: ['/etc/marker', '/secret', '/does/not/exist'],
      readonlyPaths: ['/proc/sys', '/data', '/nope'],
      rootReadonly: true,
      ...sh(
        'cat /proc/sys/kernel/shmmax; ' +
          'echo 1 > /proc/sys/kernel/shmmax 2>/dev/null || echo sys-ro; ' +
          'wc -c < /etc/marker; ls -A /secret | wc -l; touch /secret/x 2>/dev/null || echo secret-ro; ' +
          'cat /data/file; touch /data/x 2>/dev/null || echo data-ro; ' +
          'touch /rootfile 2>/dev/null || echo root-ro; touch /tmp/ok && echo tmp-rw',
      ),
    });
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual(['123456789', 'sys-ro', '0', '0', 'secret-ro', 'data', 'data-ro', 'root-ro', 'tmp-rw', '']);
    expect(fs.readFileSync('/proc/sys/kernel/shmmax', 'utf8')).toBe(hostShmmax);
    expect(fs.existsSync(path.join(rootfs, 'rootfile'))).toBe(false);
    expect(fs.readdirSync(path.join(rootfs, 'secret'))).toEqual(['key']);
  });

  test('bind mounts: read-only file bind, propagation, remount flags kept', async () => {
    const hostFile = tmpFile('bound');
    fs.writeFileSync(hostFile, 'from-host\n');
    const hostDir = path.dirname(hostFile);
    const r = await run({
      mounts: [
        PROC,
        DEV,
        TMP,
        { ...mount(hostFile, '/etc/bound', 'bind', MS.BIND | MS.RDONLY, '', 'file') },
        { ...mount(hostDir, '/mnt/dir', 'bind', MS.BIND | MS.REC | MS.NOEXEC), propagation: [MS.PRIVATE | MS.REC] },
      ],
      ...sh('cat /etc/bound; echo x >> /etc/bound 2>/dev/null || echo bound-ro; grep -E " /(etc/bound|mnt/dir) " /proc/self/mountinfo'),
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain('from-host\nbound-ro\n');
    expect(r.out).toMatch(/ \/etc\/bound ro,/);
    expect(r.out).toMatch(/ \/mnt\/dir rw,[^ ]*noexec/);
    expect(fs.readFileSync(hostFile, 'utf8')).toBe('from-host\n');
    expect(fs.existsSync(path.join(rootfs, 'mnt/dir'))).toBe(true); // created in the rootfs
  });

  test('a symlinked or ".." destination stays inside the rootfs', async () => {
    const hostMarker = '/etc/vkinit-test-marker';
    const src = tmpFile('src');
    fs.writeFileSync(src, 'bound-file\n');
    const r = await run({
      mounts: [
        PROC,
        DEV,
        TMP,
        mount(src, '/evil/vkinit-test-marker', 'bind', MS.BIND, '', 'file'),
        mount('tmpfs', '/evil2/sub', 'tmpfs', 0, 'size=16k'),
        mount('tmpfs', '/../../../../outside', 'tmpfs', 0, 'size=16k'),
      ],
      ...sh('cat /etc/marker /etc/vkinit-test-marker; grep -E " /(etc/sub|outside) " /proc/self/mountinfo | while read a b c d mp rest; do echo mnt=$mp; done'),
    });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('rootfs-etc\nbound-file\n');
    expect(r.out).toContain('mnt=/etc/sub');
    expect(r.out).toContain('mnt=/outside');
    // Created in the rootfs, never on the host.
    expect(fs.existsSync(hostMarker)).toBe(false);
    expect(fs.existsSync('/etc/sub')).toBe(false);
    expect(fs.existsSync('/outside')).toBe(false);
    expect(fs.existsSync(path.join(rootfs, 'etc/vkinit-test-marker'))).toBe(true);
    expect(fs.existsSync(path.join(rootfs, 'etc/sub'))).toBe(true);
    expect(fs.existsSync(path.join(rootfs, 'outside'))).toBe(true);
  });

  test('devices by bind mount, symlinks', async () => {
    const r = await run({
      devices: [{ path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0, bind: true }],
      symlinks: [
        ['/proc/self/fd', '/dev/fd'],
        ['/proc/self/fd/1', '/dev/stdout'],
      ],
      ...sh('grep " /dev/null " /proc/self/mountinfo | wc -l; echo x > /dev/null && echo ok; readlink /dev/fd; echo via-stdout >> /dev/stdout'),
    });
    expect(r.code).toBe(0);
    expect(r.out).toBe('1\nok\n/proc/self/fd\nvia-stdout\n');
  });

  test('a user namespace with id maps', async () => {
    const r = await run({
      cloneFlags: ALL_NS | CLONE.NEWUSER,
      uidMap: '0 100000 65536\n',
      gidMap: '0 100000 65536\n',
      devices: [{ path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0, bind: true }],
      ...sh('id; cat /proc/self/uid_map; echo x > /dev/null && echo ok; hostname'),
    });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^uid=0 gid=0/m);
    expect(r.out).toMatch(/^\s+0\s+100000\s+65536$/m);
    expect(r.out).toContain('ok\nvktest\n');
  });

  test('seccomp filter, with and without no_new_privs', async () => {
    const bpf = tmpFile('filter.bpf');
    fs.writeFileSync(bpf, denyMkdirFilter());
    for (const noNewPrivileges of [true, false]) {
      const r = await run({
        seccompBpf: bpf,
        noNewPrivileges,
        ...sh('grep -E "^Seccomp:" /proc/self/status; mkdir /tmp/d 2>&1 || echo denied; touch /tmp/f && echo touch-ok'),
      });
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^Seccomp:\s+2$/m);
      expect(r.out).toContain('Operation not permitted');
      expect(r.out).toContain('denied\ntouch-ok\n');
    }
  });

  test('hooks: state on stdin, createContainer before pivot, startContainer inside', async () => {
    const state = (pid: number) => JSON.stringify({ ociVersion: '1.0.2', id: 'hooks', status: 'created', pid, bundle: base });
    const stateFile = path.join(rootfs, 'data', 'create-state.json');
    let onHooksPid = 0;
    const r = await run(
      {
        syncHooks: true,
        createContainerHooks: [
          // Host paths: the mount namespace is the container's, the root is still the host's.
          {
            path: '/bin/sh',
            args: ['sh', '-c', `cat > ${stateFile}; echo "$HOOK_ENV" >> ${stateFile}`],
            env: ['PATH=/usr/bin:/bin', 'HOOK_ENV=create-env'],
            timeout: 5,
          },
        ],
        startContainerHooks: [
          { path: '/bin/sh', args: ['sh', '-c', 'cat > /tmp/start.json; hostname >> /tmp/start.json'], env: ['PATH=/bin'], timeout: 5 },
        ],
        ...sh('cat /data/create-state.json; echo; cat /tmp/start.json'),
      },
      {
        onHooks: async (pid) => {
          onHooksPid = pid;
          return state(pid);
        },
      },
    );
    try {
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(onHooksPid).toBe(r.pid);
      expect(r.out).toBe(`${state(r.pid)}create-env\n\n${state(r.pid)}vktest\n`);
    } finally {
      fs.rmSync(stateFile, { force: true });
    }
  });

  test('hooks: failure, timeout, abort from Node, failing startContainer', async () => {
    const fail = await runFails({
      createContainerHooks: [{ path: '/bin/sh', args: ['sh', '-c', 'echo boom >&2; exit 3'], env: [], timeout: 5 }],
    });
    expect(fail.step).toBe('hook');
    expect(fail.message).toContain('createContainer hook "/bin/sh" exit status 3: boom');

    const t0 = Date.now();
    const slow = await runFails({ createContainerHooks: [{ path: '/bin/sleep', args: ['sleep', '30'], env: [], timeout: 1 }] });
    expect(slow.step).toBe('hook');
    expect(slow.errno).toBe(110); // ETIMEDOUT
    expect(Date.now() - t0).toBeLessThan(10000);

    const aborted = await run({ syncHooks: true }, { onHooks: async () => Promise.reject(new Error('prestart hook failed')) }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(aborted?.message).toBe('prestart hook failed');

    const r = await run({ startContainerHooks: [{ path: '/bin/sh', args: ['sh', '-c', 'exit 4'], env: [], timeout: 5 }], ...sh('echo never') });
    expect(r.code).not.toBe(0);
    expect(r.out).toBe('');
    expect(r.err).toContain('startContainer hook "/bin/sh" exit status 4');
  });

  test('cgroup placement before the cgroup namespace is created', async () => {
    const cg = `/sys/fs/cgroup/pids/vkinit-test-${process.pid}`;
    fs.mkdirSync(cg);
    try {
      const procs = path.join(cg, 'cgroup.procs');
      const plain = await run({ cgroupProcs: [procs], ...sh('grep ":pids:" /proc/self/cgroup') });
      expect(plain.out).toBe(`${plain.out.split(':')[0]}:pids:/vkinit-test-${process.pid}\n`);
      const ns = await run({ cloneFlags: ALL_NS | CLONE.NEWCGROUP, cgroupProcs: [procs], ...sh('grep ":pids:" /proc/self/cgroup') });
      expect(ns.out).toMatch(/^\d+:pids:\/\n$/);
      expect(fs.readFileSync(procs, 'utf8')).toBe('');
    } finally {
      fs.rmdirSync(cg);
    }
  });

  test('shared root propagation (parent made private for pivot_root), and no_pivot', async () => {
    const shared = await run({ rootPropagation: 0x100000 | MS.REC /* MS_SHARED */, ...sh('ls /; ls /usr 2>/dev/null || echo no-usr') });
    expect(shared.code).toBe(0);
    expect(shared.out).toContain('secret\n');
    expect(shared.out).toContain('no-usr\n');
    const moved = await run({ noPivot: true, ...sh('ls /; ls /usr 2>/dev/null || echo no-usr') });
    expect(moved.code).toBe(0);
    expect(moved.out).toContain('secret\n');
    expect(moved.out).toContain('no-usr\n');
  });

  test('user namespace: remounts keep the locked flags of the source', async () => {
    const locked = path.join(base, 'locked');
    fs.mkdirSync(locked, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'nosuid,nodev,noexec,size=64k', 'vkinit-locked', locked]);
    try {
      fs.writeFileSync(path.join(locked, 'f'), 'locked\n');
      // The rootfs belongs to the host's root: the namespace's root cannot create in it.
      fs.mkdirSync(path.join(rootfs, 'mnt/locked'), { recursive: true });
      const r = await run({
        cloneFlags: ALL_NS | CLONE.NEWUSER,
        uidMap: '0 100000 65536\n',
        gidMap: '0 100000 65536\n',
        devices: [{ path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0, bind: true }],
        mounts: [PROC, DEV, TMP, mount(locked, '/mnt/locked', 'bind', MS.BIND | MS.RDONLY)],
        readonlyPaths: ['/data'],
        rootReadonly: true,
        ...sh('cat /mnt/locked/f; grep " /mnt/locked " /proc/self/mountinfo; touch /data/x 2>/dev/null || echo data-ro; touch /x 2>/dev/null || echo root-ro'),
      });
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/ \/mnt\/locked ro,nosuid,nodev,noexec/);
      expect(r.out).toContain('locked\n');
      expect(r.out).toContain('data-ro\nroot-ro\n');
    } finally {
      execFileSync('umount', [locked]);
    }
  });

  test('a failing step names the step; nothing is left behind', async () => {
    const fifo = path.join(fs.mkdtempSync(path.join(base, 'fifo-')), 'exec.fifo');
    const m = await runFails({ execFifo: fifo, mounts: [PROC, mount('none', '/mnt/x', 'nosuchfs')] });
    expect(m.step).toBe('mount');
    expect(m.errno).toBe(19); // ENODEV
    expect(m.message).toBe('container init: mount: mount "none" on "/mnt/x": No such device');
    expect(fs.existsSync(fifo)).toBe(false); // vkinit removed its FIFO

    const s = await runFails({ sysctl: [['kernel/no_such_sysctl', '1']] });
    expect(s.step).toBe('sysctl');
    expect(s.errno).toBe(2);

    const c = await runFails({ cwd: '/data/file' });
    expect(c.step).toBe('cwd');
    expect(c.errno).toBe(20); // ENOTDIR

    const j = await runFails({ joins: [{ nstype: CLONE.NEWNET, path: '/proc/self/ns/nope' }] });
    expect(j.step).toBe('setns');

    const p = await runFails({ mode: 'exec', rootfs });
    expect(p.step).toBe('plan');
  });

  test('a missing executable is an exec error before ready', async () => {
    const e = await runFails({ args: ['no-such-binary', 'x'] });
    expect(e.step).toBe('exec');
    expect(e.errno).toBe(2);
    expect(e.message).toBe('container init: exec: "no-such-binary": executable file not found in $PATH');

    const abs = await runFails({ args: ['/bin/nope'] });
    expect(abs.message).toBe('container init: exec: "/bin/nope": stat /bin/nope: No such file or directory');

    const dir = await runFails({ args: ['/bin'] });
    expect(dir.errno).toBe(13);
  });
});

describe('create mode (exec FIFO)', () => {
  test('resolves after vkinit exits; the container waits for start', async () => {
    const fifo = path.join(fs.mkdtempSync(path.join(base, 'fifo-')), 'exec.fifo');
    const outPath = tmpFile('out');
    const out = fs.openSync(outPath, 'w');
    let h: InitHandle;
    try {
      // Non-root and non-dumpable: the FIFO is reopened through /proc/self/fd all the same.
      h = await launchInit(plan({ wait: false, execFifo: fifo, uid: 1000, gid: 1000, ...sh('echo started; id -u') }), {
        stdio: ['ignore', out, out],
      });
    } finally {
      fs.closeSync(out);
    }
    pids.add(h.pid);
    expect(ourChildren()).toEqual([]); // vkinit is gone
    expect(fs.statSync(fifo).isFIFO()).toBe(true);
    expect((fs.statSync(fifo).mode & 0o777).toString(8)).toBe('622');
    // vkinit is gone, but the container may still be on its way to the FIFO.
    expect(await waitState(h.pid, 'S')).toBe(true); // blocked opening the FIFO
    expect(fs.readFileSync(outPath, 'utf8')).toBe('');
    await expect(h.waitExit()).rejects.toThrow(/wait/);

    // `start`: open the read side, the container writes "0" and execs.
    const fh = await fs.promises.open(fifo, 'r');
    const data = await fh.readFile('utf8');
    await fh.close();
    expect(data).toBe('0');
    expect(await waitGone(h.pid)).toBe(true);
    expect(fs.readFileSync(outPath, 'utf8')).toBe('started\n1000\n');
  });

  test('does not keep the Node event loop alive', async () => {
    const fifo = path.join(fs.mkdtempSync(path.join(base, 'fifo-')), 'exec.fifo');
    const script = `
      const { launchInit } = require(${JSON.stringify(path.join(REPO, 'dist/runtime/init/channel.js'))});
      launchInit(${JSON.stringify(
        plan({
          wait: false,
          execFifo: fifo,
          // in a user namespace this time
          cloneFlags: ALL_NS | CLONE.NEWUSER,
          uidMap: '0 100000 65536\n',
          gidMap: '0 100000 65536\n',
          devices: [],
          ...sh('true'),
        }),
      )}, { stdio: ['ignore', 'ignore', 'ignore'] })
        .then((h) => console.log(h.pid), (e) => { console.error(e); process.exitCode = 1; });`;
    const t0 = Date.now();
    const stdout = execFileSync(process.execPath, ['-e', script], { timeout: 15000, encoding: 'utf8' });
    const pid = Number(stdout.trim());
    expect(pid).toBeGreaterThan(0);
    pids.add(pid);
    expect(Date.now() - t0).toBeLessThan(10000);
    expect(await waitState(pid, 'S')).toBe(true); // blocked opening the FIFO
    const fh = await fs.promises.open(fifo, 'r');
    await fh.readFile();
    await fh.close();
    expect(await waitGone(pid)).toBe(true);
  });
});

describe('exec mode', () => {
  test('joins a running container', async () => {
    const outPath = tmpFile('out');
    const out = fs.openSync(outPath, 'w');
    const h = await launchInit(plan({ hostname: 'box', args: ['sleep', '1000'] }), { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    pids.add(h.pid);
    try {
      const ns = (t: string) => `/proc/${h.pid}/ns/${t}`;
      const joins = [
        { nstype: CLONE.NEWIPC, path: ns('ipc') },
        { nstype: CLONE.NEWUTS, path: ns('uts') },
        { nstype: CLONE.NEWNET, path: ns('net') },
        { nstype: CLONE.NEWPID, path: ns('pid') },
        { nstype: CLONE.NEWNS, path: ns('mnt') }, // last: the paths above are host paths
      ];
      const exec: Partial<InitPlan> = { mode: 'exec', cloneFlags: 0, joins, rootfs: undefined, mounts: [], devices: [] };
      const containerNet = fs.readlinkSync(ns('net'));
      const r = await run({
        ...exec,
        uid: 1000,
        gid: 1000,
        cwd: '/tmp',
        ...sh('hostname; echo pid=$$; cat /proc/1/comm; readlink /proc/self/ns/net; id -u; pwd; ls /'),
      });
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const lines = r.out.split('\n');
      expect(lines.slice(0, 6)).toEqual(['box', expect.stringMatching(/^pid=\d+$/), 'sleep', containerNet, '1000', '/tmp']);
      expect(lines[1]).not.toBe('pid=1');
      expect(lines).toContain('bin');
      expect(lines).not.toContain('usr');

      const missing = await runFails({ ...exec, args: ['nope'] });
      expect(missing.step).toBe('exec');
      expect(missing.errno).toBe(2);

      const code = await run({ ...exec, ...sh('exit 5') });
      expect(code.code).toBe(5);
    } finally {
      process.kill(h.pid, 'SIGKILL');
      expect(await h.waitExit()).toBe(137);
    }
  });
});

describe('exec mode in a user namespace', () => {
  test('joins the user namespace first and becomes its root', async () => {
    const outPath = tmpFile('out');
    const out = fs.openSync(outPath, 'w');
    const h = await launchInit(
      plan({
        cloneFlags: ALL_NS | CLONE.NEWUSER,
        uidMap: '0 100000 65536\n',
        gidMap: '0 100000 65536\n',
        devices: [],
        args: ['sleep', '1000'],
      }),
      { stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    pids.add(h.pid);
    try {
      const ns = (t: string) => `/proc/${h.pid}/ns/${t}`;
      const joins = [
        { nstype: CLONE.NEWUSER, path: ns('user') },
        { nstype: CLONE.NEWIPC, path: ns('ipc') },
        { nstype: CLONE.NEWUTS, path: ns('uts') },
        { nstype: CLONE.NEWNET, path: ns('net') },
        { nstype: CLONE.NEWPID, path: ns('pid') },
        { nstype: CLONE.NEWNS, path: ns('mnt') },
      ];
      const r = await run({
        mode: 'exec',
        cloneFlags: 0,
        joins,
        rootfs: undefined,
        mounts: [],
        devices: [],
        uid: 0,
        gid: 0,
        ...sh('id -u; cat /proc/self/uid_map; hostname'),
      });
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^0\n\s+0\s+100000\s+65536\nvktest\n$/);
    } finally {
      process.kill(h.pid, 'SIGKILL');
      expect(await h.waitExit()).toBe(137);
    }
  });
});

describe('terminal', () => {
  test('console socket receives the pty master; size and controlling tty set', async () => {
    const dir = fs.mkdtempSync(path.join(base, 'console-'));
    const recv = path.join(dir, 'recvtty');
    fs.writeFileSync(`${recv}.c`, RECVTTY_C);
    execFileSync('gcc', ['-O2', '-Wall', '-o', recv, `${recv}.c`]);
    const sock = path.join(dir, 'console.sock');
    const receiver = spawn(recv, [sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    const closed = new Promise<number | null>((r) => receiver.on('close', r));
    await new Promise<void>((resolve) =>
      receiver.stdout.on('data', (d: Buffer) => {
        output += d.toString();
        if (output.includes('listening\n')) resolve();
      }),
    );
    const r = await run({
      terminal: true,
      consoleSocket: sock,
      consoleSize: { rows: 30, cols: 100 },
      mounts: [PROC, DEV, DEVPTS, TMP],
      symlinks: [['pts/ptmx', '/dev/ptmx']],
      uid: 1000,
      gid: 1000,
      ...sh('tty; stty size; ls -ln /dev/console; readlink /proc/self/fd/0; exit 3'),
    });
    expect(r.code).toBe(3);
    expect(await closed).toBe(0);
    expect(output).toContain('name=/dev/pts/0\n');
    expect(output).toContain('/dev/pts/0\r\n30 100\r\n');
    expect(output).toMatch(/^crw--w----\s+1 1000\s+0\s+136,\s+0 .*\/dev\/console\r$/m);
  });

  test('wait mode without a console socket proxies the pty through vkinit', async () => {
    const r = await run({
      terminal: true,
      mounts: [PROC, DEV, DEVPTS, TMP],
      symlinks: [['pts/ptmx', '/dev/ptmx']],
      consoleSize: { rows: 11, cols: 22 },
      // stdin is /dev/null: the proxy sends the terminal's EOF, cat ends
      ...sh('tty; stty size; cat; echo after-eof'),
    });
    expect(r.code).toBe(0);
    expect(r.out).toBe('/dev/pts/0\r\n11 22\r\nafter-eof\r\n');
  });
});

describe('preserve fds', () => {
  test('fds 3.. of the caller reach the workload, nothing else does', async () => {
    const extra = tmpFile('fd3');
    const fd = fs.openSync(extra, 'w');
    const r = await inNode(
      `launchInit(${JSON.stringify(plan(sh('echo via-fd3 >&3; ls /proc/self/fd')))}, { preserveFds: 1, onPid: (p) => console.error('pid=' + p) })
        .then((h) => h.waitExit())
        .then((c) => { process.exitCode = c; }, (e) => { console.error(e); process.exitCode = 99; });`,
      fd,
    );
    fs.closeSync(fd);
    const pid = Number(/pid=(\d+)/.exec(r.err)?.[1]);
    if (pid) pids.add(pid);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(extra, 'utf8')).toBe('via-fd3\n');
    // 0-2, the preserved 3, and ls's own directory fd
    expect(r.out.split('\n').filter(Boolean)).toEqual(['0', '1', '2', '3', '4']);
  });

  test('a cwd through a passed host directory fd is refused (CVE-2024-21626)', async () => {
    const fd = fs.openSync(base, 'r');
    const r = await inNode(
      `launchInit(${JSON.stringify(plan({ cwd: '/proc/self/fd/3', ...sh('pwd') }))}, { preserveFds: 1 })
        .then(() => console.log('started'), (e) => console.log(JSON.stringify({ step: e.step, message: e.message })));`,
      fd,
    );
    fs.closeSync(fd);
    expect(r.err).toBe('');
    const res = JSON.parse(r.out);
    expect(res.step).toBe('cwd');
    expect(res.message).toContain('is outside the container root');
  });
});

describe('robustness', () => {
  test('a missing vkinit binary rejects', async () => {
    await expect(launchInit(plan(), { vkinit: path.join(base, 'no-vkinit') })).rejects.toThrow(/cannot run vkinit/);
  });

  test('Node dying mid-setup takes the container with it', async () => {
    const r = await inNode(
      `launchInit(${JSON.stringify(plan({ syncHooks: true, args: ['sleep', '1000'] }))}, {
        onPid: (p) => {
          const ppid = require('fs').readFileSync('/proc/' + p + '/stat', 'utf8').split(') ')[1].split(' ')[1];
          console.log(p + ' ' + ppid);
        },
        onHooks: () => process.exit(3),
      });`,
    );
    expect(r.code).toBe(3);
    const [container, vkinit] = r.out.trim().split(' ').map(Number);
    expect(container).toBeGreaterThan(0);
    expect(await waitGone(container)).toBe(true);
    expect(await waitGone(vkinit)).toBe(true);
  });
});

/** A seccomp program returning EPERM for mkdir/mkdirat on x86_64, allowing the rest. */
function denyMkdirFilter(): Buffer {
  const LD_ABS_W = 0x20;
  const JEQ_K = 0x15;
  const RET_K = 0x06;
  const ALLOW = 0x7fff0000;
  const ERRNO_EPERM = 0x00050000 | 1;
  const AUDIT_ARCH_X86_64 = 0xc000003e;
  const insns: Array<[number, number, number, number]> = [
    [LD_ABS_W, 0, 0, 4], // arch
    [JEQ_K, 1, 0, AUDIT_ARCH_X86_64],
    [RET_K, 0, 0, ALLOW],
    [LD_ABS_W, 0, 0, 0], // syscall nr
    [JEQ_K, 2, 0, 83], // mkdir
    [JEQ_K, 1, 0, 258], // mkdirat
    [RET_K, 0, 0, ALLOW],
    [RET_K, 0, 0, ERRNO_EPERM],
  ];
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    buf.writeUInt16LE(code, i * 8);
    buf.writeUInt8(jt, i * 8 + 2);
    buf.writeUInt8(jf, i * 8 + 3);
    buf.writeUInt32LE(k, i * 8 + 4);
  });
  return buf;
}

/** A minimal console-socket receiver (like runc's recvtty): prints the name, then the pty output. */
const RECVTTY_C = String.raw`
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char name[256] = { 0 }, buf[4096];
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr h; } u;
	struct iovec iov = { name, sizeof name - 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b };
	struct cmsghdr *c;
	int s, conn, fd;
	ssize_t n;

	if (argc != 2)
		return 2;
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
	if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1))
		return perror("bind"), 1;
	printf("listening\n");
	fflush(stdout);
	conn = accept(s, NULL, NULL);
	if (conn < 0 || recvmsg(conn, &m, 0) <= 0 || !(c = CMSG_FIRSTHDR(&m)) || c->cmsg_type != SCM_RIGHTS)
		return perror("recvmsg"), 1;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	printf("name=%s\n", name);
	fflush(stdout);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	return 0;
}
`;
