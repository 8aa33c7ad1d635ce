// vkinit's later steps on the real kernel (root), with hand-built InitPlans as in
// init.test.ts: the session keyring, loopback, the seccomp listener hand-over and the
// sealed copy vkinit runs from (CVE-2019-5736). Runtime-level checks of the same
// things (against runc too) are in seccomp-notify.test.ts and cve.test.ts.
import { createHash } from 'crypto';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { InitStepError } from '../../runtime/errors';
import { launchInit, resolveVkinit, type LaunchOptions } from '../../runtime/init/channel';
import type { InitPlan, PlanMount } from '../../runtime/init/plan-types';
import { native } from '../../runtime/native';
import { fixturesRootfs } from '../harness/bundle';
import { requireFixtures, requireRoot } from '../harness/guards';

const REPO = path.resolve(__dirname, '..', '..', '..');
const ok = requireRoot() && requireFixtures();
const describeIf = ok ? describe : describe.skip;

const MS = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, REC: 0x4000, SLAVE: 0x80000 };
const CLONE = { NEWNS: 0x20000, NEWUTS: 0x04000000, NEWIPC: 0x08000000, NEWUSER: 0x10000000, NEWPID: 0x20000000, NEWNET: 0x40000000 };
const ALL_NS = CLONE.NEWNS | CLONE.NEWUTS | CLONE.NEWIPC | CLONE.NEWPID | CLONE.NEWNET;
const SECCOMP_FILTER_FLAG_NEW_LISTENER = 8;
const KEY_USR_SEARCH = 0x80000;
const KEY_OTH_SEARCH = 0x8;

let base: string;
let rootfs: string;
const pids = new Set<number>();

function mount(source: string, destination: string, fstype: string, flags = 0, data = ''): PlanMount {
  return { source, destination, fstype, flags, propagation: [], data, kind: 'dir' };
}
const PROC = mount('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC);
const DEV = mount('tmpfs', '/dev', 'tmpfs', MS.NOSUID, 'mode=755,size=64k');
const SYS = mount('sysfs', '/sys', 'sysfs', MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RDONLY);

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
    mounts: [PROC, DEV],
    devices: [{ path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0, bind: false }],
    symlinks: [],
    maskedPaths: [],
    readonlyPaths: [],
    sysctl: [],
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

function sh(script: string): Partial<InitPlan> {
  return { args: ['sh', '-c', script] };
}

function tmpFile(name: string): string {
  return path.join(fs.mkdtempSync(path.join(base, `${name}-`)), name);
}

/** Launch with wait, capture stdout/stderr, return the exit code and output. */
async function run(p: Partial<InitPlan>, opts: LaunchOptions = {}): Promise<{ code: number; out: string; err: string; pid: number }> {
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

async function runFails(p: Partial<InitPlan>, opts: LaunchOptions = {}): Promise<unknown> {
  return run(p, opts).then(
    (r) => {
      throw new Error(`expected a failure, got exit ${r.code}: ${r.out} ${r.err}`);
    },
    (e: unknown) => e,
  );
}

function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    const st = procState(pid);
    if (st === undefined || st === 'Z' || st === 'X') return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Keyrings named `name` that the host can see in /proc/keys. */
function hostKeyrings(name: string): string[] {
  return fs
    .readFileSync('/proc/keys', 'utf8')
    .split('\n')
    .filter((l) => / keyring +/.test(l) && l.endsWith(` ${name}: empty`));
}

/** One allow-everything instruction (BPF_RET|BPF_K, SECCOMP_RET_ALLOW). */
function allowAllBpf(): string {
  const file = tmpFile('allow.bpf');
  const insn = Buffer.alloc(8);
  insn.writeUInt16LE(0x06, 0);
  insn.writeUInt32LE(0x7fff0000, 4);
  fs.writeFileSync(file, insn);
  return file;
}

beforeAll(() => {
  if (!ok) return;
  execFileSync('make', ['-s', 'build/vkinit'], { cwd: REPO, stdio: 'inherit' });
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'vkinit-extras-'));
  fs.chmodSync(base, 0o755);
  rootfs = path.join(base, 'rootfs');
  execFileSync('cp', ['-a', '--', fixturesRootfs(), rootfs]);
});

afterEach(async () => {
  for (const pid of pids) {
    if (!(await waitGone(pid, 500))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
      throw new Error(`container process ${pid} was left running`);
    }
  }
  pids.clear();
});

afterAll(() => {
  if (base && !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(base)) fs.rmSync(base, { recursive: true, force: true });
});

