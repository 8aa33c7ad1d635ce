// v1 pids: pids.max; a limit <= 0 means no limit ("max").
// (runc 1.1 leaves pids.max alone for 0 and writes "max" for negatives.)

import { writeTo, type V1Controller } from './controller';

export function pidsMaxValue(limit: number): string {
  return limit > 0 ? String(limit) : 'max';
}

export const pidsController: V1Controller = {
  name: 'pids',
  needsToHandle: (r) => r.pids !== undefined && r.pids !== null,
  field: () => 'linux.resources.pids.limit',
  async apply(dir, r, ctx) {
    if (!r.pids) return;
    await writeTo(ctx, dir, 'pids.max', pidsMaxValue(r.pids.limit), 'linux.resources.pids.limit');
  },
};
