// v2 memory: memory.swap.max, memory.max, memory.low. OCI swap is memory+swap (the v1
// meaning); v2's swap.max is swap alone, so swap.max = swap - limit (runc
// ConvertMemorySwapToCgroupV2Value). memory.oom.group has no OCI field: set it through
// linux.resources.unified ("memory.oom.group": "1"), as kubelet does. checkBeforeUpdate is
// judged in check(), before the manager writes anything (swap.max included).

import * as path from 'node:path';
import { InvalidArgumentError } from '../../errors';
import { checkLimitAboveUsage } from '../common';
import { errnoCode } from '../fs';
import { isSet, numToStr, writeTo, type V2Controller } from './controller';

const F = 'linux.resources.memory';

/** OCI memory+swap → v2 swap.max value (0 = unset, -1 = max). Throws on impossible input. */
export function convertSwapToV2(swap: number, limit: number): number {
  if (limit === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (limit === 0 || limit === -1) {
    throw new InvalidArgumentError(`${F}.swap: unable to set a swap limit without a memory limit (got ${swap})`, `${F}.swap`);
  }
  if (limit < 0) throw new InvalidArgumentError(`${F}.limit: invalid memory value (got ${limit})`, `${F}.limit`);
  if (swap < limit) {
    throw new InvalidArgumentError(`${F}.swap: memory+swap limit must be >= the memory limit ${limit} (got ${swap})`, `${F}.swap`);
  }
  return swap - limit;
}

export const memoryController: V2Controller = {
  name: 'memory',
  needsToHandle(r) {
    const m = r.memory;
    return !!m && (isSet(m.limit) || isSet(m.swap) || isSet(m.reservation));
  },
  field(r) {
    const m = r.memory ?? {};
    if (isSet(m.limit)) return `${F}.limit`;
    if (isSet(m.swap)) return `${F}.swap`;
    return `${F}.reservation`;
  },
  async check(dir, r, ctx) {
    const m = r.memory;
    if (m) convertSwapToV2(m.swap ?? 0, m.limit ?? 0);
    if (m?.checkBeforeUpdate) await checkLimitAboveUsage(ctx.fs, path.join(dir, 'memory.current'), m.limit);
  },
  async apply(dir, r, ctx) {
    const m = r.memory;
    if (!m) return;
    if (m.disableOOMKiller) ctx.warn(`${F}.disableOOMKiller: ignored, cgroup v2 cannot disable the OOM killer`);
    if (m.swappiness !== undefined && m.swappiness !== -1) {
      ctx.warn(`${F}.swappiness: ignored, cgroup v2 has no per-cgroup swappiness`);
    }
    const limit = m.limit ?? 0;
    const ociSwap = m.swap ?? 0;
    const reservation = m.reservation ?? 0;
    if (!isSet(limit) && !isSet(ociSwap) && !isSet(reservation)) return;

    const swap = convertSwapToV2(ociSwap, limit);
    let swapStr = numToStr(swap);
    if (swapStr === '' && swap === 0 && ociSwap > 0) swapStr = '0'; // swap == limit: no swap
    if (swapStr !== '') {
      try {
        await writeTo(ctx, dir, 'memory.swap.max', swapStr, `${F}.swap`);
      } catch (err) {
        // Without swap accounting, "max" and "0" are what we have anyway.
        const code = errnoCode((err as { cause?: unknown }).cause);
        if (!(code === 'ENOENT' && (swapStr === 'max' || swapStr === '0'))) throw err;
      }
    }
    const max = numToStr(limit);
    if (max !== '') await writeTo(ctx, dir, 'memory.max', max, `${F}.limit`);
    const low = numToStr(reservation);
    if (low !== '') await writeTo(ctx, dir, 'memory.low', low, `${F}.reservation`);
  },
};
