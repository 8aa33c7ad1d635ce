// v2 linux.resources.unified: key/value pairs written verbatim to <cgroup>/<key>, after
// everything else (so they override). Keys were validated (a file name, CONTROLLER.PARAM);
// a write failing because the controller is not enabled is reported as such.

import * as path from 'node:path';
import { FailedPreconditionError } from '../../errors';
import { errnoCode, readOptional } from '../fs';
import { writeTo, type V2Controller } from './controller';

/** The controllers the unified keys need ("memory.high" → memory); "cgroup.*" needs none. */
export function unifiedControllers(unified: Record<string, string> | undefined): string[] {
  const out = new Set<string>();
  for (const key of Object.keys(unified ?? {})) {
    const c = key.split('.')[0];
    if (c !== 'cgroup' && c !== '') out.add(c);
  }
  return [...out];
}

export const unifiedController: V2Controller = {
  name: '',
  needsToHandle: (r) => Object.keys(r.unified ?? {}).length > 0,
  field: () => 'linux.resources.unified',
  async apply(dir, r, ctx) {
    for (const [key, value] of Object.entries(r.unified ?? {})) {
      const field = `linux.resources.unified.${key}`;
      try {
        await writeTo(ctx, dir, key, value, field);
      } catch (err) {
        const code = errnoCode((err as { cause?: unknown }).cause);
        if (code === 'ENOENT' || code === 'EPERM' || code === 'EACCES') {
          const ctrl = key.split('.')[0];
          const available = ((await readOptional(ctx.fs, path.join(dir, 'cgroup.controllers'))) ?? '').split(/\s+/);
          if (ctrl !== 'cgroup' && !available.includes(ctrl)) {
            throw new FailedPreconditionError(
              `${field}: can't be set: controller ${ctrl} is not available in ${dir} (cgroup.controllers: ${available.join(' ').trim() || 'none'})`,
              { cause: err },
            );
          }
        }
        throw err;
      }
    }
  },
};
