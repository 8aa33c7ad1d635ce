// Where the milliseconds of `vkernel run` go: VKERNEL_TRACE=1 runs, median per phase.
import { spawnSync } from 'node:child_process';

export interface Phase {
  name: string;
  medianMs: number;
}

export function phaseBreakdown(cli: string, bundle: string, work: string, runs: number): Phase[] {
  const samples = new Map<string, number[]>();
  const [node, script] = cli.split(' ');
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(node, [script, '--root', `${work}/trace`, 'run', '-b', bundle, 'vktrace'], {
      env: { ...process.env, VKERNEL_TRACE: '1' },
      encoding: 'utf8',
    });
    for (const line of r.stderr.split('\n')) {
      const m = /^vkernel-trace (.+) ([\d.]+) \+([\d.]+)$/.exec(line);
      if (!m) continue;
      const list = samples.get(m[1]) ?? [];
      list.push(Number(m[3]));
      samples.set(m[1], list);
    }
  }
  return [...samples.entries()].map(([name, v]) => ({ name, medianMs: median(v) }));
}

export function printPhases(phases: Phase[]): void {
  console.log('\n## Where `vkernel run /bin/true` spends its time (median per phase, VKERNEL_TRACE=1)');
  let total = 0;
  for (const p of phases) {
    total += p.medianMs;
    console.log(`${p.name.padEnd(34)}${p.medianMs.toFixed(1).padStart(8)} ms`);
  }
  console.log(`${'sum of medians'.padEnd(34)}${total.toFixed(1).padStart(8)} ms  (the first phase includes Node's own start)`);
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
