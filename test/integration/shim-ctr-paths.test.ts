// The two ways containerd-shim-vkernel-v2 answers containerd, against real containerd 1.6
// and 1.7 via ctr:
//   cold  VKERNEL_SHIM_MANAGER=off: every start/delete is a Node process of its own
//         (dist/cmd/containerd-shim-vkernel-v2.js), started by the launcher;
//   warm  a private manager answers every start/delete itself. Proven by taking the cold
//         path away (VKERNEL_NODE=/bin/false in containerd's environment): any invocation
//         the launcher had to hand to the cold path would fail the container.
import * as fs from 'node:fs';
import { describeIf, requireFixtures, requirement, requireRoot, type ContainerdVersion } from '../harness';
import { LAUNCHER, removeContainer, startShimEnv, tasks, waitFor, type ShimEnv, shimSuiteVersions } from './helpers/shim-env';

const VERSIONS: ContainerdVersion[] = shimSuiteVersions();

const ok = requireRoot() && requireFixtures() && requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (run \`make all\`)`);

jest.setTimeout(120_000);

async function expectClean(env: ShimEnv, timeoutMs = 15_000): Promise<void> {
  let left: string[] = [];
  await waitFor('no leftovers', async () => (left = await env.leftovers()).length === 0, timeoutMs, 100).catch(() => undefined);
  expect(left).toEqual([]);
}

/** A few containers through whichever path the env uses: --rm runs, a group of two, exec, delete. */
async function exercise(env: ShimEnv): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const r = await env.cd.ctr(env.runArgs(`once${i}`, ['echo', `hello ${i}`], ['--rm']));
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `hello ${i}\n`, stderr: '' });
  }
  const group = ['--annotation', 'io.containerd.runc.v2.group=paths'];
  await env.cd.ctrOk(env.runArgs('p1', ['sleep', '600'], ['-d', ...group]));
  await env.cd.ctrOk(env.runArgs('p2', ['sleep', '600'], ['-d', ...group]));
  expect(env.address('p2')).toBe(env.address('p1'));
  const ex = await env.cd.ctr(['task', 'exec', '--exec-id', 'x', 'p2', 'sh', '-c', 'echo in-p2; exit 3']);
  expect({ code: ex.code, stdout: ex.stdout }).toEqual({ code: 3, stdout: 'in-p2\n' });
  await removeContainer(env.cd, 'p1');
  await removeContainer(env.cd, 'p2');
  expect((await tasks(env.cd)).size).toBe(0);
}

describeIf(ok).each(VERSIONS)('containerd %s: launcher paths', (version) => {
  let env: ShimEnv | undefined;

  afterEach(async () => {
    const e = env;
    env = undefined;
    if (e) expect(await e.stop()).toEqual([]);
  }, 120_000);

  it('cold path (VKERNEL_SHIM_MANAGER=off): runs, groups, execs and cleans up; no manager is started', async () => {
    env = await startShimEnv(version, { manager: 'off' });
    await exercise(env);
    await expectClean(env);
    // VKERNEL_SHIM_MANAGER=off also means no autostart: nothing listens on the private socket.
    expect(fs.existsSync(env.managerSocket)).toBe(false);
  });

  it('warm path: the manager answers every start and delete (the cold path is unavailable and never needed)', async () => {
    env = await startShimEnv(version, { env: { VKERNEL_NODE: '/bin/false' } });
    await exercise(env);
    await expectClean(env);
    const log = env.managerLog();
    // 3 runs + 2 grouped containers: 5 starts and 5 deletes, each answered with exit 0.
    expect(log.match(/ start: exit 0 in /g)?.length).toBe(5);
    expect(log.match(/ delete: exit 0 in /g)?.length).toBe(5);
    expect(log).not.toContain('request failed');
  });

  it('VKERNEL_SHIM_REUSE=0: a daemon exits after its group instead of going back to the pool', async () => {
    env = await startShimEnv(version, { managerEnv: { VKERNEL_SHIM_REUSE: '0' } });
    const e = env;
    await waitFor('a warm daemon', () => e.warmDaemons().length === 1, 30_000);
    const [first] = e.warmDaemons();
    await exercise(e);
    await expectClean(e);
    await waitFor('the first daemon to exit', () => !fs.existsSync(`/proc/${first}`), 15_000);
    expect(e.managerLog()).not.toMatch(/ready \(back, reused/);
    // The pool refilled with a new daemon instead.
    await waitFor('a new warm daemon', () => e.warmDaemons().some((p) => p !== first), 30_000);
  });
});
