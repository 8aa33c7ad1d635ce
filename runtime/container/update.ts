// update: change the resource limits of a live container. The new values are merged into
// the stored spec so later readers (exec, the vkernel view) see the limits in force.
import type { RuntimeContext } from '../context';
import type { LinuxResources } from '../spec/types';
import { writeFileAtomic } from '../state/atomic';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { updateView } from '../vkernel/view';
import { Container } from './container';
import { viewDir } from './view-dir';

export async function update(ctx: RuntimeContext, id: string, resources: LinuxResources): Promise<void> {
  const container = Container.load(ctx.store, id, ctx.sys);
  await container.require('update');
  const spec = container.spec();
  await container.cgroup().update(withStoredChecks(spec.linux?.resources ?? {}, resources));
  spec.linux ??= {};
  spec.linux.resources = mergeResources(spec.linux.resources ?? {}, resources);
  writeFileAtomic(path.join(ctx.store.dir(id), 'config.json'), JSON.stringify(spec));
  // FUSE views read the cgroup live; snapshot files are rewritten here.
  if (fs.existsSync(viewDir(ctx.store, id))) await updateView(viewDir(ctx.store, id));
}

/** Field-wise merge, one level deep per controller, as runc's update does. */
export function mergeResources(base: LinuxResources, change: LinuxResources): LinuxResources {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) continue;
    const old = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && old && typeof old === 'object' && !Array.isArray(old) ? { ...old, ...v } : v;
  }
  return out as LinuxResources;
}

/**
 * The change, with what runc's update would also apply from the stored resources (runc sets
 * the whole of them; our driver only sees the fields that change):
 * - memory.checkBeforeUpdate of the config, so a check set at create still guards `update --memory`;
 * - the stored memory+swap limit when only the memory limit changes, because cgroup v2 keeps
 *   swap alone (memory.swap.max = swap - limit) and would otherwise drift from the total.
 */
export function withStoredChecks(stored: LinuxResources, change: LinuxResources): LinuxResources {
  if (!change.memory) return change;
  const memory = { ...change.memory };
  const check = stored.memory?.checkBeforeUpdate;
  if (check !== undefined && memory.checkBeforeUpdate === undefined) memory.checkBeforeUpdate = check;
  const swap = stored.memory?.swap;
  if (swap !== undefined && memory.limit !== undefined && memory.swap === undefined) memory.swap = swap;
  return { ...change, memory };
}
