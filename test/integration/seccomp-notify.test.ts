// linux.seccomp.listenerPath end to end: a container whose profile makes mkdir, mkdirat
// and rmdir notify, and a seccomp agent (seccomp-agent.c, built here with gcc) that gets
// the listener fd from the runtime and answers: mkdir succeeds without doing anything,
// rmdir fails with EXDEV. Runs against the runtime under test (RUNTIME=runc checks the
// test itself against runc 1.1.5).
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Spec } from '../../runtime/spec/types';
import {
  describeIf,
  hasBinary,
  makeBundle,
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
} from '../harness';

const ok =
  requireRoot() && requireFixtures() && requireRuntime() && requirement(hasBinary('gcc'), 'gcc is not installed (needed to build the seccomp agent)');
const isVkernel = runtimeName() === 'vkernel';

/** The script the workload runs: what the agent did shows in its output. */
const MKDIR_SCRIPT = 'mkdir /tmp/x && echo mkdir-ok; [ -d /tmp/x ] && echo exists || echo absent; rmdir /tmp; echo rmdir=$?\n';

let tmp: string;
let agentBin: string;

interface AgentMessage {
  ociVersion: string;
  fds: string[];
  pid: number;
  metadata?: string;
  state: { ociVersion: string; id: string; status: string; pid: number; bundle: string };
}

class Agent {
  readonly sock: string;
  readonly log: string;
  private readonly proc: ChildProcess;

  constructor(name: string) {
    this.sock = path.join(tmp, `${name}.sock`);
    this.log = path.join(tmp, `${name}.log`);
    this.proc = spawn(agentBin, [this.sock, this.log, '120'], { stdio: ['ignore', 'ignore', 'inherit'] });
  }

  async ready(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (this.lines().includes('ready')) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('seccomp agent did not start');
  }

