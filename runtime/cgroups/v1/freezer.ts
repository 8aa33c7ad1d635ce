// v1 freezer: freezer.state. Freezing v1 is racy while tasks fork or join, so (runc) retry
// up to 1000 times, thawing briefly every 50 tries; on failure thaw back and report.

import * as path from 'node:path';
import { FailedPreconditionError, InternalError } from '../../errors';
import { readOptional, readRequired, sleep, type CgroupFs } from '../fs';
import type { V1Controller } from './controller';

export type FreezerState = 'frozen' | 'thawed' | 'freezing';

export const freezerController: V1Controller = {
  name: 'freezer',
  needsToHandle: () => false,
  field: () => 'freezer',
  async apply() {},
};

async function readState(cfs: CgroupFs, dir: string): Promise<string> {
  return (await readRequired(cfs, path.join(dir, 'freezer.state'))).trim();
}

export async function freezeV1(cfs: CgroupFs, dir: string): Promise<void> {
  const file = path.join(dir, 'freezer.state');
  try {
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 49) {
        await cfs.write(file, 'THAWED');
        await sleep(10);
      }
      await cfs.write(file, 'FROZEN');
      if (i % 25 === 24) await sleep(1);
      const state = await readState(cfs, dir);
      if (state === 'FROZEN') return;
      if (state !== 'FREEZING') throw new InternalError(`cgroup: unexpected freezer state ${state} after writing FROZEN to ${file}`);
    }
    throw new FailedPreconditionError(`cgroup: unable to freeze ${dir}: still FREEZING after 1000 attempts`);
  } catch (err) {
    await cfs.write(file, 'THAWED').catch(() => undefined);
    throw err;
  }
}

export async function thawV1(cfs: CgroupFs, dir: string): Promise<void> {
  await cfs.write(path.join(dir, 'freezer.state'), 'THAWED');
}

/** A cgroup that is gone (or has no freezer.state) counts as thawed. */
export async function freezerStateV1(cfs: CgroupFs, dir: string): Promise<FreezerState> {
  const state = (await readOptional(cfs, path.join(dir, 'freezer.state')))?.trim();
  if (state === 'FROZEN') return 'frozen';
  if (state === 'FREEZING') return 'freezing';
  return 'thawed';
}
