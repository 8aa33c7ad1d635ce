// The vkernel syscall layer on the real kernel: seccomp user notification for sysinfo and
// sched_getaffinity, served by build/vkagent. Containers run with the vkernel CLI (the
// agent is started by create and stopped by delete) and with runc pointed at
// `vkernel agent` through linux.seccomp.listenerPath.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPath } from '../../runtime/paths';
import { agentPids } from '../../runtime/vkernel/syscalls';
import {
  describeIf,
  hasBinary,
  hasCgroupV1,
  makeBundle,
  parseKeyValues,
  requireFixtures,
  requireRoot,
  requireRuntime,
  requirement,
  runBundle,
  runRuntime,
  runRuntimeOk,
  runtimeRoot,
  vkernelCli,
  vktest,
  type Bundle,
} from '../harness';
import { agentDir, alive, LIMITS, MiB, sleep, until } from './helpers/vkernel-syscalls';
import { pgrep } from './helpers/vkernel';
import type { LinuxResources, Spec } from '../../runtime/spec/types';

const VKAGENT = buildPath('vkagent');
const ok =
  requireRoot() &&
  requireFixtures() &&
  requireRuntime('vkernel') &&
  requirement(fs.existsSync(VKAGENT), `${VKAGENT} is missing (make native)`) &&
  requirement(process.arch === 'x64', 'the notify filter is x86_64 only') &&
  requirement(hasCgroupV1('memory') && hasCgroupV1('cpuset'), 'cgroup v1 memory and cpuset controllers');


function withLimits(resources: LinuxResources, annotations: Record<string, string> = {}) {
  return (s: Spec) => {
    s.linux!.resources = { ...s.linux!.resources, ...resources };
    s.annotations = { ...(s.annotations ?? {}), ...annotations };
  };
}

/** A wait on the agent trio (started, taken over, gone): seconds on a loaded host. */
const AGENT_WAIT = 20_000;

const bundles: Bundle[] = [];
afterAll(async () => {
  for (const b of bundles) await b.cleanup().catch(() => undefined);
});

async function bundle(args: string[], mutate: (s: Spec) => void): Promise<Bundle> {
  const b = await makeBundle({ args, mutate });
  bundles.push(b);
  return b;
}

