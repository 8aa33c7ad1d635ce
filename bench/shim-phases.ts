// Where the milliseconds of a warm `ctr run --rm IMAGE id /bin/true` go, through our shim:
// a private containerd and manager whose daemons write VKERNEL_TRACE lines (wall clock and
// phase) to a file; each run's lines are cut out by the run's own start and end time and
// turned into segments. Medians over the runs; never asserts a time.
//
// The segments (in order, summing to the whole run):
//   ctr + containerd → hand-off   ctr starts, containerd prepares the task, execs the
//                                  launcher, the manager hands a daemon the group
//   → Create arrives              `start` answers, containerd connects and sends Create
//   Create                        the daemon's Create (its phases listed below it)
//   → Start done                  containerd sends Start; the exec FIFO is released
//   workload until reaped         /bin/true runs and exits; the reaper has its status
//   → Delete arrives              Wait, exit event, State: containerd and ctr
//   Delete                        the daemon's Delete
//   Shutdown … ctr exits          Shutdown, the launcher's `delete` action, containerd's
//                                  own cleanup, ctr's exit
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ContainerdVersion } from '../test/harness/containerd';
import { startShimEnv, waitFor } from '../test/integration/helpers/shim-env';

interface Line {
  at: number; // wall clock, ms
  text: string; // "vkernel-trace <phase> <t> +<delta>" without the prefix
}

export interface PhaseRow {
  name: string;
  medianMs: number;
  /** A phase inside Create (indented in the table). */
  inner?: boolean;
}

function parseTrace(file: string): Line[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: Line[] = [];
  for (const l of text.split('\n')) {
    // 2026-11-22T06:01:02.345Z shim[123] vkernel-trace rpc Create begin 1857.5 +13.8
    const m = /^(\S+Z) shim\[\d+\] vkernel-trace (.*)$/.exec(l);
    if (m) out.push({ at: Date.parse(m[1]), text: m[2] });
  }
  return out;
}

/** "rpc Create end (63.7 ms) 1921.2 +0.4" → "rpc Create end (63.7 ms)"; the phase label of a line. */
const label = (text: string): string => text.replace(/ [\d.]+ \+[\d.]+$/, '');
const delta = (text: string): number => Number(/\+([\d.]+)$/.exec(text)?.[1] ?? NaN);

const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Segments of one run, from its trace lines and its start/end; undefined if a mark is missing. */
export function runSegments(lines: Line[], t0: number, t1: number): Map<string, number> | undefined {
  const mine = lines.filter((l) => l.at >= t0 && l.at <= t1);
  const at = (prefix: string): number | undefined => mine.find((l) => label(l.text).startsWith(prefix))?.at;
  const marks = {
    handed: at('daemon: serve begins'),
    createBegin: at('rpc Create begin'),
    createEnd: at('rpc Create end'),
    startEnd: at('rpc Start end'),
    reaped: at('shim: init reaped'),
    deleteBegin: at('rpc Delete begin'),
    deleteEnd: at('rpc Delete end'),
  };
  if (Object.values(marks).some((v) => v === undefined)) return undefined;
  const m = marks as Record<keyof typeof marks, number>;
  const out = new Map<string, number>([
    ['ctr + containerd → hand-off', m.handed - t0],
    ['→ Create arrives', m.createBegin - m.handed],
    ['Create', m.createEnd - m.createBegin],
  ]);
  // Create's own phases: the trace deltas between its begin and end (sub-ms resolution).
  const i0 = mine.findIndex((l) => label(l.text).startsWith('rpc Create begin'));
  const i1 = mine.findIndex((l) => label(l.text).startsWith('rpc Create end'));
  for (const l of mine.slice(i0 + 1, i1 + 1)) {
    const name = `  ${label(l.text).replace(/ \([\d.]+ ms\)$/, '')}`;
    out.set(name, (out.get(name) ?? 0) + delta(l.text));
  }
  out.set('→ Start done', m.startEnd - m.createEnd);
  out.set('workload until reaped', m.reaped - m.startEnd);
  out.set('→ Delete arrives', m.deleteBegin - m.reaped);
  out.set('Delete', m.deleteEnd - m.deleteBegin);
  out.set('Shutdown … ctr exits', t1 - m.deleteEnd);
  return out;
}

export async function shimPhases(version: ContainerdVersion, runs: number): Promise<{ version: string; rows: PhaseRow[]; totalMs: number; used: number }> {
  const file = path.join(os.tmpdir(), `vkernel-shim-trace-${process.pid}-${version}.log`);
  fs.rmSync(file, { force: true });
  const env = await startShimEnv(version, { managerEnv: { VKERNEL_TRACE: file } });
  const windows: Array<[number, number]> = [];
  try {
    await waitFor('a warm daemon', () => env.warmDaemons().length > 0, 30_000);
    for (let i = 0; i < runs + 2; i++) {
      const t0 = Date.now();
      await env.cd.ctrOk(env.runArgs(`phases-${i}`, ['/bin/true'], ['--rm']), { timeoutMs: 60_000 });
      const t1 = Date.now();
      if (i >= 2) windows.push([t0, t1]); // the first two warm the daemon up, as in the timed phase
      await waitFor('the daemon back in the pool', () => env.warmDaemons().length > 0, 10_000).catch(() => undefined);
    }
  } finally {
    await env.stop();
  }
  const lines = parseTrace(file);
  fs.rmSync(file, { force: true });
  const per = windows.map(([t0, t1]) => runSegments(lines, t0, t1)).filter((s): s is Map<string, number> => s !== undefined);
  const names: string[] = [];
  for (const s of per) for (const k of s.keys()) if (!names.includes(k)) names.push(k);
  const rows = names.map((name) => ({ name, medianMs: median(per.map((s) => s.get(name) ?? NaN)), inner: name.startsWith('  ') }));
  return { version: env.cd.version, rows, totalMs: median(windows.map(([a, b]) => b - a)), used: per.length };
}

export function printShimPhases(p: { version: string; rows: PhaseRow[]; totalMs: number; used: number }): void {
  console.log(`\n## containerd ${p.version}: where a warm ctr run --rm … /bin/true goes (median of ${p.used} traced runs, ms; whole run ${p.totalMs.toFixed(0)} ms)`);
  for (const r of p.rows) console.log(`${r.name.padEnd(52)}${(Number.isFinite(r.medianMs) ? r.medianMs.toFixed(1) : '-').padStart(8)}`);
  console.log('(outer rows are wall-clock segments of the run; indented rows are phases inside Create, from the daemon\'s trace)');
}
