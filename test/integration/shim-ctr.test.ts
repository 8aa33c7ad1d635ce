// containerd-shim-vkernel-v2 driven by a real containerd (1.6 and 1.7) through `ctr`, the
// way a user would: the fixture image imported with `ctr images import`, containers run with
// `--runtime io.containerd.vkernel.v2`. Each version gets its own private containerd and its
// own private shim manager (helpers/shim-env.ts); afterwards nothing of either may remain.
//
// Covered here: run/echo, exit codes (normal, signal, exec), `run -t` and `exec -t` on a
// pseudo-terminal, exec with stdin, kill -s, pause/resume, metrics, ps, the order of every
// /tasks/* event, grouping (one daemon, two containers; deleting one leaves the other), and
// the systemd-style cgroupsPath CRI sends. Restart/crash cases: shim-ctr-recovery.test.ts;
// long runs and memory: shim-ctr-soak.test.ts, shim-ctr-memory.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, requireFixtures, requirement, requireRoot, requireBinary, type ContainerdVersion } from '../harness';
import {
  alive,
  cgroupDirsOf,
  cgroupMountPoints,
  deletedExitCode,
  EventRecorder,
  LAUNCHER,
  mountsUnder,
  processesWith,
  removeContainer,
  runOnPty,
  sleep,
  startShimEnv,
  tasks,
  taskStatus,
  waitFor,
  waitStatus,
  type ShimEnv,
  shimSuiteVersions,
} from './helpers/shim-env';

const VERSIONS: ContainerdVersion[] = shimSuiteVersions();

const ok =
  requireRoot() &&
  requireFixtures() &&
  requireBinary('script') &&
  requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (run \`make all\`)`);

jest.setTimeout(120_000);

/** Polls until the env shows no leftovers (daemons exit shortly after their last Delete). */
async function expectClean(env: ShimEnv, timeoutMs = 15_000): Promise<void> {
  let left: string[] = [];
  await waitFor('no leftovers', async () => (left = await env.leftovers()).length === 0, timeoutMs, 100).catch(() => undefined);
  expect(left).toEqual([]);
}

