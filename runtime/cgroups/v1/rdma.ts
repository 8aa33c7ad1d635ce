// rdma (v1 and v2 share the file format): rdma.max, one
// "<device> hca_handle=<n> hca_object=<n>" write per device.

import type { LinuxResources } from '../../spec/types';
import { writeTo, type V1Controller } from './controller';

export function rdmaLines(r: LinuxResources): { device: string; line: string }[] {
  const out: { device: string; line: string }[] = [];
  for (const [device, lim] of Object.entries(r.rdma ?? {})) {
    let line = device;
    if (lim.hcaHandles !== undefined) line += ` hca_handle=${lim.hcaHandles}`;
    if (lim.hcaObjects !== undefined) line += ` hca_object=${lim.hcaObjects}`;
    if (line !== device) out.push({ device, line });
  }
  return out;
}

export const rdmaController: V1Controller = {
  name: 'rdma',
  needsToHandle: (r) => rdmaLines(r).length > 0,
  field: () => 'linux.resources.rdma',
  async apply(dir, r, ctx) {
    for (const { device, line } of rdmaLines(r)) {
      await writeTo(ctx, dir, 'rdma.max', line, `linux.resources.rdma.${device}`);
    }
  },
};
