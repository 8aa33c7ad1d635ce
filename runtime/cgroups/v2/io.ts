// v2 io: the blkio weight goes to io.bfq.weight when BFQ is there (same 1-1000 scale),
// otherwise to io.weight converted with runc's formula (10-1000 → 1-10000). Per-device
// weights go to io.bfq.weight when that file takes "maj:min weight" (kernel ≥ 5.4), else
// to io.weight converted (runc drops them silently in that case). Throttles → io.max
// "maj:min rbps=N" etc. Leaf weights do not exist in v2 (rejected by validation).

import * as path from 'node:path';
import type { ThrottleDevice } from '../../spec/types';
import { readOptional } from '../fs';
import { isSet, writeTo, type V2Controller } from './controller';

const F = 'linux.resources.blockIO';

/** runc ConvertBlkIOToIOWeightValue. */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

const THROTTLES = [
  ['throttleReadBpsDevice', 'rbps'],
  ['throttleWriteBpsDevice', 'wbps'],
  ['throttleReadIOPSDevice', 'riops'],
  ['throttleWriteIOPSDevice', 'wiops'],
] as const;

export const ioController: V2Controller = {
  name: 'io',
  needsToHandle(r) {
    const b = r.blockIO;
    return (
      !!b &&
      (isSet(b.weight) || (b.weightDevice ?? []).some((d) => isSet(d.weight)) || THROTTLES.some(([k]) => (b[k] ?? []).length > 0))
    );
  },
  field(r) {
    const b = r.blockIO ?? {};
    if (isSet(b.weight)) return `${F}.weight`;
    if ((b.weightDevice ?? []).length > 0) return `${F}.weightDevice`;
    for (const [k] of THROTTLES) if ((b[k] ?? []).length > 0) return `${F}.${k}`;
    return F;
  },
  async apply(dir, r, ctx) {
    const b = r.blockIO;
    if (!b) return;
    const devWeights = (b.weightDevice ?? []).map((d, i) => ({ d, i })).filter(({ d }) => isSet(d.weight));
    let bfq: string | undefined;
    if (isSet(b.weight) || devWeights.length > 0) bfq = await readOptional(ctx.fs, path.join(dir, 'io.bfq.weight'));
    if (isSet(b.weight)) {
      if (bfq !== undefined) await writeTo(ctx, dir, 'io.bfq.weight', String(b.weight), `${F}.weight`);
      else await writeTo(ctx, dir, 'io.weight', String(blkioWeightToIoWeight(b.weight)), `${F}.weight`);
    }
    // Old kernels' io.bfq.weight holds a bare number and takes no per-device weights.
    const bfqPerDevice = bfq !== undefined && !/^\s*\d+\s*$/.test(bfq);
    for (const { d, i } of devWeights) {
      const field = `${F}.weightDevice[${i}].weight`;
      if (bfqPerDevice) await writeTo(ctx, dir, 'io.bfq.weight', `${d.major}:${d.minor} ${d.weight}`, field);
      else await writeTo(ctx, dir, 'io.weight', `${d.major}:${d.minor} ${blkioWeightToIoWeight(d.weight as number)}`, field);
    }
    for (const [key, name] of THROTTLES) {
      const list: ThrottleDevice[] = b[key] ?? [];
      for (const [i, td] of list.entries()) {
        await writeTo(ctx, dir, 'io.max', `${td.major}:${td.minor} ${name}=${td.rate}`, `${F}.${key}[${i}]`);
      }
    }
  },
};
