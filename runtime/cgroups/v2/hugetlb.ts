// v2 hugetlb: hugetlb.<size>.max per page size. Also used by the v1 driver on hybrid hosts
// where hugetlb lives in the unified tree.

import { writeTo, type V2Controller } from './controller';

export const hugetlbController: V2Controller = {
  name: 'hugetlb',
  needsToHandle: (r) => (r.hugepageLimits ?? []).length > 0,
  field: () => 'linux.resources.hugepageLimits',
  async apply(dir, r, ctx) {
    for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
      await writeTo(ctx, dir, `hugetlb.${h.pageSize}.max`, String(h.limit), `linux.resources.hugepageLimits[${i}].limit`);
    }
  },
};
