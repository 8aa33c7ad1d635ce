// update: what a change carries from the stored resources (runc's update applies them whole).
import { mergeResources, withStoredChecks } from '../../runtime/container/update';

describe('update: the change and the stored resources', () => {
  const stored = { memory: { limit: 256, swap: 512, checkBeforeUpdate: true }, pids: { limit: 10 } };

  it('keeps checkBeforeUpdate and the memory+swap total when only the memory limit changes', () => {
    expect(withStoredChecks(stored, { memory: { limit: 300 } })).toEqual({ memory: { limit: 300, swap: 512, checkBeforeUpdate: true } });
  });

  it('never overrides what the change sets, and adds nothing to a change without memory', () => {
    expect(withStoredChecks(stored, { memory: { limit: 300, swap: 600, checkBeforeUpdate: false } })).toEqual({ memory: { limit: 300, swap: 600, checkBeforeUpdate: false } });
    expect(withStoredChecks(stored, { pids: { limit: 5 } })).toEqual({ pids: { limit: 5 } });
    expect(withStoredChecks({}, { memory: { limit: 300 } })).toEqual({ memory: { limit: 300 } });
  });

  it('a new limit above the stored total leaves swap alone (as runc 1.1), an unlimited total is carried', () => {
    expect(withStoredChecks(stored, { memory: { limit: 1024 } })).toEqual({ memory: { limit: 1024, checkBeforeUpdate: true } });
    expect(withStoredChecks({ memory: { limit: 256, swap: -1 } }, { memory: { limit: 1024 } })).toEqual({ memory: { limit: 1024, swap: -1 } });
  });

  it('a swappiness-only change does not carry the swap total', () => {
    expect(withStoredChecks(stored, { memory: { swappiness: 10 } })).toEqual({ memory: { swappiness: 10, checkBeforeUpdate: true } });
  });

  it('mergeResources merges one level deep per controller', () => {
    expect(mergeResources(stored, { memory: { limit: 300 }, cpu: { shares: 2 } })).toEqual({
      memory: { limit: 300, swap: 512, checkBeforeUpdate: true },
      pids: { limit: 10 },
      cpu: { shares: 2 },
    });
  });
});
