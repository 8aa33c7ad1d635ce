// v1 cpuset: a new cpuset cgroup starts with empty cpuset.cpus/mems and refuses tasks, so
// (runc cpusetEnsureParent/cpusetCopyIfNeeded) every directory from the mountpoint down gets
// the parent's values copied in when empty; the leaf gets the user's values first.

import * as path from 'node:path';
import { readOptional } from '../fs';
import { writeTo, type V1Context, type V1Controller } from './controller';

const F = 'linux.resources.cpu';

function isEmpty(v: string | undefined): boolean {
  return v === undefined || v.trim() === '';
}

async function copyIfNeeded(dir: string, parent: string, ctx: V1Context): Promise<void> {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    const cur = await readOptional(ctx.fs, path.join(dir, file));
    if (!isEmpty(cur)) continue;
    const from = await readOptional(ctx.fs, path.join(parent, file));
    if (isEmpty(from)) continue;
    await writeTo(ctx, dir, file, (from as string).trim(), `${F}.${file === 'cpuset.cpus' ? 'cpus' : 'mems'}`);
  }
}

export const cpusetController: V1Controller = {
  name: 'cpuset',
  needsToHandle(r) {
    return (r.cpu?.cpus ?? '').trim() !== '' || (r.cpu?.mems ?? '').trim() !== '';
  },
  field(r) {
    return (r.cpu?.cpus ?? '').trim() !== '' ? `${F}.cpus` : `${F}.mems`;
  },
  async apply(dir, r, ctx) {
    const cpus = (r.cpu?.cpus ?? '').trim();
    const mems = (r.cpu?.mems ?? '').trim();
    if (cpus !== '') await writeTo(ctx, dir, 'cpuset.cpus', cpus, `${F}.cpus`);
    if (mems !== '') await writeTo(ctx, dir, 'cpuset.mems', mems, `${F}.mems`);
  },
  initDir: copyIfNeeded,
};
