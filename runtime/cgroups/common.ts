// Small pieces shared by the v1 and v2 managers.

import * as path from 'node:path';
import { InternalError, InvalidArgumentError } from '../errors';
import type { LinuxResources } from '../spec/types';
import { errnoCode, errnoText } from './fs';

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
