// When a shim daemon may go back to the pool (shim/daemon/reuse.ts), and which cgroup.procs
// the cgroup-migration warm-up writes (runtime/cgroups/migration-warmup.ts).
import { ownProcsFile } from '../../runtime/cgroups/migration-warmup';
import { DEFAULT_MAX_REUSES, maxReuses, ReusePolicy } from '../../shim/daemon/reuse';

describe('maxReuses (VKERNEL_SHIM_REUSE)', () => {
  it.each([
    [undefined, DEFAULT_MAX_REUSES],
    ['', DEFAULT_MAX_REUSES],
    ['0', 0],
    ['7', 7],
    ['-1', DEFAULT_MAX_REUSES],
    ['1.5', DEFAULT_MAX_REUSES],
    ['many', DEFAULT_MAX_REUSES],
  ])('%p → %p', (env, want) => expect(maxReuses(env)).toBe(want));
});

describe('ReusePolicy', () => {
  it('allows reuse until the limit, then refuses with the count', () => {
    const p = new ReusePolicy(2);
    expect(p.refusal()).toBeUndefined();
    p.count = 2;
    expect(p.refusal()).toBe('reused 2 times (limit 2)');
  });

  it('a limit of 0 never reuses', () => {
    expect(new ReusePolicy(0).refusal()).toBe('reused 0 times (limit 0)');
  });

  it('refuses after the RSS grew by more than 32 MiB and a collection did not give it back', () => {
    const p = new ReusePolicy(10);
    const spy = jest.spyOn(process.memoryUsage, 'rss').mockReturnValue(process.memoryUsage.rss() + 64 * 2 ** 20);
    const collect = jest.fn();
    try {
      expect(p.refusal(collect)).toMatch(/^RSS grew by \d+\.\d MiB \(limit 32 MiB\)$/);
      expect(collect).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('garbage is no reason: RSS given back by the collection allows reuse', () => {
    const p = new ReusePolicy(10);
    const base = process.memoryUsage.rss();
    let rss = base + 64 * 2 ** 20;
    const spy = jest.spyOn(process.memoryUsage, 'rss').mockImplementation(() => rss);
    try {
      expect(p.refusal(() => void (rss = base + 2 ** 20))).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });

  it('collects only when the RSS looks grown', () => {
    const collect = jest.fn();
    expect(new ReusePolicy(10).refusal(collect)).toBeUndefined();
    expect(collect).not.toHaveBeenCalled();
  });
});

const HYBRID_MOUNTS = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');

describe('ownProcsFile', () => {
  it('prefers the unified hierarchy: our own cgroup there', () => {
    expect(ownProcsFile('4:memory:/a/b\n1:cpu:/\n0::/shim\n', HYBRID_MOUNTS)).toBe('/sys/fs/cgroup/unified/shim/cgroup.procs');
  });

  it('a pure v2 host', () => {
    const mounts = '30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate';
    expect(ownProcsFile('0::/system.slice/containerd.service\n', mounts)).toBe('/sys/fs/cgroup/system.slice/containerd.service/cgroup.procs');
  });

  it('v1 only: the first hierarchy we are listed in', () => {
    const mounts = HYBRID_MOUNTS.split('\n').filter((l) => !l.includes('cgroup2')).join('\n');
    expect(ownProcsFile('4:memory:/a/b\n1:cpu:/x\n', mounts)).toBe('/sys/fs/cgroup/cpu/x/cgroup.procs');
  });

  it('skips hierarchies mounted from below their root (a cgroup namespace): our path is not theirs', () => {
    const mounts = '41 31 0:38 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw';
    expect(ownProcsFile('0::/\n', mounts)).toBeUndefined();
  });

  it('no cgroupfs at all', () => {
    expect(ownProcsFile('0::/\n', '22 1 0:21 / /proc rw - proc proc rw')).toBeUndefined();
  });
});
