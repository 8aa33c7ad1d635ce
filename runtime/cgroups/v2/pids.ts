// v2 pids: pids.max; a limit <= 0 means no limit ("max").

import { pidsMaxValue } from '../v1/pids';
import { writeTo, type V2Controller } from './controller';

export const pidsController: V2Controller = {
  name: 'pids',
  needsToHandle: (r) => r.pids !== undefined && r.pids !== null,
  field: () => 'linux.resources.pids.limit',
  async apply(dir, r, ctx) {
    if (!r.pids) return;
    await writeTo(ctx, dir, 'pids.max', pidsMaxValue(r.pids.limit), 'linux.resources.pids.limit');
  },
};
