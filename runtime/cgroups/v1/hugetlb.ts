// v1 hugetlb: hugetlb.<size>.limit_in_bytes per page size. (Not mounted on hybrid hosts
// that moved hugetlb to the unified tree: the manager then uses v2/hugetlb there.)

import { writeTo, type V1Controller } from './controller';

export const hugetlbController: V1Controller = {
  name: 'hugetlb',
  needsToHandle: (r) => (r.hugepageLimits ?? []).length > 0,
  field: () => 'linux.resources.hugepageLimits',
  async apply(dir, r, ctx) {
    for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
      await writeTo(ctx, dir, `hugetlb.${h.pageSize}.limit_in_bytes`, String(h.limit), `linux.resources.hugepageLimits[${i}].limit`);
    }
  },
};
