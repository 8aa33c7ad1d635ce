// containerd-shim-vkernel-v2 against containerd-shim-runc-v2, side by side on the same private
// containerd (1.6, then 1.7), in one run on this host:
//
//   1. `ctr run --rm IMAGE id /bin/true`, io.containerd.vkernel.v2 and io.containerd.runc.v2
//      alternately (so drift hits both), with our shim manager up (the warm path);
//   2. the same with the manager stopped: every start/delete of ours is a cold Node process
//      (what VKERNEL_SHIM_MANAGER=off gives; the launcher falls back when nobody answers);
//   3. memory: our idle (warm) daemon, then one shim of each kind serving 1..5 containers of
//      one group (annotation io.containerd.runc.v2.group, which both honour);
//   4. where the milliseconds of a warm run go (bench/shim-phases.ts: traced runs on an env
//      of their own).
//
// Prints tables like bench/hyperfine.ts's; never asserts a time. Target: vkernel warm ÷ runc
// ≤ 0.85 on the median.
//
//   node dist/bench/shim.js                 # both versions
//   BENCH_RUNS=30 BENCH_SHIM_VERSIONS=1.6 node dist/bench/shim.js
//
// From bench/run.ts: `await runShimBench()` (async: it drives containerd).
import * as os from 'node:os';
import type { ContainerdVersion } from '../test/harness/containerd';
import {
  groupMemory,
  RUNC_RUNTIME,
  RUNTIME,
  sampleMemory,
  startShimEnv,
  stopManager,
  waitFor,
  type GroupMemoryRow,
  type MemorySample,
  type ShimEnv,
} from '../test/integration/helpers/shim-env';
import { printTable, type Timing } from './hyperfine';
import { printShimPhases, shimPhases } from './shim-phases';

export interface ShimBenchOptions {
  versions?: ContainerdVersion[];
  /** Timed runs per runtime and phase (default env BENCH_RUNS or 20). */
  runs?: number;
  /** Untimed runs per runtime before each phase (default env BENCH_WARMUP or 3). */
  warmup?: number;
  /** Containers per group in the memory table (default 5). */
  groupSize?: number;
}

export interface ShimBenchResult {
  version: string;
  timings: Timing[];
  idle: MemorySample;
  vkernelGroup: GroupMemoryRow[];
  runcGroup: GroupMemoryRow[];
}

function stats(name: string, ms: number[]): Timing {
  const sorted = [...ms].sort((a, b) => a - b);
  const n = sorted.length;
  const median = n % 2 ? sorted[n >> 1] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  const mean = sorted.reduce((s, x) => s + x, 0) / n;
  const stddev = Math.sqrt(sorted.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, n - 1));
  return { name, medianMs: median, meanMs: mean, stddevMs: stddev, runs: n };
}

let seq = 0;

