// v2 freezer: write cgroup.freeze, then wait for cgroup.events "frozen 1" (runc polls every
// 10ms, 1000 times). A freeze that does not settle is undone (thawed) and reported.

import * as path from 'node:path';
import { FailedPreconditionError, InternalError } from '../../errors';
import { parseFlatKeyed, readOptional, sleep, type CgroupFs } from '../fs';

export type FreezerState = 'frozen' | 'thawed' | 'freezing';

async function eventsFrozen(cfs: CgroupFs, dir: string): Promise<boolean | undefined> {
  const text = await readOptional(cfs, path.join(dir, 'cgroup.events'));
  if (text === undefined) return undefined;
  return parseFlatKeyed(text).get('frozen') === 1;
}

export async function freezeV2(cfs: CgroupFs, dir: string, pollMs = 10, maxIter = 1000): Promise<void> {
  const file = path.join(dir, 'cgroup.freeze');
  if (!(await cfs.exists(file))) {
    throw new FailedPreconditionError(`cgroup: freezer not supported: ${file} does not exist`);
  }
  await cfs.write(file, '1');
  for (let i = 0; i < maxIter; i++) {
    const frozen = await eventsFrozen(cfs, dir);
    if (frozen === undefined) throw new InternalError(`cgroup: ${path.join(dir, 'cgroup.events')} is missing`);
    if (frozen) return;
    await sleep(pollMs);
  }
  await cfs.write(file, '0').catch(() => undefined);
  throw new FailedPreconditionError(`cgroup: timeout of ${(pollMs * maxIter) / 1000}s reached waiting for ${dir} to freeze`);
}

export async function thawV2(cfs: CgroupFs, dir: string): Promise<void> {
  const file = path.join(dir, 'cgroup.freeze');
  if (!(await cfs.exists(file))) return; // nothing can be frozen without it
  await cfs.write(file, '0');
}

export async function freezerStateV2(cfs: CgroupFs, dir: string): Promise<FreezerState> {
  const want = (await readOptional(cfs, path.join(dir, 'cgroup.freeze')))?.trim();
  if (want === undefined || want === '0') return 'thawed';
  return (await eventsFrozen(cfs, dir)) ? 'frozen' : 'freezing';
}
