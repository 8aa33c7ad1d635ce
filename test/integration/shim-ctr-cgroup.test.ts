// ShimCgroup: a group daemon joins the cgroup named by [shim] shim_cgroup (the file ctr's
// --runtime-config-path names, as CRI's ConfigPath would) — in every hierarchy that has it —
// and a cgroup that does not exist fails the container's start with an error naming it,
// leaving nothing behind (containerd's runc shim behaves the same).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupMounts, describeIf, requireFixtures, requirement, requireRoot, type ContainerdVersion } from '../harness';
import { LAUNCHER, removeContainer, shimSuiteVersions, startShimEnv, waitFor, type ShimEnv } from './helpers/shim-env';

const VERSIONS: ContainerdVersion[] = shimSuiteVersions();
const ok = requireRoot() && requireFixtures() && requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (run \`make all\`)`);

jest.setTimeout(120_000);

describeIf(ok).each(VERSIONS)('containerd %s: ShimCgroup', (version) => {
  let env: ShimEnv;
  const name = `/vkt-shimcg-${process.pid}`;
  const dirs = (): string[] => cgroupMounts().map((m) => path.join(m, name));

  beforeAll(async () => {
    env = await startShimEnv(version);
  }, 180_000);

  afterAll(async () => {
    for (const d of dirs()) if (fs.existsSync(d)) fs.rmdirSync(d);
    if (env) expect(await env.stop()).toEqual([]);
  }, 120_000);

  const configFile = (cgroup: string): string => {
    const f = path.join(env.dir, `shim-${path.basename(cgroup)}.toml`);
    fs.writeFileSync(f, `[shim]\nshim_cgroup = "${cgroup}"\n`);
    return f;
  };

  it('the daemon of a new group joins shim_cgroup in every hierarchy', async () => {
    for (const d of dirs()) {
      fs.mkdirSync(d);
      // A new v1 cpuset cgroup has no CPUs or memory nodes: nothing can join it until set.
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        const parent = path.join(path.dirname(d), f);
        if (fs.existsSync(parent)) fs.writeFileSync(path.join(d, f), fs.readFileSync(parent, 'utf8').trim());
      }
    }
    const id = 'shimcg';
    await env.cd.ctrOk(env.runArgs(id, ['sleep', '600'], ['-d', '--runtime-config-path', configFile(name)]));
    let pid: number | undefined;
    await waitFor('the daemon', async () => (pid = env.shimPidOf(id)) !== undefined, 10_000);
    for (const d of dirs()) expect({ d, procs: fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n') }).toEqual({ d, procs: expect.arrayContaining([String(pid)]) });
    await removeContainer(env.cd, id);
    // The daemon exits after its last container: the cgroups empty and can go.
    await waitFor('the daemon to leave', async () => dirs().every((d) => fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').trim() === ''), 15_000);
  });

  it('a shim_cgroup that does not exist fails the start, naming it; nothing is left', async () => {
    const missing = `/vkt-shimcg-missing-${process.pid}`;
    const r = await env.cd.ctr(env.runArgs('shimcg-missing', ['true'], ['--rm', '--runtime-config-path', configFile(missing)]));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`shim_cgroup ${missing}: no such cgroup on this host (create it first)`);
    await removeContainer(env.cd, 'shimcg-missing');
    let left: string[] = [];
    await waitFor('no leftovers', async () => (left = await env.leftovers()).length === 0, 15_000, 100).catch(() => undefined);
    expect(left).toEqual([]);
  });
});
