// Memory of the grouped shim daemon under real containerd 1.6 and 1.7: the idle (warm,
// waiting) daemon, then one daemon serving 1..5 containers of one group. Numbers are
// reported, not asserted (bench/shim.ts compares them with containerd-shim-runc-v2); the
// assertions are that one daemon serves the whole group and that nothing is left.
import * as fs from 'node:fs';
import { describeIf, requireFixtures, requirement, requireRoot, type ContainerdVersion } from '../harness';
import { groupMemory, LAUNCHER, RUNTIME, sampleMemory, startShimEnv, waitFor, type ShimEnv, shimSuiteVersions } from './helpers/shim-env';

const VERSIONS: ContainerdVersion[] = shimSuiteVersions();

const ok = requireRoot() && requireFixtures() && requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (run \`make all\`)`);

const mib = (kib: number): string => (kib / 1024).toFixed(1).padStart(7);

describeIf(ok).each(VERSIONS)('containerd %s: grouped shim memory', (version) => {
  let env: ShimEnv;

  beforeAll(async () => {
    env = await startShimEnv(version);
  }, 180_000);

  afterAll(async () => {
    if (env) expect(await env.stop()).toEqual([]);
  }, 120_000);

  it('reports idle RSS of one daemon and RSS with 1..5 containers in one group', async () => {
    await waitFor('a warm daemon', () => env.warmDaemons().length > 0, 30_000);
    const idle = await sampleMemory(env.warmDaemons()[0]);
    const rows = await groupMemory(env, RUNTIME, 'memgrp', 5);
    expect(new Set(rows.map((r) => r.pid)).size).toBe(1);

    const lines = [
      `[shim-ctr-memory ${env.cd.version}] containerd-shim-vkernel-v2 daemon memory (MiB; median of 5 samples)`,
      `  containers      RSS      PSS  Δ RSS/container  runtime helpers RSS`,
      `  idle (warm)${mib(idle.rssKiB)}  ${mib(idle.pssKiB)}`,
      ...rows.map((r, i) => {
        const prev = i === 0 ? idle : rows[i - 1];
        return `  ${String(r.containers).padEnd(10)}${mib(r.rssKiB)}  ${mib(r.pssKiB)}  ${mib(r.rssKiB - prev.rssKiB).padStart(15)}  ${mib(r.helpersRssKiB).padStart(19)}`;
      }),
      `  per extra container (1 → 5): ${((rows[4].rssKiB - rows[0].rssKiB) / 4 / 1024).toFixed(2)} MiB RSS`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    for (const r of rows) {
      expect(r.rssKiB).toBeGreaterThan(0);
      expect(r.pssKiB).toBeGreaterThan(0);
    }
    let left: string[] = [];
    await waitFor('no leftovers', async () => (left = await env.leftovers()).length === 0, 15_000, 100).catch(() => undefined);
    expect(left).toEqual([]);
  }, 180_000);
});
