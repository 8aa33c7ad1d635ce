// Runs hyperfine and returns per-command medians. Comparisons are only meaningful within one run.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Timing {
  name: string;
  medianMs: number;
  meanMs: number;
  stddevMs: number;
  runs: number;
}

export interface BenchCommand {
  name: string;
  command: string;
  /** Runs before each timed run (not timed), e.g. deleting a leftover container. */
  prepare?: string;
}

/** `wrap` lets a group run inside another context, e.g. `unshare -m` for crun. */
export function hyperfine(cmds: BenchCommand[], opts: { runs: number; warmup: number; wrap?: string[] }): Timing[] {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vkbench-')), 'h.json');
  const args = ['--runs', String(opts.runs), '--warmup', String(opts.warmup), '--export-json', out, '--style', 'none'];
  for (const c of cmds) {
    if (c.prepare) args.push('--prepare', c.prepare);
    args.push('--command-name', c.name, c.command);
  }
  const [cmd, ...pre] = opts.wrap ? [...opts.wrap, 'hyperfine', ...args] : ['hyperfine', ...args];
  execFileSync(cmd, pre, { stdio: ['ignore', 'ignore', 'inherit'] });
  const data = JSON.parse(fs.readFileSync(out, 'utf8')) as {
    results: { command: string; median: number; mean: number; stddev: number; times: number[] }[];
  };
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return data.results.map((r) => ({
    name: r.command,
    medianMs: r.median * 1000,
    meanMs: r.mean * 1000,
    stddevMs: (r.stddev ?? 0) * 1000,
    runs: r.times.length,
  }));
}

export function printTable(title: string, rows: Timing[], baseline: string): void {
  const base = rows.find((r) => r.name === baseline);
  console.log(`\n## ${title}`);
  console.log(`${'command'.padEnd(28)}${'median ms'.padStart(11)}${'mean ms'.padStart(10)}${'± ms'.padStart(8)}${'runs'.padStart(6)}  ratio vs ${baseline}`);
  for (const r of rows) {
    const ratio = base ? (r.medianMs / base.medianMs).toFixed(2) : '-';
    console.log(
      `${r.name.padEnd(28)}${r.medianMs.toFixed(1).padStart(11)}${r.meanMs.toFixed(1).padStart(10)}${r.stddevMs.toFixed(1).padStart(8)}${String(r.runs).padStart(6)}  ${ratio}`,
    );
  }
}