describeIf('session keyring', () => {
  test('a new keyring named as asked, searchable like runc makes it', async () => {
    const name = `_ses.vkx-${process.pid}-${Date.now()}`;
    const r = await run({ sessionKeyring: { name, addPerm: KEY_USR_SEARCH }, ...sh('cat /proc/keys') });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // runc: the joined keyring's default (possessor all; user view, read, link) + user search.
    expect(r.out).toMatch(new RegExp(`^[0-9a-f]+ I--Q--- +\\d+ perm 3f1b0000 +0 +0 keyring +${name.replace('.', '\\.')}: empty$`, 'm'));
    expect(hostKeyrings(name)).toHaveLength(1);
  });

  test('in a user namespace "other" gets search instead', async () => {
    const name = `_ses.vkx-userns-${process.pid}-${Date.now()}`;
    const r = await run({
      cloneFlags: ALL_NS | CLONE.NEWUSER,
      uidMap: '0 100000 65536\n',
      gidMap: '0 100000 65536\n',
      devices: [],
      sessionKeyring: { name, addPerm: KEY_OTH_SEARCH },
      ...sh('cat /proc/keys'),
    });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`perm 3f130008 +0 +0 keyring +${name.replace('.', '\\.')}: empty$`, 'm'));
  });

  test('exec joins the container keyring instead of making a second one', async () => {
    const name = `_ses.vkx-exec-${process.pid}-${Date.now()}`;
    const outPath = tmpFile('out');
    const out = fs.openSync(outPath, 'w');
    const h = await launchInit(plan({ sessionKeyring: { name, addPerm: KEY_USR_SEARCH }, args: ['sleep', '1000'] }), {
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    pids.add(h.pid);
    try {
      expect(hostKeyrings(name)).toHaveLength(1);
      const ns = (t: string) => `/proc/${h.pid}/ns/${t}`;
      const r = await run({
        mode: 'exec',
        cloneFlags: 0,
        joins: [
          { nstype: CLONE.NEWIPC, path: ns('ipc') },
          { nstype: CLONE.NEWUTS, path: ns('uts') },
          { nstype: CLONE.NEWNET, path: ns('net') },
          { nstype: CLONE.NEWPID, path: ns('pid') },
          { nstype: CLONE.NEWNS, path: ns('mnt') },
        ],
        rootfs: undefined,
        mounts: [],
        devices: [],
        sessionKeyring: { name, addPerm: 0 },
        ...sh('grep -c " keyring *_ses.vkx-exec" /proc/keys'),
      });
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toBe('1\n');
      expect(hostKeyrings(name)).toHaveLength(1);
    } finally {
      process.kill(h.pid, 'SIGKILL');
    }
  });

  test('an empty name is refused by the encoder', async () => {
    await expect(run({ sessionKeyring: { name: '', addPerm: 0 } })).rejects.toThrow(/sessionKeyring/);
  });
});

describeIf('loopback', () => {
  test('lo is up in the new network namespace only with loopback_up', async () => {
    const up = await run({ mounts: [PROC, DEV, SYS], loopbackUp: true, ...sh('cat /sys/class/net/lo/flags /sys/class/net/lo/operstate') });
    expect(up.err).toBe('');
    expect(up.out).toBe('0x9\nunknown\n'); // IFF_UP|IFF_LOOPBACK; a loopback's operstate is "unknown"
    const down = await run({ mounts: [PROC, DEV, SYS], ...sh('cat /sys/class/net/lo/flags /sys/class/net/lo/operstate') });
    expect(down.out).toBe('0x8\ndown\n');
  });

  test('never without a network namespace of its own (the host lo)', async () => {
    const e = await runFails({ cloneFlags: ALL_NS & ~CLONE.NEWNET, loopbackUp: true });
    expect(e).toBeInstanceOf(InitStepError);
    expect((e as InitStepError).step).toBe('plan');
  });
});