async function run(args: string[], mutate: (s: Spec) => void): Promise<string> {
  const b = await bundle(args, mutate);
  const r = await runBundle(b);
  if (r.code !== 0) throw new Error(`container failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describeIf(ok)('vkernel syscalls (vkernel CLI)', () => {
  it('sysinfo shows 256 MiB and the container task count; nproc is 1 under quota 50000/100000', async () => {
    const out = await run(['/bin/sh', '-c', '/vktest sysinfo; echo vknproc=$(/vktest nproc); echo bbnproc=$(nproc)'], withLimits(LIMITS));
    const kv = parseKeyValues(out);
    expect(kv.totalram).toBe(String(256 * MiB));
    expect(Number(kv.freeram)).toBeLessThanOrEqual(256 * MiB);
    expect(kv.procs).toBe('2'); // sh and vktest
    expect(Number(kv.uptime)).toBeLessThan(10);
    expect(kv.vknproc).toBe('1');
    expect(kv.bbnproc).toBe('1');
  });

  it('a cpuset of one CPU alone gives nproc 1 (static and busybox)', async () => {
    const out = await run(['/bin/sh', '-c', 'echo a=$(/vktest nproc) b=$(nproc)'], withLimits({ cpu: { cpus: '1', mems: '0' } }));
    expect(out.trim()).toBe('a=1 b=1');
  });

  it('follows update: quota 200000 and 512 MiB show up in the next calls', async () => {
    const b = await bundle(
      ['/bin/sh', '-c', 'while :; do /vktest sysinfo > /tmp/s.new; echo nproc=$(/vktest nproc) >> /tmp/s.new; mv /tmp/s.new /tmp/s; sleep 0.1; done'],
      withLimits(LIMITS),
    );
    const file = path.join(b.rootfs, 'tmp', 's');
    const read = () => {
      try {
        return parseKeyValues(fs.readFileSync(file, 'utf8'));
      } catch {
        return {};
      }
    };
    await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
    try {
      expect(await until(() => read().totalram === String(256 * MiB) && read().nproc === '1')).toBe(true);
      await runRuntimeOk(['update', '--memory', String(512 * MiB), '--cpu-quota', '200000', '--cpu-period', '100000', b.id]);
      const host = os.cpus().length;
      expect(await until(() => read().totalram === String(512 * MiB) && read().nproc === String(Math.min(2, host)))).toBe(true);
    } finally {
      await runRuntime(['delete', '--force', b.id]);
    }
    expect(agentPids(agentDir(b.id))).toEqual([]);
  });

  it.each([['io.vkernel.view', 'off'], ['io.vkernel.mode', 'off']])('%s=%s shows the host values', async (key, value) => {
    const out = await run(['/bin/sh', '-c', '/vktest sysinfo; echo vknproc=$(/vktest nproc)'], withLimits(LIMITS, { [key]: value }));
    const kv = parseKeyValues(out);
    expect(Number(kv.totalram)).toBe(os.totalmem());
    expect(kv.vknproc).toBe(String(os.cpus().length));
  });

  // keeper, worker, standby (agentPids with all three alive): the ones to SIGKILL together
  it.each([
    ['the agent worker', (p: number[]) => [p[1]]],
    ['the agent keeper and worker together', (p: number[]) => [p[0], p[1]]],
  ])('killing %s repeatedly while the container loops over sysinfo: no errors', async (_what, victims) => {
    const b = await bundle(['/bin/sh', '-c', 'sleep 0.3; /vktest loop sysinfo 300000'], withLimits(LIMITS));
    const child = spawnRun(b);
    let kills = 0;
    const seen = new Set<number>();
    const done = new Promise<{ code: number; out: string }>((resolve) => {
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.on('exit', (code) => resolve({ code: code ?? -1, out }));
    });
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      const pids = agentPids(agentDir(b.id));
      const worker = pids[1];
      if (pids.length === 3 && !seen.has(worker)) {
        seen.add(worker);
        for (const p of victims(pids)) process.kill(p, 'SIGKILL');
        kills++;
      }
      await sleep(40);
    }
    const r = await done;
    expect(r.code).toBe(0);
    const kv = parseKeyValues(r.out);
    expect(kv.failures).toBe('0');
    expect(kv.calls).toBe('300000');
    expect(kills).toBeGreaterThan(3);
  }, 180_000); // 300000 calls under the 0.5-CPU quota, a respawn per kill: several times slower on a loaded host

  it('killing the agent keeper mid-loop: the standby takes over, the worker keeps serving, no errors, nothing left after delete', async () => {
    const b = await bundle(['/bin/sh', '-c', 'sleep 0.3; /vktest loop sysinfo 100000'], withLimits(LIMITS));
    const child = spawnRun(b);
    const done = new Promise<{ code: number; out: string }>((resolve) => {
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.on('exit', (code) => resolve({ code: code ?? -1, out }));
    });
    let pids: number[] = [];
    // from the spawn: a Node boot, then create with the view and the agent
    expect(await until(() => (pids = agentPids(agentDir(b.id))).length === 3, AGENT_WAIT)).toBe(true); // keeper, worker, standby
    await sleep(500);
    process.kill(pids[0], 'SIGKILL');
    // the standby is the keeper now, with the same worker and a standby of its own
    let now: number[] = [];
    expect(await until(() => (now = agentPids(agentDir(b.id))).length === 3 && now[0] === pids[2] && now[1] === pids[1], AGENT_WAIT)).toBe(true);
    pids.push(now[2]);
    const r = await done;
    expect(r.code).toBe(0);
    const kv = parseKeyValues(r.out);
    expect(kv.failures).toBe('0');
    expect(kv.totalram).toBe(String(256 * MiB));
    expect(await until(() => pids.every((p) => !alive(p)), AGENT_WAIT)).toBe(true);
  }, 3 * AGENT_WAIT + 60_000); // the three waits and the 100000-call loop

  it('exec\'d processes get the view too; no agent process or socket is left after delete', async () => {
    const b = await bundle(['/vktest', 'sleep', '30'], withLimits(LIMITS));
    await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
    const ex = parseKeyValues((await runRuntimeOk(['exec', b.id, '/vktest', 'sysinfo'])).stdout);
    expect(ex.totalram).toBe(String(256 * MiB));
    expect(ex.procs).toBe('2'); // the init and the exec'd vktest
    expect((await runRuntimeOk(['exec', b.id, '/vktest', 'nproc'])).stdout.trim()).toBe('1');
    const dir = agentDir(b.id);
    const pids = agentPids(dir);
    expect(pids.length).toBe(3); // keeper, worker, standby
    const socket = fs.readFileSync(path.join(dir, 'vkagent.socket'), 'utf8');
    expect(fs.existsSync(socket)).toBe(true);
    await runRuntimeOk(['delete', '--force', b.id]);
    expect(await until(() => pids.every((p) => !alive(p)))).toBe(true);
    expect(fs.existsSync(socket)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('an agent whose socket was removed (state dir gone) exits by itself', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkagent-orphan-'));
    const socket = path.join(dir, 's.sock');
    const a = spawn(VKAGENT, ['serve', '--socket', socket, '--pidfile', path.join(dir, 'pid')], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => a.once('exit', (code) => r(code)));
    expect(await until(() => fs.existsSync(path.join(dir, 'pid')))).toBe(true);
    const [, worker, standby] = fs.readFileSync(path.join(dir, 'pid'), 'utf8').trim().split(' ').map(Number);
    expect(alive(standby)).toBe(true);
    fs.rmSync(socket);
    expect(await Promise.race([exited, sleep(8000).then(() => 'timeout')])).toBe(0);
    expect(await until(() => !alive(worker) && !alive(standby))).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 15_000);

  it.each(['the parent alone', 'the parent and the keeper at once'])('--die-with-parent, SIGKILL of %s: keeper, worker and standby all stop', async (how) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkagent-parent-'));
    const socket = path.join(dir, 's.sock');
    const pidfile = path.join(dir, 'pid');
    // the parent only waits (a shim daemon's stand-in)
    const parent = spawn('/bin/sh', ['-c', '"$0" serve --socket "$1" --pidfile "$2" --die-with-parent & wait', VKAGENT, socket, pidfile], { stdio: 'ignore' });
    try {
      expect(await until(() => fs.existsSync(pidfile))).toBe(true);
      const pids = fs.readFileSync(pidfile, 'utf8').trim().split(' ').map(Number);
      expect(pids).toHaveLength(3);
      expect(pids.every(alive)).toBe(true);
      process.kill(parent.pid!, 'SIGKILL');
      if (how.includes('keeper')) process.kill(pids[0], 'SIGKILL'); // the standby takes over, then sees the parent gone
      expect(await until(() => pids.every((p) => !alive(p)) && !fs.existsSync(socket), 8000)).toBe(true);
      await sleep(300);
      expect(pgrep(`vkagent serve --socket ${socket}`)).toEqual([]);
    } finally {
      parent.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 15_000);

  it('a profile with its own listener keeps it; auto falls back to ptrace (vkernel-fallbacks.test.ts)', async () => {
    // the listener socket is never served: NOTIFY only for a syscall nobody calls
    const out = await run(['/bin/sh', '-c', '/vktest sysinfo'], (s) => {
      withLimits(LIMITS)(s);
      s.linux!.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        listenerPath: startDummyAgent(),
        syscalls: [{ names: ['acct'], action: 'SCMP_ACT_NOTIFY' }],
      };
    });
    expect(parseKeyValues(out).totalram).toBe(String(256 * MiB));
  });

  it('io.vkernel.mode=notify under a profile with its own listener: no syscall view, host values', async () => {
    const out = await run(['/bin/sh', '-c', '/vktest sysinfo'], (s) => {
      withLimits(LIMITS, { 'io.vkernel.mode': 'notify' })(s);
      s.linux!.seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        listenerPath: startDummyAgent(),
        syscalls: [{ names: ['acct'], action: 'SCMP_ACT_NOTIFY' }],
      };
    });
    expect(Number(parseKeyValues(out).totalram)).toBe(os.totalmem());
  });
});


function spawnRun(b: Bundle): ChildProcess {
  return spawn(process.execPath, [vkernelCli(), '--root', runtimeRoot(), 'run', '--bundle', b.dir, b.id], { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** A socket that accepts and keeps listener fds (the container's own seccomp agent). */
const dummies: { close(): void }[] = [];
function startDummyAgent(): string {
  const net = require('node:net') as typeof import('node:net');
  const p = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vkdummy-')), 'a.sock');
  const srv = net.createServer((c) => c.on('data', () => undefined));
  srv.listen(p);
  dummies.push({ close: () => srv.close() });
  return p;
}
afterAll(() => dummies.forEach((d) => d.close()));

// crun 1.8 refuses this host's hybrid cgroup layout ("cgroups in hybrid mode not
// supported"), so only runc is exercised here; the agent side is runtime-neutral.
const others = (['runc'] as const).filter((r) => hasBinary(r));
describeIf(ok && requirement(others.length > 0, 'neither runc nor crun is installed'))('vkernel syscalls for runc / crun (vkernel agent + listenerPath)', () => {
  it.each(others)('%s: shows the same view through SCMP_ACT_NOTIFY and listenerPath', async (runtime) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkagent-runc-'));
    const socket = path.join(dir, 'agent.sock');
    const agent = spawn(process.execPath, [vkernelCli(), 'agent', '--socket', socket, '--pidfile', path.join(dir, 'pid')], { stdio: 'inherit' });
    try {
      expect(await until(() => fs.existsSync(socket))).toBe(true);
      const b = await makeBundle({
        runtime,
        args: ['/bin/sh', '-c', '/vktest sysinfo; echo vknproc=$(/vktest nproc); echo bbnproc=$(nproc)'],
        mutate: (s) => {
          withLimits(LIMITS)(s);
          s.linux!.seccomp = {
            defaultAction: 'SCMP_ACT_ALLOW',
            listenerPath: socket,
            listenerMetadata: 'rule=min',
            syscalls: [{ names: ['sysinfo', 'sched_getaffinity'], action: 'SCMP_ACT_NOTIFY' }],
          };
        },
      });
      bundles.push(b);
      const r = await runBundle(b, { runtime });
      if (r.code !== 0) throw new Error(`${runtime} failed (${r.code}): ${r.stderr}`);
      const kv = parseKeyValues(r.stdout);
      expect(kv.totalram).toBe(String(256 * MiB));
      expect(kv.procs).toBe('2');
      expect(kv.vknproc).toBe('1');
      expect(kv.bbnproc).toBe('1');
    } finally {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
    }
    expect(fs.existsSync(socket)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});
