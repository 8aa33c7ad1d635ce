import type { RuntimeContext } from '../context';
import { Container } from './container';

export interface ListEntry {
  ociVersion: string;
  id: string;
  pid: number;
  status: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

/** Every container under the root; one whose state cannot be read is skipped, as runc does. */
export async function list(ctx: RuntimeContext): Promise<ListEntry[]> {
  const out: ListEntry[] = [];
  for (const id of ctx.store.list()) {
    try {
      out.push((await Container.load(ctx.store, id, ctx.sys).stateOutput()) as unknown as ListEntry);
    } catch (err) {
      ctx.log.warn(`list: skipping ${id}: ${(err as Error).message}`);
    }
  }
  return out;
}

/** runc's tabwriter table: columns padded to the widest cell plus three spaces. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + 3))).join('')).join('\n') + '\n';
}
