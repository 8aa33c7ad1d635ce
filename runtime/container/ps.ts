import { execFileSync } from 'node:child_process';
import type { RuntimeContext } from '../context';
import { InvalidArgumentError } from '../errors';
import { Container } from './container';

export async function containerPids(ctx: RuntimeContext, id: string): Promise<number[]> {
  const container = Container.load(ctx.store, id, ctx.sys);
  return (await container.cgroup().pids()).sort((a, b) => a - b);
}

/** runc's table form: run `ps` with the given options and keep the header and our pids' rows. */
export function psTable(pids: number[], psArgs: string[]): string {
  const args = psArgs.length > 0 ? psArgs : ['-ef'];
  const out = execFileSync('ps', args, { encoding: 'utf8' });
  const lines = out.split('\n');
  const header = lines[0];
  const pidCol = header.trim().split(/\s+/).indexOf('PID');
  if (pidCol < 0) throw new InvalidArgumentError(`ps: no PID column in the output of ps ${args.join(' ')}`, 'ps-args');
  const wanted = new Set(pids);
  const rows = lines.slice(1).filter((l) => l.trim() && wanted.has(Number(l.trim().split(/\s+/)[pidCol])));
  return [header, ...rows].join('\n') + '\n';
}
