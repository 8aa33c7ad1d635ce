// v2 cpuset: cpuset.cpus / cpuset.mems (empty means "inherit", so nothing to copy).

import { writeTo, type V2Controller } from './controller';

const F = 'linux.resources.cpu';

export const cpusetController: V2Controller = {
  name: 'cpuset',
  needsToHandle: (r) => (r.cpu?.cpus ?? '').trim() !== '' || (r.cpu?.mems ?? '').trim() !== '',
  field: (r) => ((r.cpu?.cpus ?? '').trim() !== '' ? `${F}.cpus` : `${F}.mems`),
  async apply(dir, r, ctx) {
    const cpus = (r.cpu?.cpus ?? '').trim();
    const mems = (r.cpu?.mems ?? '').trim();
    if (cpus !== '') await writeTo(ctx, dir, 'cpuset.cpus', cpus, `${F}.cpus`);
    if (mems !== '') await writeTo(ctx, dir, 'cpuset.mems', mems, `${F}.mems`);
  },
};
