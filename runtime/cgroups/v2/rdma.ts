// v2 rdma: rdma.max, same format as v1.

import { rdmaLines } from '../v1/rdma';
import { writeTo, type V2Controller } from './controller';

export const rdmaController: V2Controller = {
  name: 'rdma',
  needsToHandle: (r) => rdmaLines(r).length > 0,
  field: () => 'linux.resources.rdma',
  async apply(dir, r, ctx) {
    for (const { device, line } of rdmaLines(r)) {
      await writeTo(ctx, dir, 'rdma.max', line, `linux.resources.rdma.${device}`);
    }
  },
};
