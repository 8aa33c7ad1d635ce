// Delegating controllers down a cgroup v2 tree: a controller can be used in a cgroup only
// when every ancestor lists it in cgroup.subtree_control. runc enables everything the root
// offers; we enable what the resources need plus the ones stats read (cpu, io, memory,
// pids), only where not already enabled, and fail naming the field when a needed one is
// still not available in the container's cgroup.

import * as path from 'node:path';
import { FailedPreconditionError } from '../../errors';
import { readOptional, type CgroupFs } from '../fs';

export interface RequiredController {
  name: string;
  field: string;
}

function words(text: string | undefined): string[] {
  return (text ?? '').split(/\s+/).filter((w) => w !== '');
}

export async function readControllers(cfs: CgroupFs, dir: string): Promise<string[]> {
  return words(await readOptional(cfs, path.join(dir, 'cgroup.controllers')));
}

export async function enableControllers(
  cfs: CgroupFs,
  mountpoint: string,
  leaf: string,
  wanted: string[],
  required: RequiredController[],
): Promise<void> {
  const rel = path.relative(mountpoint, leaf);
  const parts = rel === '' ? [] : rel.split(path.sep);
  const ancestors = [mountpoint];
  for (let i = 0; i < parts.length - 1; i++) ancestors.push(path.join(mountpoint, ...parts.slice(0, i + 1)));
  const want = [...new Set([...wanted, ...required.map((r) => r.name)])];
  for (const dir of ancestors) {
    const available = await readControllers(cfs, dir);
    const enabled = words(await readOptional(cfs, path.join(dir, 'cgroup.subtree_control')));
    const missing = want.filter((c) => available.includes(c) && !enabled.includes(c));
    if (missing.length === 0) continue;
    const file = path.join(dir, 'cgroup.subtree_control');
    try {
      await cfs.write(file, missing.map((c) => `+${c}`).join(' '));
    } catch {
      // One by one: some may be refused (e.g. a threaded subtree); the check below reports
      // the ones that matter.
      for (const c of missing) await cfs.write(file, `+${c}`).catch(() => undefined);
    }
  }
  if (required.length === 0) return;
  const have = await readControllers(cfs, leaf);
  for (const req of required) {
    if (have.includes(req.name)) continue;
    throw new FailedPreconditionError(
      `${req.field}: the ${req.name} cgroup controller is not available in ${leaf} ` +
        `(it must be enabled in cgroup.subtree_control of every parent; a parent with processes of its own cannot delegate it)`,
    );
  }
}
