// Small pieces shared by the v1 and v2 managers.

import * as path from 'node:path';
import { FailedPreconditionError, InternalError, InvalidArgumentError } from '../errors';
import type { LinuxResources } from '../spec/types';
import { errnoCode, errnoText, readOptional, type CgroupFs } from './fs';

export const SIGKILL = 9;

/** Send `signal` to each pid; pids that are already gone are fine. */
export function killPids(pids: number[], signal: number): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ESRCH') continue;
      throw new InternalError(`cgroup: kill ${pid} with signal ${signal}: ${errnoText(err)}`, { cause: err });
    }
  }
}

export function checkSignal(signal: number): void {
  if (!Number.isInteger(signal) || signal < 0 || signal > 64) {
    throw new InvalidArgumentError(`signal: must be a signal number between 0 and 64 (got ${signal})`, 'signal');
  }
}

export function checkPid(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new InvalidArgumentError(`pid: must be a positive integer (got ${pid})`, 'pid');
  }
}

/** Deep-enough copy so defaults can be filled in without touching the caller's object. */
export function cloneResources(r: LinuxResources | undefined): LinuxResources {
  if (r === undefined || r === null) return {};
  return JSON.parse(JSON.stringify(r)) as LinuxResources;
}

/** Directories in `created` that are not among `leaves`: parents we made. */
export function createdParents(created: string[], leaves: string[]): string[] {
  const l = new Set(leaves.map((d) => path.normalize(d)));
  return created.filter((d) => !l.has(path.normalize(d)));
}

/**
 * memory.checkBeforeUpdate (runc 1.2): refuse a memory limit below what the cgroup uses now,
 * rather than let the kernel reclaim (v1: or fail with EBUSY; v2: OOM-kill). Called before
 * any file is written, so a refused update changes nothing.
 */
export async function checkLimitAboveUsage(cfs: CgroupFs, usageFile: string, limit: number | undefined): Promise<void> {
  if (limit === undefined || limit <= 0) return;
  const usage = (await readOptional(cfs, usageFile))?.trim();
  if (usage === undefined || !/^\d+$/.test(usage) || BigInt(limit) >= BigInt(usage)) return;
  throw new FailedPreconditionError(`linux.resources.memory.limit: rejecting memory limit ${limit} below current usage ${usage}`);
}

/**
 * CPU burst on a kernel without the burst file `file` (before Linux 5.14): 0 is what it does
 * anyway (skipped by apply), anything else cannot be honoured and is refused naming the field.
 */
export async function checkBurstFile(cfs: CgroupFs, file: string, burst: number | undefined): Promise<void> {
  if (!burst || (await cfs.exists(file))) return;
  throw new FailedPreconditionError(
    `linux.resources.cpu.burst: this kernel has no ${path.basename(file)} (CPU burst needs Linux 5.14 or later) (got ${burst})`,
  );
}
