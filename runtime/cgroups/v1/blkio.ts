// v1 blkio: weight / leaf_weight (CFQ files, or BFQ's blkio.bfq.weight when CFQ is gone, as
// runc detects), per-device weights, and the four throttle files (one "maj:min rate" write
// per device).

import * as path from 'node:path';
import type { ThrottleDevice } from '../../spec/types';
import { isSet, writeTo, type V1Controller } from './controller';

const F = 'linux.resources.blockIO';

const THROTTLES = [
  ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
  ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
  ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
  ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
] as const;

export const blkioController: V1Controller = {
  name: 'blkio',
  needsToHandle(r) {
    const b = r.blockIO;
    if (!b) return false;
    return (
      isSet(b.weight) ||
      isSet(b.leafWeight) ||
      (b.weightDevice ?? []).length > 0 ||
      THROTTLES.some(([k]) => (b[k] ?? []).length > 0)
    );
  },
  field(r) {
    const b = r.blockIO ?? {};
    if (isSet(b.weight)) return `${F}.weight`;
    if (isSet(b.leafWeight)) return `${F}.leafWeight`;
    if ((b.weightDevice ?? []).length > 0) return `${F}.weightDevice`;
    for (const [k] of THROTTLES) if ((b[k] ?? []).length > 0) return `${F}.${k}`;
    return F;
  },
  async apply(dir, r, ctx) {
    const b = r.blockIO;
    if (!b) return;
    const cfq = await ctx.fs.exists(path.join(dir, 'blkio.weight'));
    const weightFile = cfq ? 'blkio.weight' : 'blkio.bfq.weight';
    const weightDeviceFile = cfq ? 'blkio.weight_device' : 'blkio.bfq.weight_device';
    if (isSet(b.weight)) await writeTo(ctx, dir, weightFile, String(b.weight), `${F}.weight`);
    if (isSet(b.leafWeight)) await writeTo(ctx, dir, 'blkio.leaf_weight', String(b.leafWeight), `${F}.leafWeight`);
    for (const [i, wd] of (b.weightDevice ?? []).entries()) {
      if (isSet(wd.weight)) {
        await writeTo(ctx, dir, weightDeviceFile, `${wd.major}:${wd.minor} ${wd.weight}`, `${F}.weightDevice[${i}].weight`);
      }
      if (isSet(wd.leafWeight)) {
        await writeTo(ctx, dir, 'blkio.leaf_weight_device', `${wd.major}:${wd.minor} ${wd.leafWeight}`, `${F}.weightDevice[${i}].leafWeight`);
      }
    }
    for (const [key, file] of THROTTLES) {
      const list: ThrottleDevice[] = b[key] ?? [];
      for (const [i, td] of list.entries()) {
        await writeTo(ctx, dir, file, `${td.major}:${td.minor} ${td.rate}`, `${F}.${key}[${i}]`);
      }
    }
  },
};
