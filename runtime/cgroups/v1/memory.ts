// v1 memory: limit_in_bytes, memsw.limit_in_bytes (OCI swap = memory+swap, which is what
// memsw means, so no conversion), soft_limit_in_bytes, oom_control, swappiness.
// Ordering (runc setMemoryAndSwap): the kernel requires memsw >= limit at every moment, so
// when raising (or swap = -1) write swap first, otherwise limit first.

import * as path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors';
import type { LinuxResources } from '../../spec/types';
import { checkLimitAboveUsage } from '../common';
import { errnoCode, parseFlatKeyed, readOptional } from '../fs';
import { isSet, writeTo, type V1Context, type V1Controller } from './controller';

const F = 'linux.resources.memory';
const LIMIT = 'memory.limit_in_bytes';
const MEMSW = 'memory.memsw.limit_in_bytes';

async function readBig(ctx: V1Context, file: string): Promise<bigint | undefined> {
  const t = (await readOptional(ctx.fs, file))?.trim();
  return t !== undefined && /^\d+$/.test(t) ? BigInt(t) : undefined;
}

async function setLimit(dir: string, value: number, ctx: V1Context): Promise<void> {
  if (value === 0) return;
  try {
    await writeTo(ctx, dir, LIMIT, String(value), `${F}.limit`);
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    if (errnoCode(cause) !== 'EBUSY') throw err;
    // EBUSY: below what the cgroup uses and cannot reclaim.
    const usage = await readBig(ctx, path.join(dir, 'memory.usage_in_bytes'));
    const peak = await readBig(ctx, path.join(dir, 'memory.max_usage_in_bytes'));
    throw new FailedPreconditionError(
      `${F}.limit: unable to set memory limit to ${value} (current usage: ${usage ?? '?'}, peak usage: ${peak ?? '?'})`,
      { cause: err },
    );
  }
}

async function setSwap(dir: string, value: number, ctx: V1Context): Promise<void> {
  if (value === 0) return;
  await writeTo(ctx, dir, MEMSW, String(value), `${F}.swap`);
}

/** The memsw value to write (0 = none); throws when swap is limited without swap accounting. */
async function swapToWrite(dir: string, r: LinuxResources, ctx: V1Context): Promise<number> {
  const limit = r.memory?.limit ?? 0;
  const swap = r.memory?.swap ?? 0;
  const hasMemsw = await ctx.fs.exists(path.join(dir, MEMSW));
  // memory = -1 and swap unset: "unlimited" for both (runc).
  if (limit === -1 && swap === 0 && hasMemsw) return -1;
  if (swap === 0 || hasMemsw) return swap;
  if (swap === -1) return 0;
  throw new FailedPreconditionError(
    `${F}.swap: this kernel has no swap accounting (${MEMSW} is missing; boot with swapaccount=1) (got ${swap})`,
  );
}

export const memoryController: V1Controller = {
  name: 'memory',
  needsToHandle(r: LinuxResources): boolean {
    const m = r.memory;
    if (!m) return false;
    return (
      isSet(m.limit) ||
      isSet(m.reservation) ||
      isSet(m.swap) ||
      m.disableOOMKiller === true ||
      (m.swappiness !== undefined && m.swappiness !== -1)
    );
  },
  field(r) {
    const m = r.memory ?? {};
    for (const k of ['limit', 'reservation', 'swap', 'swappiness', 'disableOOMKiller'] as const) {
      if (m[k] !== undefined) return `${F}.${k}`;
    }
    return F;
  },
  async check(dir, r, ctx) {
    await swapToWrite(dir, r, ctx);
    if (r.memory?.checkBeforeUpdate) await checkLimitAboveUsage(ctx.fs, path.join(dir, 'memory.usage_in_bytes'), r.memory.limit);
  },
  async apply(dir, r, ctx) {
    const m = r.memory;
    if (!m) return;
    const limit = m.limit ?? 0;
    const swap = await swapToWrite(dir, r, ctx);
    if (limit !== 0 && swap !== 0) {
      const cur = (await readBig(ctx, path.join(dir, LIMIT))) ?? 0n;
      if (swap === -1 || cur < BigInt(swap)) {
        await setSwap(dir, swap, ctx);
        await setLimit(dir, limit, ctx);
      } else {
        await setLimit(dir, limit, ctx);
        await setSwap(dir, swap, ctx);
      }
    } else {
      await setLimit(dir, limit, ctx);
      await setSwap(dir, swap, ctx);
    }
    // kernel / kernelTCP: ignored (warned about during validation), as runc does.
    if (isSet(m.reservation)) {
      await writeTo(ctx, dir, 'memory.soft_limit_in_bytes', String(m.reservation), `${F}.reservation`);
    }
    if (m.disableOOMKiller !== undefined) {
      await writeTo(ctx, dir, 'memory.oom_control', m.disableOOMKiller ? '1' : '0', `${F}.disableOOMKiller`);
    }
    if (m.swappiness !== undefined && m.swappiness !== -1) {
      if (m.swappiness < 0 || m.swappiness > 100) {
        throw new InvalidArgumentError(`${F}.swappiness: valid range is 0-100 (got ${m.swappiness})`, `${F}.swappiness`);
      }
      await writeTo(ctx, dir, 'memory.swappiness', String(m.swappiness), `${F}.swappiness`);
    }
  },
};

/** oom_kill counter and under_oom flag from memory.oom_control (kernel ≥ 4.13 has oom_kill). */
export async function readOomControl(ctx: Pick<V1Context, 'fs'>, dir: string): Promise<{ oomKill: number; underOom: boolean } | undefined> {
  const text = await readOptional(ctx.fs, path.join(dir, 'memory.oom_control'));
  if (text === undefined) return undefined;
  const kv = parseFlatKeyed(text);
  return { oomKill: kv.get('oom_kill') ?? 0, underOom: (kv.get('under_oom') ?? 0) === 1 };
}