describeIf(ok).each(VERSIONS)('containerd %s: ctr with --runtime io.containerd.vkernel.v2', (version) => {
  let env: ShimEnv;
  const made = new Set<string>();
  /** A container id unique in this file; removed in afterEach if a test left it. */
  const cid = (name: string): string => {
    made.add(name);
    return name;
  };

  beforeAll(async () => {
    // A far longer reuse grace than the default 1 s: on a loaded CI machine a `ctr run --rm`
    // and the daemon's close can take seconds, and the pool would then boot a spare and refuse
    // the daemon the reuse test follows (correct, but not what that test is about). Nothing
    // here waits for a refill by that timer: a start with none waiting boots one at once.
    env = await startShimEnv(version, { managerEnv: { VKERNEL_SHIM_REUSE_GRACE_MS: '30000' } });
  }, 180_000);

  afterEach(async () => {
    if (!env) return;
    const live = await tasks(env.cd).catch(() => new Map());
    const containers = (await env.cd.ctr(['containers', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
    for (const id of new Set([...live.keys(), ...containers])) await removeContainer(env.cd, id);
    made.clear();
  });

  afterAll(async () => {
    if (!env) return;
    expect(await env.stop()).toEqual([]);
  }, 120_000);

  it('ctr run --rm … echo hello prints hello and leaves nothing behind', async () => {
    const r = await env.cd.ctr(env.runArgs(cid('hello'), ['echo', 'hello'], ['--rm']));
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: 'hello\n', stderr: '' });
    expect((await env.cd.ctrOk(['containers', 'ls', '-q'])).stdout.trim()).toBe('');
    await expectClean(env);
  });

  it('propagates exit codes: exit 7, a SIGKILLed init (137), a signal the init traps', async () => {
    const seven = await env.cd.ctr(env.runArgs(cid('exit7'), ['sh', '-c', 'echo out; echo err >&2; exit 7'], ['--rm']));
    expect({ code: seven.code, stdout: seven.stdout, stderr: seven.stderr }).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });

    // Foreground `ctr run`, killed from outside: ctr exits with the task's status, 128 + 9.
    const fg = env.cd.ctr(env.runArgs(cid('fg-kill'), ['sleep', '600'], ['--rm']));
    await waitStatus(env.cd, 'fg-kill', 'RUNNING');
    await env.cd.ctrOk(['task', 'kill', '-s', 'SIGKILL', 'fg-kill']);
    expect((await fg).code).toBe(137);

    // Detached, then `ctr task kill -s USR1`: the init (pid 1, so only handled signals act) exits 42.
    // It marks when its trap is set: a USR1 before that would be ignored and the loop run on.
    await env.cd.ctrOk(env.runArgs(cid('trap'), ['sh', '-c', 'trap "exit 42" USR1; touch /tmp/trapped; while :; do sleep 0.05; done'], ['-d']));
    await waitStatus(env.cd, 'trap', 'RUNNING');
    await env.cd.ctrOk(['task', 'exec', '--exec-id', 'trapped', 'trap', 'sh', '-c', 'until [ -e /tmp/trapped ]; do sleep 0.05; done']);
    await env.cd.ctrOk(['task', 'kill', '-s', 'SIGUSR1', 'trap']);
    await waitStatus(env.cd, 'trap', 'STOPPED');
    expect(deletedExitCode(await env.cd.ctr(['task', 'delete', 'trap']))).toBe(42);
    await env.cd.ctrOk(['container', 'delete', 'trap']);

    // Detached + SIGKILL: the status containerd keeps is 137 too.
    await env.cd.ctrOk(env.runArgs(cid('k9'), ['sleep', '600'], ['-d']));
    await env.cd.ctrOk(['task', 'kill', '-s', '9', 'k9']);
    await waitStatus(env.cd, 'k9', 'STOPPED');
    expect(deletedExitCode(await env.cd.ctr(['task', 'delete', 'k9']))).toBe(137);
    await env.cd.ctrOk(['container', 'delete', 'k9']);
    await expectClean(env);
  });

  it('ctr run -t: a terminal of the right size, typed input, the exit code', async () => {
    const base = [env.cd.ctrBinary, '-a', env.cd.address, '-n', env.cd.namespace];
    // `ctr run -t` sends ResizePty only after Start: the size shows once that has arrived
    // (up to 5 s on a loaded host; the last size read is printed either way).
    const sized = await runOnPty(
      [...base, ...env.runArgs(cid('tty1'), ['sh', '-c', 'tty; i=0; while [ $i -lt 50 ]; do s=$(stty size); [ "$s" = "30 100" ] && break; i=$((i+1)); sleep 0.1; done; echo "size=$s"; exit 3'], ['-t', '--rm'])],
      { cols: 100, rows: 30 },
    );
    expect(sized.output).toMatch(/^\/dev\/(pts\/\d+|console)\r*$/m);
    expect(sized.output).toContain('size=30 100');
    expect(sized.code).toBe(3);

    // Interactive: a shell reads what is typed and its exit status comes back through ctr.
    const typed = await runOnPty([...base, ...env.runArgs(cid('tty2'), ['sh'], ['-t', '--rm'])], {
      input: 'echo typed-$((40+2)); exit 5\r',
      ready: /# /,
    });
    expect(typed.output).toContain('typed-42');
    expect(typed.code).toBe(5);
    await expectClean(env);
  });

  it('ctr task exec, with and without --tty, with stdin, and its exit codes', async () => {
    await env.cd.ctrOk(env.runArgs(cid('ex'), ['sleep', '600'], ['-d']));
    const echo = await env.cd.ctr(['task', 'exec', '--exec-id', 'e-echo', 'ex', 'echo', 'exec-ok']);
    expect({ code: echo.code, stdout: echo.stdout }).toEqual({ code: 0, stdout: 'exec-ok\n' });
    // Short-lived execs, many in a row: each status must be the real one (not 255, "unknown").
    for (let i = 0; i < 8; i++) {
      const r = await env.cd.ctr(['task', 'exec', '--exec-id', `e-code${i}`, 'ex', 'sh', '-c', `exit ${i + 1}`]);
      expect(r.code).toBe(i + 1);
    }
    // stdin: ctr sends CloseIO when its own stdin ends, which can overtake Start.
    const cat = await env.cd.ctr(['task', 'exec', '--exec-id', 'e-cat', 'ex', 'sh', '-c', 'cat; echo eof'], { input: 'line1\nline2\n', timeoutMs: 15_000 });
    expect({ code: cat.code, stdout: cat.stdout }).toEqual({ code: 0, stdout: 'line1\nline2\neof\n' });
    // An exec killed by a signal: it is not pid 1, so SIGTERM's default action applies: 128 + 15.
    const sleeper = env.cd.ctr(['task', 'exec', '--exec-id', 'e-sleep', 'ex', 'sleep', '600']);
    await waitFor('the exec to show in ps', async () => /ExecID:e-sleep|exec_id:"e-sleep"/.test((await env.cd.ctr(['task', 'ps', 'ex'])).stdout));
    await env.cd.ctrOk(['task', 'kill', '--exec-id', 'e-sleep', '-s', 'SIGTERM', 'ex']);
    expect((await sleeper).code).toBe(143);

    const base = [env.cd.ctrBinary, '-a', env.cd.address, '-n', env.cd.namespace];
    const tty = await runOnPty([...base, 'task', 'exec', '-t', '--exec-id', 'e-tty', 'ex', 'sh', '-c', 'tty; exit 4']);
    expect(tty.output).toMatch(/^\/dev\/pts\/\d+\r*$/m);
    expect(tty.code).toBe(4);
    const shell = await runOnPty([...base, 'task', 'exec', '-t', '--exec-id', 'e-sh', 'ex', 'sh'], { input: 'echo in-$((40+3)); exit 6\r', ready: /# / });
    expect(shell.output).toContain('in-43');
    expect(shell.code).toBe(6);
    expect(await taskStatus(env.cd, 'ex')).toBe('RUNNING');
  });

  it('kill -s, pause/resume (PAUSED), metrics, ps', async () => {
    await env.cd.ctrOk(env.runArgs(cid('pr'), ['sh', '-c', 'sleep 600 & wait'], ['-d']));
    await waitStatus(env.cd, 'pr', 'RUNNING');
    const initPid = (await tasks(env.cd)).get('pr')!.pid;
    expect(alive(initPid)).toBe(true);

    // ps: the init and its child, then an exec shows with its exec id.
    await waitFor('the sleep child to show in ps', async () => (await env.cd.ctrOk(['task', 'ps', 'pr'])).stdout.trim().split('\n').length >= 3);
    const exec = env.cd.ctr(['task', 'exec', '--exec-id', 'e-ps', 'pr', 'sleep', '600']);
    let ps = '';
    await waitFor('the exec in ps', async () => /ExecID:e-ps|exec_id:"e-ps"/.test((ps = (await env.cd.ctrOk(['task', 'ps', 'pr'])).stdout)));
    const pids = ps.trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(pids).toContain(initPid);
    expect(pids.length).toBeGreaterThanOrEqual(3);

    // metrics decode (cgroup v1 on this host).
    const json = JSON.parse((await env.cd.ctrOk(['task', 'metrics', '--format', 'json', 'pr'])).stdout) as {
      pids?: { current?: number };
      memory?: { usage?: { usage?: number } };
      cpu?: { usage?: { total?: number } };
    };
    expect(json.pids?.current).toBeGreaterThanOrEqual(3);
    expect(json.memory?.usage?.usage).toBeGreaterThan(0);
    expect(json.cpu?.usage?.total).toBeGreaterThan(0);
    const table = await env.cd.ctrOk(['task', 'metrics', 'pr']);
    expect(table.stdout).toMatch(/memory\.usage_in_bytes\s+\d+/);

    // pause / resume
    await env.cd.ctrOk(['task', 'pause', 'pr']);
    expect(await taskStatus(env.cd, 'pr')).toBe('PAUSED');
    const frozen = cgroupDirsOf(initPid).find((d) => d.includes('/freezer/'));
    if (frozen) expect(fs.readFileSync(path.join(frozen, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
    expect(fs.readFileSync(`/proc/${initPid}/stat`, 'utf8')).toMatch(/\) [DS] /); // frozen tasks sleep
    await env.cd.ctrOk(['task', 'resume', 'pr']);
    expect(await taskStatus(env.cd, 'pr')).toBe('RUNNING');
    if (frozen) expect(fs.readFileSync(path.join(frozen, 'freezer.state'), 'utf8').trim()).toBe('THAWED');

    // kill -s: SIGKILL the exec, then the init.
    await env.cd.ctrOk(['task', 'kill', '--exec-id', 'e-ps', '-s', 'SIGKILL', 'pr']);
    expect((await exec).code).toBe(137);
    await env.cd.ctrOk(['task', 'kill', '-s', 'SIGKILL', 'pr']);
    await waitStatus(env.cd, 'pr', 'STOPPED');
    expect(alive(initPid)).toBe(false);
    expect(deletedExitCode(await env.cd.ctr(['task', 'delete', 'pr']))).toBe(137);
    await env.cd.ctrOk(['container', 'delete', 'pr']);
    await expectClean(env);
  });

  it('ctr events shows every /tasks/* topic in order: create, start, exec-added, exec-started, exit, paused, resumed, exit, delete', async () => {
    const rec = await EventRecorder.start(env.cd);
    try {
      await env.cd.ctrOk(env.runArgs(cid('ev'), ['sleep', '600'], ['-d']));
      const initPid = (await tasks(env.cd)).get('ev')!.pid;
      const ex = await env.cd.ctr(['task', 'exec', '--exec-id', 'ev-exec', 'ev', 'sh', '-c', 'exit 3']);
      expect(ex.code).toBe(3);
      await env.cd.ctrOk(['task', 'pause', 'ev']);
      await env.cd.ctrOk(['task', 'resume', 'ev']);
      await env.cd.ctrOk(['task', 'kill', '-s', 'SIGKILL', 'ev']);
      await waitStatus(env.cd, 'ev', 'STOPPED');
      await env.cd.ctr(['task', 'delete', 'ev']);
      await rec.waitFor('/tasks/delete of ev', (r) => r.topics('ev').includes('/tasks/delete'));
      await sleep(300); // nothing may come after the delete
      expect(rec.topics('ev')).toEqual([
        '/tasks/create',
        '/tasks/start',
        '/tasks/exec-added',
        '/tasks/exec-started',
        '/tasks/exit',
        '/tasks/paused',
        '/tasks/resumed',
        '/tasks/exit',
        '/tasks/delete',
      ]);
      const [create, start, added, started, execExit, , , exit, del] = rec.taskEvents('ev').map((e) => e.event);
      expect(create).toMatchObject({ container_id: 'ev', pid: initPid });
      expect(create.bundle).toBe(env.bundle('ev'));
      expect(start).toMatchObject({ container_id: 'ev', pid: initPid });
      expect(added).toMatchObject({ container_id: 'ev', exec_id: 'ev-exec' });
      expect(started).toMatchObject({ container_id: 'ev', exec_id: 'ev-exec' });
      expect(execExit).toMatchObject({ container_id: 'ev', id: 'ev-exec', exit_status: 3, pid: started.pid });
      expect(exit).toMatchObject({ container_id: 'ev', id: 'ev', pid: initPid, exit_status: 137 });
      expect(del).toMatchObject({ container_id: 'ev', pid: initPid, exit_status: 137 });
      expect(rec.events.filter((e) => e.topic === '/tasks/oom')).toEqual([]);
    } finally {
      rec.stop();
    }
    await env.cd.ctrOk(['container', 'delete', 'ev']);
    await expectClean(env);
  });

  it('groups two containers (annotation io.containerd.runc.v2.group) in one daemon; deleting one leaves the other running', async () => {
    const group = ['--annotation', 'io.containerd.runc.v2.group=pair'];
    await env.cd.ctrOk(env.runArgs(cid('g1'), ['sleep', '600'], ['-d', ...group]));
    await env.cd.ctrOk(env.runArgs(cid('g2'), ['sleep', '600'], ['-d', ...group]));
    const a1 = env.address('g1');
    expect(env.address('g2')).toBe(a1);
    const daemon = env.daemonOf(a1);
    expect(daemon).toBeDefined();
    expect(env.daemonOf(env.address('g2'))).toBe(daemon);
    // Nobody else serves either of them: exactly one live daemon holds the group socket.
    expect(env.daemons().filter((p) => env.daemonOf(a1) === p)).toEqual([daemon]);
    const t = await tasks(env.cd);
    expect([t.get('g1')?.status, t.get('g2')?.status]).toEqual(['RUNNING', 'RUNNING']);
    // Both containers' inits are children of that one daemon (it is their subreaper).
    for (const id of ['g1', 'g2']) {
      const ppid = Number(fs.readFileSync(`/proc/${t.get(id)!.pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
      expect(ppid).toBe(daemon);
    }

    await removeContainer(env.cd, 'g1');
    expect(await taskStatus(env.cd, 'g1')).toBeUndefined();
    expect(await taskStatus(env.cd, 'g2')).toBe('RUNNING');
    expect(alive(daemon!)).toBe(true);
    expect(env.daemonOf(a1)).toBe(daemon);
    expect((await env.cd.ctr(['task', 'exec', '--exec-id', 'still', 'g2', 'echo', 'still-here'])).stdout).toBe('still-here\n');
    expect(alive(t.get('g2')!.pid)).toBe(true);

    // The last one out: the daemon stops serving the group (it exits, or goes back to the
    // manager's pool) and removes its socket.
    await removeContainer(env.cd, 'g2');
    await waitFor('the group daemon to leave the group', () => !env.daemons().includes(daemon!), 15_000);
    const sock = a1.replace(/^unix:\/\//, '');
    expect([sock, `${sock}.protocol`].filter((f) => fs.existsSync(f))).toEqual([]);
    await expectClean(env);
  });

  it('a daemon whose group ended goes back to the pool and serves the next new group; a full pool lets it go', async () => {
    await waitFor('a warm daemon', () => env.warmDaemons().length === 1, 30_000);
    const [first] = env.warmDaemons();
    const adoptions = (pid: number): number => [...env.managerLog().matchAll(new RegExp(`warm daemon ${pid} adopted`, 'g'))].length;
    const before = adoptions(first);
    expect((await env.cd.ctrOk(env.runArgs(cid('reuse1'), ['echo', 'one'], ['--rm']))).stdout).toBe('one\n');
    expect(adoptions(first)).toBe(before + 1);
    // Back in the pool within the grace period, so no new spare was booted meanwhile.
    const backInPool = (what: string): Promise<void> =>
      waitFor(what, () => env.warmDaemons().includes(first), 20_000).catch((err: Error) => {
        const about = env.managerLog().split('\n').filter((l) => l.includes(`daemon ${first} `) || l.includes('pool:'));
        throw new Error(`${err.message}\nmanager log on the pool (tail):\n${about.slice(-12).join('\n')}`);
      });
    await backInPool('the daemon back in the pool');
    expect(env.managerLog()).toMatch(new RegExp(`warm daemon ${first} ready \\(back, reused \\d+ times\\)`));
    expect(env.warmDaemons()).toEqual([first]);
    expect((await env.cd.ctrOk(env.runArgs(cid('reuse2'), ['echo', 'two'], ['--rm']))).stdout).toBe('two\n');
    expect(adoptions(first)).toBe(before + 2);
    await backInPool('the daemon back in the pool again');

    // Two new groups at once: the second gets a new daemon. When both groups end, the pool
    // (size 1) takes one back and the other daemon exits.
    await env.cd.ctrOk(env.runArgs(cid('reuse3'), ['sleep', '600'], ['-d']));
    await env.cd.ctrOk(env.runArgs(cid('reuse4'), ['sleep', '600'], ['-d']));
    const served = [env.daemonOf(env.address('reuse3'))!, env.daemonOf(env.address('reuse4'))!];
    expect(served[0]).toBe(first);
    expect(served[1]).not.toBe(first);
    await removeContainer(env.cd, 'reuse3');
    await removeContainer(env.cd, 'reuse4');
    await waitFor('both daemons out of their groups', () => env.daemons().length === 0, 15_000);
    await waitFor('one daemon waiting, the rest gone', () => env.warmDaemons().length === 1 && served.filter(alive).length <= 1, 15_000);
    await expectClean(env);
  });

  it('handles the systemd-style cgroupsPath CRI sends (slice:prefix:name): /system.slice/vkt-<name>.scope', async () => {
    const name = `${env.namespace}-sd`;
    const scope = `/system.slice/vkt-${name}.scope`;
    const before = new Map(cgroupMountPoints().map((m) => [m, fs.existsSync(path.join(m, 'system.slice'))]));
    await env.cd.ctrOk(env.runArgs(cid('sd'), ['sleep', '600'], ['-d', '--cgroup', `system.slice:vkt:${name}`]));
    const initPid = (await tasks(env.cd)).get('sd')!.pid;
    const dirs = cgroupDirsOf(initPid);
    expect(dirs.length).toBeGreaterThan(0);
    for (const d of dirs) {
      expect(d.endsWith(scope)).toBe(true);
      expect(fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(initPid));
    }
    for (const c of ['memory', 'pids', 'freezer']) expect(fs.existsSync(`/sys/fs/cgroup/${c}${scope}`)).toBe(true);
    const inside = await env.cd.ctrOk(['task', 'exec', '--exec-id', 'cg', 'sd', 'cat', '/proc/self/cgroup']);
    expect(inside.stdout).toMatch(/memory:\/(system\.slice\/vkt-.*\.scope)?\n/);

    await removeContainer(env.cd, 'sd');
    for (const d of dirs) expect(fs.existsSync(d)).toBe(false);
    // No slice left behind that was not there before (this host has no systemd to own it).
    for (const [m, had] of before) if (!had) expect(fs.existsSync(path.join(m, 'system.slice'))).toBe(false);
    await expectClean(env);
  });

  it('leaves no runtime state, mounts or helper processes after all of the above', async () => {
    await expectClean(env);
    // Only the root's own caches (dot entries, e.g. .vkernel/) may stay while the env lives.
    expect(fs.existsSync(env.stateRoot) ? fs.readdirSync(env.stateRoot).filter((e) => !e.startsWith('.')) : []).toEqual([]);
    expect(mountsUnder([env.cd.dir, env.stateRoot])).toEqual([]);
    expect(processesWith(env.stateRoot)).toEqual([]);
  });
});
