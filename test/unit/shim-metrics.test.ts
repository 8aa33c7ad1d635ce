// Stats → cgroups Metrics: the fields CRI reads survive an encode/decode round trip.
import { emptyStats } from '../../runtime/cgroups/stats';
import { decode } from '../../shim/proto';
import { metricsAny } from '../../shim/task';

function sample() {
  const s = emptyStats();
  s.cpu.usage.total = 3_000_000;
  s.cpu.usage.user = 2_000_000;
  s.cpu.usage.kernel = 1_000_000;
  s.cpu.usage.percpu = [1_500_000, 1_500_000];
  s.memory.usage = { usage: 8192, limit: 1 << 20, max: 9000, failcnt: 1 };
  s.memory.swap = { usage: 8192 + 100, limit: 18446744073709551615, max: 0, failcnt: 0 };
  s.memory.raw = { total_rss: 4096, total_cache: 2048, pgfault: 12, anon: 4096, file: 2048, inactive_file: 1024 };
  s.memory.oomKill = 2;
  s.pids = { current: 3, limit: 100 };
  s.blkio.ioServiceBytesRecursive = [{ major: 8, minor: 0, op: 'Read', value: 512 }];
  return s;
}

describe('metricsAny', () => {
  it('fills io.containerd.cgroups.v1.Metrics', () => {
    const any = metricsAny('v1', sample());
    expect(any.type_url).toBe('io.containerd.cgroups.v1.Metrics');
    const m = decode('io.containerd.cgroups.v1.Metrics', any.value);
    expect(m.cpu!.usage).toMatchObject({ total: 3_000_000, user: 2_000_000, kernel: 1_000_000, per_cpu: [1_500_000, 1_500_000] });
    expect(m.memory).toMatchObject({ total_rss: 4096, total_cache: 2048, pg_fault: 12 });
    expect(m.memory!.usage).toMatchObject({ usage: 8192, limit: 1 << 20 });
    expect(m.memory!.swap!.limit).toBe(18446744073709551615); // "max" survives (as the nearest double)
    expect(m.pids).toEqual({ current: 3, limit: 100 });
    expect(m.memory_oom_control!.oom_kill).toBe(2);
    expect(m.blkio!.io_service_bytes_recursive[0]).toMatchObject({ major: 8, op: 'Read', value: 512 });
  });

  it('fills io.containerd.cgroups.v2.Metrics', () => {
    const any = metricsAny('v2', sample());
    expect(any.type_url).toBe('io.containerd.cgroups.v2.Metrics');
    const m = decode('io.containerd.cgroups.v2.Metrics', any.value);
    expect(m.cpu).toMatchObject({ usage_usec: 3000, user_usec: 2000, system_usec: 1000 });
    expect(m.memory).toMatchObject({ usage: 8192, usage_limit: 1 << 20, anon: 4096, inactive_file: 1024, swap_usage: 100 });
    expect(m.pids!.current).toBe(3);
    expect(m.memory_events!.oom_kill).toBe(2);
    expect(m.io!.usage[0]).toMatchObject({ major: 8, minor: 0, rbytes: 512 });
  });
});