/** One `ctr run --rm … /bin/true`, wall time in ms (ctr's own start included, the same for both). */
async function timedRun(env: ShimEnv, runtime: string): Promise<number> {
  const id = `bench-${runtime === RUNTIME ? 'vk' : 'runc'}-${seq++}`;
  const t0 = process.hrtime.bigint();
  const r = await env.cd.ctr(env.runArgs(id, ['/bin/true'], ['--rm'], runtime), { timeoutMs: 60_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.code !== 0) throw new Error(`ctr run --rm --runtime ${runtime} exited ${r.code}: ${r.stderr}\n${env.cd.logTail(30)}`);
  return ms;
}

/** Alternates the runtimes `runs` times; returns the times per runtime. */
async function alternate(env: ShimEnv, runtimes: string[], runs: number, warmup: number): Promise<Map<string, number[]>> {
  for (let i = 0; i < warmup; i++) for (const rt of runtimes) await timedRun(env, rt);
  const out = new Map<string, number[]>(runtimes.map((rt) => [rt, []]));
  for (let i = 0; i < runs; i++) {
    // Alternate which goes first too, so neither always follows the other's cleanup.
    const order = i % 2 ? [...runtimes].reverse() : runtimes;
    for (const rt of order) out.get(rt)!.push(await timedRun(env, rt));
  }
  return out;
}

const mib = (kib: number): string => (kib / 1024).toFixed(1);

function printMemory(version: string, idle: MemorySample, vk: GroupMemoryRow[], runc: GroupMemoryRow[]): void {
  console.log(`\n## containerd ${version}: shim memory (MiB, median of 5 samples; PSS splits pages shared with other processes)`);
  console.log(`${'containers in group'.padEnd(22)}${'vkernel RSS'.padStart(12)}${'vkernel PSS'.padStart(12)}${'runc RSS'.padStart(10)}${'runc PSS'.padStart(10)}${'vk/runc RSS'.padStart(13)}${'vk helpers RSS'.padStart(16)}`);
  console.log(`${'idle (warm daemon)'.padEnd(22)}${mib(idle.rssKiB).padStart(12)}${mib(idle.pssKiB).padStart(12)}${'-'.padStart(10)}${'-'.padStart(10)}${'-'.padStart(13)}${'-'.padStart(16)}`);
  for (let i = 0; i < Math.min(vk.length, runc.length); i++) {
    const v = vk[i];
    const r = runc[i];
    console.log(
      `${String(v.containers).padEnd(22)}${mib(v.rssKiB).padStart(12)}${mib(v.pssKiB).padStart(12)}${mib(r.rssKiB).padStart(10)}${mib(r.pssKiB).padStart(10)}` +
        `${(v.rssKiB / r.rssKiB).toFixed(2).padStart(13)}${mib(v.helpersRssKiB).padStart(16)}`,
    );
  }
  const n = vk.length;
  if (n > 1) {
    const per = (rows: GroupMemoryRow[]): string => ((rows[n - 1].rssKiB - rows[0].rssKiB) / (n - 1) / 1024).toFixed(2);
    console.log(`per extra container in the group (1 → ${n}): vkernel ${per(vk)} MiB, runc ${per(runc)} MiB RSS`);
    console.log(`without grouping, runc runs one shim per container: ${n} containers ≈ ${mib(runc[0].rssKiB * n)} MiB of runc shims`);
  }
  console.log('("vk helpers" = the runtime\'s per-container helper processes, e.g. vkfs, not part of the shim)');
}

export async function runShimBench(opts: ShimBenchOptions = {}): Promise<ShimBenchResult[]> {
  const versions =
    opts.versions ?? ((process.env.BENCH_SHIM_VERSIONS?.split(',').filter(Boolean) as ContainerdVersion[] | undefined) || ['1.6', '1.7']);
  const runs = opts.runs ?? Number(process.env.BENCH_RUNS ?? 20);
  const warmup = opts.warmup ?? Number(process.env.BENCH_WARMUP ?? 3);
  const groupSize = opts.groupSize ?? 5;
  console.log(`# containerd shim benchmarks — ${os.hostname()}, ${os.cpus().length} CPUs, node ${process.version}, ${runs} runs per runtime and phase`);
  const results: ShimBenchResult[] = [];
  for (const version of versions) {
    const env = await startShimEnv(version);
    try {
      const v = env.cd.version;
      await waitFor('a warm daemon', () => env.warmDaemons().length > 0, 30_000);
      const idle = await sampleMemory(env.warmDaemons()[0]);

      const warm = await alternate(env, [RUNTIME, RUNC_RUNTIME], runs, warmup);
      const vkernelGroup = await groupMemory(env, RUNTIME, 'bench-vk-grp', groupSize);
      const runcGroup = await groupMemory(env, RUNC_RUNTIME, 'bench-runc-grp', groupSize);

      // Cold: nobody answers on the manager socket any more (autostart is off in this env).
      await stopManager(env.manager!);
      const cold = await alternate(env, [RUNTIME, RUNC_RUNTIME], runs, warmup);

      const timings = [
        stats('vkernel.v2 warm (manager)', warm.get(RUNTIME)!),
        stats('runc.v2 (warm phase)', warm.get(RUNC_RUNTIME)!),
        stats('vkernel.v2 cold (no manager)', cold.get(RUNTIME)!),
        stats('runc.v2 (cold phase)', cold.get(RUNC_RUNTIME)!),
      ];
      printTable(`containerd ${v}: ctr run --rm IMAGE id /bin/true (alternating runtimes)`, timings.slice(0, 2), 'runc.v2 (warm phase)');
      printTable(`containerd ${v}: the same without the shim manager (cold path)`, timings.slice(2), 'runc.v2 (cold phase)');
      const ratio = timings[0].medianMs / timings[1].medianMs;
      console.log(`warm vkernel ÷ runc (median): ${ratio.toFixed(2)} (target ≤ 0.85: ${ratio <= 0.85 ? 'met' : 'NOT met'}); ` +
        `cold ÷ warm vkernel: ${(timings[2].medianMs / timings[0].medianMs).toFixed(2)}`);
      printMemory(v, idle, vkernelGroup, runcGroup);
      results.push({ version: v, timings, idle, vkernelGroup, runcGroup });
    } finally {
      const left = await env.stop();
      if (left.length) console.log(`(left behind and cleaned up: ${left.join('; ')})`);
    }
    // Traced runs on an env of their own, so the trace's writes stay out of the timed phase.
    printShimPhases(await shimPhases(version, Math.min(runs, 10)));
  }
  return results;
}

if (require.main === module) {
  runShimBench().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
