// The shape `vkernel check` prints (docs/containerd.md, "vkernel check"). The JSON form is a
// contract for scripts: {rows:[{name,status,detail}], summary:{status,pass,warn,fail}}; row
// names are stable identifiers, details are for people and may change wording.

/** fail: vkernel cannot work (or a required part is missing); warn: a feature is degraded or not set up. */
export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface CheckRow {
  name: string;
  status: CheckStatus;
  /** One line: what was found, and for warn/fail what to do. */
  detail: string;
}

export interface CheckSummary {
  /** The worst row status. */
  status: CheckStatus;
  pass: number;
  warn: number;
  fail: number;
}

export interface CheckReport {
  rows: CheckRow[];
  summary: CheckSummary;
}

export function row(name: string, status: CheckStatus, detail: string): CheckRow {
  return { name, status, detail };
}

export function report(rows: CheckRow[]): CheckReport {
  const count = (s: CheckStatus): number => rows.filter((r) => r.status === s).length;
  const summary = { pass: count('pass'), warn: count('warn'), fail: count('fail') };
  const status: CheckStatus = summary.fail > 0 ? 'fail' : summary.warn > 0 ? 'warn' : 'pass';
  return { rows, summary: { status, ...summary } };
}

/** 0 when no row failed (warnings included), 1 otherwise. */
export function exitCode(r: CheckReport): number {
  return r.summary.fail > 0 ? 1 : 0;
}

/** The human table: NAME, STATUS, DETAIL columns, then a summary line. */
export function formatReport(r: CheckReport): string {
  const width = Math.max(4, ...r.rows.map((x) => x.name.length));
  const lines = [`${'NAME'.padEnd(width)}  STATUS  DETAIL`];
  for (const x of r.rows) lines.push(`${x.name.padEnd(width)}  ${x.status.toUpperCase().padEnd(6)}  ${x.detail}`);
  const s = r.summary;
  lines.push('', `${s.status.toUpperCase()}: ${s.pass} passed, ${s.warn} warnings, ${s.fail} failed`);
  return lines.join('\n') + '\n';
}
