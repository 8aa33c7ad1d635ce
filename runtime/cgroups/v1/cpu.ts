// v1 cpu: shares (read back: the kernel clamps), cfs_period_us / cfs_quota_us / cfs_burst_us
// with runc's retry when the kernel rejects a period or burst until the quota is written,
// rt_period_us then rt_runtime_us, and cpu.idle where this kernel has it in v1 (≥ 5.15).

import * as path from 'node:path';
import { InvalidArgumentError } from '../../errors';
import type { LinuxResources } from '../../spec/types';
import { checkBurstFile } from '../common';
import { errnoCode, readOptional } from '../fs';
import { isSet, writeTo, type V1Context, type V1Controller } from './controller';

const F = 'linux.resources.cpu';
const BURST = 'cpu.cfs_burst_us';

function isEinval(err: unknown): boolean {
  return errnoCode((err as { cause?: unknown }).cause) === 'EINVAL';
}

async function setRt(dir: string, r: LinuxResources, ctx: V1Context): Promise<void> {
  const c = r.cpu ?? {};
  if (isSet(c.realtimePeriod)) {
    await writeTo(ctx, dir, 'cpu.rt_period_us', String(c.realtimePeriod), `${F}.realtimePeriod`);
  }
  if (isSet(c.realtimeRuntime)) {
    await writeTo(ctx, dir, 'cpu.rt_runtime_us', String(c.realtimeRuntime), `${F}.realtimeRuntime`);
  }
}

export const cpuController: V1Controller = {
  name: 'cpu',
  needsToHandle(r) {
    const c = r.cpu;
    if (!c) return false;
    return (
      isSet(c.shares) ||
      isSet(c.quota) ||
      isSet(c.period) ||
      c.burst !== undefined ||
      isSet(c.realtimeRuntime) ||
      isSet(c.realtimePeriod) ||
      c.idle !== undefined
    );
  },
  field(r) {
    const c = r.cpu ?? {};
    for (const k of ['shares', 'quota', 'period', 'burst', 'realtimeRuntime', 'realtimePeriod', 'idle'] as const) {
      if (c[k] !== undefined) return `${F}.${k}`;
    }
    return F;
  },
  check: (dir, r, ctx) => checkBurstFile(ctx.fs, path.join(dir, BURST), r.cpu?.burst),
  async apply(dir, r, ctx) {
    const c = r.cpu;
    if (!c) return;
    // Real-time first: a SCHED_RR task cannot join a group without RT bandwidth.
    await setRt(dir, r, ctx);

    if (c.idle !== undefined) {
      if (await ctx.fs.exists(path.join(dir, 'cpu.idle'))) {
        await writeTo(ctx, dir, 'cpu.idle', String(c.idle), `${F}.idle`);
      } else {
        ctx.warn(`${F}.idle: ignored, this kernel's cgroup v1 cpu controller has no cpu.idle`);
      }
    }
    if (isSet(c.shares) && c.idle === 1) {
      ctx.warn(`${F}.shares: ignored, an idle group (cpu.idle 1) has no weight`);
    } else if (isSet(c.shares)) {
      await writeTo(ctx, dir, 'cpu.shares', String(c.shares), `${F}.shares`);
      const got = Number((await readOptional(ctx.fs, path.join(dir, 'cpu.shares')))?.trim());
      if (Number.isFinite(got)) {
        if (c.shares > got) {
          throw new InvalidArgumentError(`${F}.shares: the maximum allowed cpu-shares is ${got} (got ${c.shares})`, `${F}.shares`);
        }
        if (c.shares < got) {
          throw new InvalidArgumentError(`${F}.shares: the minimum allowed cpu-shares is ${got} (got ${c.shares})`, `${F}.shares`);
        }
      }
    }

    let period = '';
    if (isSet(c.period)) {
      period = String(c.period);
      try {
        await writeTo(ctx, dir, 'cpu.cfs_period_us', period, `${F}.period`);
        period = '';
      } catch (err) {
        // old_quota/new_period can exceed the parent's limit: retry after the quota.
        if (!isEinval(err) || !isSet(c.quota)) throw err;
      }
    }
    let burst = '';
    // Missing file: burst 0 is what the kernel does anyway (anything else failed check()).
    if (c.burst !== undefined && (await ctx.fs.exists(path.join(dir, BURST)))) {
      burst = String(c.burst);
      try {
        await writeTo(ctx, dir, BURST, burst, `${F}.burst`);
        burst = '';
      } catch (err) {
        // burst must not exceed the quota: retry after writing the new quota.
        if (!isEinval(err) || !isSet(c.quota)) throw err;
      }
    }
    if (isSet(c.quota)) {
      await writeTo(ctx, dir, 'cpu.cfs_quota_us', String(c.quota), `${F}.quota`);
      if (period !== '') await writeTo(ctx, dir, 'cpu.cfs_period_us', period, `${F}.period`);
      if (burst !== '') await writeTo(ctx, dir, BURST, burst, `${F}.burst`);
    }
  },
};

/** cpuacct has no settings; it only needs a directory (stats). */
export const cpuacctController: V1Controller = {
  name: 'cpuacct',
  needsToHandle: () => false,
  field: () => 'linux.resources.cpu',
  async apply() {},
};
