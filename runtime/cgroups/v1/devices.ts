// v1 devices: compute the transition from the cgroup's current devices.list to the target
// (user rules, then runc's default allow list) with runc's emulator and write it: for a new
// cgroup that is "a *:* rwm" to devices.deny, then each allow in runc's order. Afterwards
// devices.list is read back and must match (runc's final safety check).

import * as path from 'node:path';
import { InternalError } from '../../errors';
import { DeviceEmulator, deviceRuleString, effectiveDeviceRules } from '../device-rules';
import { readRequired } from '../fs';
import { writeTo, type V1Controller } from './controller';

const F = 'linux.resources.devices';

export const devicesController: V1Controller = {
  name: 'devices',
  needsToHandle: (r) => r.devices !== undefined,
  field: () => F,
  async apply(dir, r, ctx) {
    if (r.devices === undefined) return;
    const target = DeviceEmulator.fromRules(effectiveDeviceRules(r.devices));
    const listFile = path.join(dir, 'devices.list');
    const current = DeviceEmulator.fromList(await readRequired(ctx.fs, listFile));
    for (const rule of current.transition(target)) {
      await writeTo(ctx, dir, rule.allow ? 'devices.allow' : 'devices.deny', deviceRuleString(rule), F);
    }
    const after = DeviceEmulator.fromList(await readRequired(ctx.fs, listFile));
    if (!target.isBlacklist() && !after.equals(target)) {
      throw new InternalError(`${F}: the resulting devices cgroup ${listFile} does not match the requested rules`);
    }
    if (target.isBlacklist() !== after.isBlacklist()) {
      throw new InternalError(`${F}: the resulting devices cgroup ${listFile} is not in the requested mode`);
    }
  },
};
