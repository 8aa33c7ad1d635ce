// v2 cpu: cpu.idle, cpu.weight (from OCI shares with runc's conversion), cpu.max
// ("<quota|max> [period]"), cpu.max.burst (retried after cpu.max when the kernel rejects it
// against the old quota; without the file, burst 0 is skipped and others refused, as on v1).
// Only the period given: the current quota is kept (runc 1.1 would reset it to "max").

import * as path from 'node:path';
import { checkBurstFile } from '../common';
import { errnoCode, readOptional } from '../fs';
import { isSet, writeTo, type V2Controller } from './controller';

const F = 'linux.resources.cpu';
const BURST = 'cpu.max.burst';

/** runc ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000]. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

export const cpuController: V2Controller = {
  name: 'cpu',
  needsToHandle(r) {
    const c = r.cpu;
    return !!c && (isSet(c.shares) || isSet(c.quota) || isSet(c.period) || c.burst !== undefined || c.idle !== undefined);
  },
  field(r) {
    const c = r.cpu ?? {};
    for (const k of ['shares', 'quota', 'period', 'burst', 'idle'] as const) if (c[k] !== undefined) return `${F}.${k}`;
    return F;
  },
  check: (dir, r, ctx) => checkBurstFile(ctx.fs, path.join(dir, BURST), r.cpu?.burst),
  async apply(dir, r, ctx) {
    const c = r.cpu;
    if (!c) return;
    if (c.idle !== undefined) await writeTo(ctx, dir, 'cpu.idle', String(c.idle), `${F}.idle`);
    if (isSet(c.shares)) {
      if (c.idle === 1) ctx.warn(`${F}.shares: ignored, an idle group (cpu.idle 1) has no weight`);
      else await writeTo(ctx, dir, 'cpu.weight', String(sharesToWeight(c.shares)), `${F}.shares`);
    }
    let burst = '';
    if (c.burst !== undefined && (await ctx.fs.exists(path.join(dir, BURST)))) {
      burst = String(c.burst);
      try {
        await writeTo(ctx, dir, BURST, burst, `${F}.burst`);
        burst = '';
      } catch (err) {
        if (errnoCode((err as { cause?: unknown }).cause) !== 'EINVAL' || !isSet(c.quota)) throw err;
      }
    }
    if (isSet(c.quota) || isSet(c.period)) {
      let quota = 'max';
      if (isSet(c.quota) && c.quota > 0) quota = String(c.quota);
      else if (!isSet(c.quota)) {
        const cur = (await readOptional(ctx.fs, path.join(dir, 'cpu.max')))?.trim().split(/\s+/)[0];
        if (cur) quota = cur;
      }
      const value = isSet(c.period) ? `${quota} ${c.period}` : quota;
      await writeTo(ctx, dir, 'cpu.max', value, isSet(c.quota) ? `${F}.quota` : `${F}.period`);
      if (burst !== '') await writeTo(ctx, dir, BURST, burst, `${F}.burst`);
    }
  },
};
