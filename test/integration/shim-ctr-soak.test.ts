// 200 sequential `ctr run --rm IMAGE soak-N /bin/true` with io.containerd.vkernel.v2 against
// real containerd 1.6 and 1.7 (one private containerd + private shim manager each). Before
// (after a warm-up) and after, it counts what a leak would grow: containerd's fds, the shim
// manager's fds, mounts under the instance and the runtime root, cgroups of the namespace,
// runtime state, group sockets of the run ids, stdio FIFO dirs, and processes (shim daemons,
// helpers). Only this file runs such a long loop. VKT_SOAK_CYCLES overrides the count.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeIf, requireFixtures, requirement, requireRoot, TestContainerd, type ContainerdVersion } from '../harness';
import {
  alive,
  cgroupMountPoints,
  fdTargets,
  LAUNCHER,
  mountsUnder,
  processesWith,
  sleep,
  startShimEnv,
  waitFor,
  type ShimEnv,
  shimSuiteVersions,
} from './helpers/shim-env';

const VERSIONS: ContainerdVersion[] = shimSuiteVersions();
const CYCLES = Number(process.env.VKT_SOAK_CYCLES ?? 200);
const WARMUP = 5;

const ok = requireRoot() && requireFixtures() && requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (run \`make all\`)`);

interface Snapshot {
  containerdFds: string[];
  managerFds: string[];
  mounts: string[];
  cgroups: string[];
  state: string[];
  sockets: string[];
  fifoDirs: string[];
  processes: string[];
}

/** All dirs below `dir` (not itself). */
function subdirs(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      out.push(path.join(d, e.name));
      walk(path.join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

/** FIFO dirs of /run/containerd/fifo holding stdio of one of `ids` (<id>-stdout etc.). */
function fifoDirsOf(ids: Set<string>): string[] {
  const root = '/run/containerd/fifo';
  const out: string[] = [];
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync(root);
  } catch {
    return out;
  }
  for (const d of dirs) {
    try {
      if (fs.readdirSync(path.join(root, d)).some((f) => ids.has(f.replace(/-std(in|out|err)$/, '')))) out.push(path.join(root, d));
    } catch {
      // gone
    }
  }
  return out;
}

function snapshot(env: ShimEnv, ids: Set<string>): Snapshot {
  const cd = env.cd;
  const procs = new Set<number>([...env.daemons(), ...processesWith(env.namespace), ...processesWith(env.stateRoot)]);
  procs.delete(cd.pid ?? -1);
  return {
    containerdFds: fdTargets(cd.pid!),
    managerFds: fdTargets(env.managerPid!),
    mounts: mountsUnder([cd.dir, env.stateRoot]),
    cgroups: cgroupMountPoints().flatMap((m) => subdirs(path.join(m, env.namespace))),
    state: fs.existsSync(env.stateRoot) ? fs.readdirSync(env.stateRoot).filter((e) => !e.startsWith('.')) : [],
    // The group socket of each id, and the `.protocol` file our start writes next to it.
    sockets: [...ids]
      .map((id) => TestContainerd.shimSocketPath(cd.address, env.namespace, id))
      .flatMap((s) => [s, `${s}.protocol`])
      .filter((s) => fs.existsSync(s)),
    fifoDirs: fifoDirsOf(ids),
    processes: [...procs].filter(alive).map((p) => `${p} ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim()}`),
  };
}

/** An fd list without the numbers, for a readable diff ("socket:[…]" kinds kept). */
function kinds(fds: string[]): string[] {
  return fds.map((f) => f.replace(/^\d+ -> /, '').replace(/:\[\d+\]$/, '')).sort();
}

describeIf(ok).each(VERSIONS)('containerd %s: repeated ctr run --rm', (version) => {
  let env: ShimEnv | undefined;

  afterAll(async () => {
    if (env) expect(await env.stop()).toEqual([]);
  }, 120_000);

  it(
    `${CYCLES} sequential ctr run --rm … /bin/true leave no fds, mounts, cgroups, sockets, state or processes`,
    async () => {
      env = await startShimEnv(version);
      const cd = env.cd;
      const ids = new Set<string>();
      const runOnce = async (id: string): Promise<number> => {
        ids.add(id);
        const t0 = Date.now();
        const r = await cd.ctr(env!.runArgs(id, ['/bin/true'], ['--rm']), { timeoutMs: 60_000 });
        if (r.code !== 0) throw new Error(`ctr run --rm ${id} exited ${r.code}: ${r.stdout}${r.stderr}\ncontainerd log:\n${cd.logTail(40)}`);
        return Date.now() - t0;
      };
      // Settled: no adopted daemon left (each exits after its container's Delete + Shutdown).
      // Settled also means no helper (pod agent, view) of an ended group is left.
      const settle = async (): Promise<void> => {
        await waitFor('adopted daemons to exit', () => env!.daemons().length === 0, 20_000, 100);
        await waitFor('helpers of ended groups to exit', () => processesWith(env!.stateRoot).filter(alive).length === 0, 10_000, 100);
        await sleep(500);
      };

      // Ids unique to this env: FIFO dirs and sockets are host-wide, other runs must not match.
      const tag = env.namespace.replace(/^vkt-/, '');
      for (let i = 0; i < WARMUP; i++) await runOnce(`warm-${tag}-${i}`);
      await settle();
      const before = snapshot(env, ids);

      const times: number[] = [];
      const t0 = Date.now();
      for (let i = 0; i < CYCLES; i++) times.push(await runOnce(`soak-${tag}-${i}`));
      const totalMs = Date.now() - t0;
      await settle();

      // fds may take a moment to close after the last Delete: give them a few seconds.
      let after = snapshot(env, ids);
      for (let i = 0; i < 20 && (after.containerdFds.length > before.containerdFds.length || after.managerFds.length > before.managerFds.length); i++) {
        await sleep(250);
        after = snapshot(env, ids);
      }
      times.sort((a, b) => a - b);
      process.stdout.write(
        `[shim-ctr-soak ${cd.version}] ${CYCLES} cycles in ${(totalMs / 1000).toFixed(1)} s: median ${times[times.length >> 1]} ms, ` +
          `p95 ${times[Math.floor(times.length * 0.95)]} ms, max ${times[times.length - 1]} ms; ` +
          `containerd fds ${before.containerdFds.length} -> ${after.containerdFds.length}, ` +
          `manager fds ${before.managerFds.length} -> ${after.managerFds.length}\n`,
      );

      expect({
        containerdFds: after.containerdFds.length <= before.containerdFds.length ? 'no growth' : kinds(after.containerdFds),
        managerFds: after.managerFds.length <= before.managerFds.length ? 'no growth' : kinds(after.managerFds),
        mounts: after.mounts,
        cgroups: after.cgroups,
        state: after.state,
        sockets: after.sockets,
        fifoDirs: after.fifoDirs,
        processes: after.processes,
      }).toEqual({
        containerdFds: 'no growth',
        managerFds: 'no growth',
        mounts: before.mounts,
        cgroups: before.cgroups,
        state: before.state,
        sockets: [],
        fifoDirs: [],
        processes: before.processes,
      });
      expect(await env.leftovers()).toEqual([]);
    },
    Math.max(600_000, CYCLES * 5_000),
  );
});