  lines(): string[] {
    try {
      return fs.readFileSync(this.log, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  /** The messages of connections that have ended, waiting up to `ms` for `n` of them. */
  async messages(n: number, ms = 5000): Promise<AgentMessage[]> {
    const end = Date.now() + ms;
    for (;;) {
      const msgs = this.lines()
        .filter((l) => l.startsWith('msg '))
        .map((l) => JSON.parse(l.slice(4)) as AgentMessage);
      if (msgs.length >= n || Date.now() > end) return msgs;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  notifications(): { nr: number; pid: number }[] {
    return this.lines()
      .filter((l) => l.startsWith('notify '))
      .map((l) => {
        const [, nr, pid] = l.split(' ');
        return { nr: Number(nr), pid: Number(pid) };
      });
  }

  stop(): void {
    this.proc.kill('SIGTERM');
  }
}

function notifyProfile(agent: Agent, spec: Spec): void {
  spec.linux!.seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    listenerPath: agent.sock,
    listenerMetadata: 'vk-test-metadata',
    syscalls: [{ names: ['mkdir', 'mkdirat', 'rmdir'], action: 'SCMP_ACT_NOTIFY' }],
  };
}

async function bundleFor(agent: Agent, args: string[], nnp = true): Promise<Bundle> {
  const b = await makeBundle({
    args,
    mutate: (s) => {
      notifyProfile(agent, s);
      s.process!.noNewPrivileges = nnp;
    },
  });
  fs.writeFileSync(path.join(b.rootfs, 'mk.sh'), MKDIR_SCRIPT);
  return b;
}

function expectWellFormed(m: AgentMessage, b: Bundle, status: string): void {
  expect(m.fds).toEqual(['seccompFd']);
  expect(m.metadata).toBe('vk-test-metadata');
  expect(m.ociVersion).toMatch(/^1\.\d+\.\d+/);
  expect(m.state).toMatchObject({ id: b.id, status, bundle: b.dir });
  expect(m.pid).toBeGreaterThan(0);
}

describeIf(ok)(`seccomp notify (${runtimeName()})`, () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-seccomp-notify-'));
    agentBin = path.join(tmp, 'seccomp-agent');
    execFileSync('gcc', ['-O2', '-Wall', '-D_GNU_SOURCE', '-o', agentBin, path.join(repoRoot(), 'test/integration/seccomp-agent.c')]);
  });
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const nnp of [true, false]) {
    it(`the agent answers the container's mkdir and rmdir (noNewPrivileges ${nnp})`, () =>
      withLeakCheck(async () => {
        const agent = new Agent(`run-${nnp}`);
        try {
          await agent.ready();
          const b = await bundleFor(agent, ['sh', '/mk.sh'], nnp);
          const r = await runBundle(b);
          expect(r.stdout).toBe('mkdir-ok\nabsent\nrmdir=1\n'); // faked success: nothing was made
          expect(r.stderr).toMatch(/rmdir: '\/tmp': Invalid cross-device link/);
          expect(r.code).toBe(0);
          expect(fs.existsSync(path.join(b.rootfs, 'tmp/x'))).toBe(false);

          const [msg] = await agent.messages(1);
          expectWellFormed(msg, b, 'creating'); // runc tells the agent during create
          expect(msg.pid).toBe(msg.state.pid);
          const nrs = agent.notifications().map((n) => n.nr);
          expect(nrs).toContain(84); // rmdir
          expect(nrs.some((nr) => nr === 83 || nr === 258)).toBe(true); // mkdir or mkdirat
        } finally {
          agent.stop();
        }
      }));
  }

  it('each exec gets a listener of its own, with its pid and the running state', () =>
    withLeakCheck(async () => {
      const agent = new Agent('exec');
      try {
        await agent.ready();
        const b = await bundleFor(agent, ['/vktest', 'sleep', '60']);
        await runRuntimeOk(['create', '--bundle', b.dir, b.id]);
        await runRuntimeOk(['start', b.id]);
        const pidFile = path.join(tmp, 'exec.pid');
        const r = await runRuntime(['exec', '--pid-file', pidFile, b.id, 'sh', '/mk.sh']);
        expect(r.stdout).toBe('mkdir-ok\nabsent\nrmdir=1\n');
        expect(r.code).toBe(0);
        const msgs = await agent.messages(2);
        expect(msgs).toHaveLength(2);
        expectWellFormed(msgs[1], b, 'running');
        expect(msgs[1].pid).toBe(Number(fs.readFileSync(pidFile, 'utf8')));
        expect(msgs[1].state.pid).toBe(msgs[0].pid); // the container's init
        expect(msgs[1].pid).not.toBe(msgs[0].pid);
        await runRuntimeOk(['delete', '--force', b.id]);
      } finally {
        agent.stop();
      }
    }));

  it('create fails, leaving nothing behind, when no agent listens', () =>
    withLeakCheck(async () => {
      const agent = new Agent('absent');
      await agent.ready();
      agent.stop();
      for (let i = 0; i < 100 && fs.existsSync(agent.sock); i++) await new Promise((r) => setTimeout(r, 20));
      fs.rmSync(agent.sock, { force: true });
      const b = await bundleFor(agent, ['sh', '/mk.sh']);
      const r = await runRuntime(['create', '--bundle', b.dir, b.id]);
      expect(r.code).not.toBe(0);
      if (isVkernel) expect(r.stderr).toMatch(/seccomp.*absent\.sock.*No such file or directory/);
      expect((await runRuntime(['state', b.id])).code).not.toBe(0);
    }));

  // runc 1.1.5 does not check this (its init would hang handing over the fd): vkernel only.
  if (isVkernel) {
    it('a profile that notifies on sendmsg is refused (the runtime needs it to hand over the fd)', () =>
      withLeakCheck(async () => {
        const agent = new Agent('sendmsg');
        try {
          await agent.ready();
          const b = await makeBundle({
            mutate: (s) => {
              notifyProfile(agent, s);
              s.linux!.seccomp!.syscalls = [{ names: ['sendmsg'], action: 'SCMP_ACT_NOTIFY' }];
            },
          });
          const r = await runBundle(b, { timeoutMs: 15_000 });
          expect(r.code).not.toBe(0);
          expect(r.stderr).toMatch(/SCMP_ACT_NOTIFY cannot be used for .*sendmsg/);
        } finally {
          agent.stop();
        }
      }));
  }
});
