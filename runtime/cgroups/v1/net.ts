// v1 net_cls (classID → net_cls.classid) and net_prio (priorities → net_prio.ifpriomap,
// one "ifname prio" write per interface). Neither exists in cgroup v2.

import { writeTo, type V1Controller } from './controller';

const F = 'linux.resources.network';

export const netClsController: V1Controller = {
  name: 'net_cls',
  needsToHandle: (r) => r.network?.classID !== undefined && r.network.classID !== 0,
  field: () => `${F}.classID`,
  async apply(dir, r, ctx) {
    const id = r.network?.classID;
    if (id !== undefined && id !== 0) await writeTo(ctx, dir, 'net_cls.classid', String(id), `${F}.classID`);
  },
};

export const netPrioController: V1Controller = {
  name: 'net_prio',
  needsToHandle: (r) => (r.network?.priorities ?? []).length > 0,
  field: () => `${F}.priorities`,
  async apply(dir, r, ctx) {
    for (const [i, p] of (r.network?.priorities ?? []).entries()) {
      await writeTo(ctx, dir, 'net_prio.ifpriomap', `${p.name} ${p.priority}`, `${F}.priorities[${i}]`);
    }
  },
};