describeIf('seccomp listener', () => {
  /** Listen on a fresh socket; resolves with what one connection brought. */
  function agent(): { sock: string; got: Promise<{ fd: number; name: string }> } {
    const sock = tmpFile('agent.sock');
    const lfd = native().listenUnix(sock);
    const got = native()
      .acceptRecvFd(lfd, 10_000)
      .finally(() => fs.closeSync(lfd));
    return { sock, got };
  }

  for (const nnp of [true, false]) {
    test(`the container process hands the listener and Node's message to the agent (no_new_privs ${nnp})`, async () => {
      const a = agent();
      const seen: number[] = [];
      const r = await run(
        {
          seccompBpf: allowAllBpf(),
          seccompFlags: SECCOMP_FILTER_FLAG_NEW_LISTENER,
          seccompListener: a.sock,
          noNewPrivileges: nnp,
          ...sh('echo ran'),
        },
        {
          seccompAgentMessage: (pid) => {
            seen.push(pid);
            return `{"pid":${pid}}`;
          },
        },
      );
      expect(r.err).toBe('');
      expect(r.out).toBe('ran\n');
      const { fd, name } = await a.got;
      try {
        expect(seen).toEqual([r.pid]);
        expect(name).toBe(`{"pid":${r.pid}}`);
        expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toBe('anon_inode:seccomp notify');
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  test('the message callback failing aborts the container', async () => {
    const a = agent();
    a.got.catch(() => undefined);
    const e = await runFails(
      { seccompBpf: allowAllBpf(), seccompFlags: SECCOMP_FILTER_FLAG_NEW_LISTENER, seccompListener: a.sock, ...sh('echo never') },
      {
        seccompAgentMessage: () => {
          throw new Error('no state for the agent');
        },
      },
    );
    expect((e as Error).message).toBe('no state for the agent');
  });

  test('nobody listening is a seccomp error before the container exists', async () => {
    const e = await runFails({
      seccompBpf: allowAllBpf(),
      seccompFlags: SECCOMP_FILTER_FLAG_NEW_LISTENER,
      seccompListener: path.join(base, 'nobody.sock'),
    });
    expect(e).toBeInstanceOf(InitStepError);
    expect((e as InitStepError).step).toBe('seccomp');
    expect((e as InitStepError).errno).toBe(2);
    expect((e as InitStepError).message).toMatch(/nobody\.sock/);
  });

  test('NEW_LISTENER and a listener path go together', async () => {
    const noPath = await runFails({ seccompBpf: allowAllBpf(), seccompFlags: SECCOMP_FILTER_FLAG_NEW_LISTENER });
    expect((noPath as InitStepError).step).toBe('plan');
    const noFlag = await runFails({ seccompBpf: allowAllBpf(), seccompFlags: 0, seccompListener: '/run/agent.sock' });
    expect((noFlag as InitStepError).step).toBe('plan');
  });
});

describeIf('sealed copy (CVE-2019-5736)', () => {
  test('vkinit runs from a sealed memfd: its exe cannot be written, the host binary stays as it is', async () => {
    const vkinit = resolveVkinit();
    const before = sha256(vkinit);
    const fifo = path.join(fs.mkdtempSync(path.join(base, 'fifo-')), 'exec.fifo');
    const h = await launchInit(plan({ wait: false, execFifo: fifo, ...sh('sleep 0.2') }), { stdio: ['ignore', 'ignore', 'ignore'] });
    pids.add(h.pid);
    // The container init still is vkinit, waiting for `start`.
    expect(fs.readFileSync(`/proc/${h.pid}/comm`, 'utf8')).toBe('vkinit\n');
    expect(fs.readlinkSync(`/proc/${h.pid}/exe`)).toBe('/memfd:vkinit (deleted)');
    const held = fs.openSync(`/proc/${h.pid}/exe`, 'r');
    try {
      // While it runs the kernel refuses writers; once it exec'd, the seals do.
      expect(() => fs.openSync(`/proc/self/fd/${held}`, 'a')).toThrow(/ETXTBSY/);
      const fh = await fs.promises.open(fifo, 'r');
      await fh.readFile();
      await fh.close();
      for (let i = 0; i < 100 && fs.readlinkSync(`/proc/${h.pid}/exe`).includes('vkinit'); i++) await new Promise((r) => setTimeout(r, 10));
      expect(fs.readlinkSync(`/proc/${h.pid}/exe`)).not.toContain('vkinit');
      const w = fs.openSync(`/proc/self/fd/${held}`, 'a');
      try {
        expect(() => fs.writeSync(w, 'PWNED')).toThrow(/EPERM/);
      } finally {
        fs.closeSync(w);
      }
      const t = fs.openSync(`/proc/self/fd/${held}`, 'r+');
      try {
        expect(() => fs.ftruncateSync(t, 0)).toThrow(/EPERM/);
      } finally {
        fs.closeSync(t);
      }
    } finally {
      fs.closeSync(held);
    }
    expect(await waitGone(h.pid)).toBe(true);
    expect(sha256(vkinit)).toBe(before);
  });

  test('the parent that stays (wait mode) runs from the copy too', async () => {
    const outPath = tmpFile('out');
    const out = fs.openSync(outPath, 'w');
    const h = await launchInit(plan({ args: ['sleep', '1000'] }), { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    pids.add(h.pid);
    try {
      const parent = Number(fs.readFileSync(`/proc/${h.pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      expect(fs.readFileSync(`/proc/${parent}/comm`, 'utf8')).toBe('vkinit\n');
      expect(fs.readlinkSync(`/proc/${parent}/exe`)).toBe('/memfd:vkinit (deleted)');
      // argv is kept across the re-exec
      expect(fs.readFileSync(`/proc/${parent}/cmdline`, 'utf8').split('\0')[0]).toBe(resolveVkinit());
    } finally {
      process.kill(h.pid, 'SIGKILL');
    }
  });
});
