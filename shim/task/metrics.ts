// Stats → the Any containerd and CRI expect: io.containerd.cgroups.v1.Metrics on a v1 (or
// hybrid) host, io.containerd.cgroups.v2.Metrics on a unified one, with bare type URLs (an
// unknown URL fails CRI's ListContainerStats for every container). Filled from the runtime
// library's runc-shaped CgroupStats.
import type { CgroupStats } from '../../runtime/cgroups/manager';
import { anyOf, type Any, type ProtoInput, type ProtoTypes } from '../proto';

type V1 = ProtoInput<ProtoTypes['io.containerd.cgroups.v1.Metrics']>;
type V2 = ProtoInput<ProtoTypes['io.containerd.cgroups.v2.Metrics']>;

/** uint64 fields: "max" (2^64-1) does not survive a JS number, so it goes as a decimal string. */
function u64(n: number | undefined): number {
  if (n === undefined || !Number.isFinite(n) || n < 0) return 0;
  if (n >= 18446744073709551615) return '18446744073709551615' as unknown as number;
  return Math.round(n);
}

const V1_MEMORY_KEYS = [
  'cache',
  'rss',
  'rss_huge',
  'mapped_file',
  'dirty',
  'writeback',
  'inactive_anon',
  'active_anon',
  'inactive_file',
  'active_file',
  'unevictable',
  'hierarchical_memory_limit',
  'total_cache',
  'total_rss',
  'total_rss_huge',
  'total_mapped_file',
  'total_dirty',
  'total_writeback',
  'total_inactive_anon',
  'total_active_anon',
  'total_inactive_file',
  'total_active_file',
  'total_unevictable',
] as const;

/** memory.stat names whose proto field is spelled differently. */
const V1_RENAMED: Record<string, string> = {
  pgpgin: 'pg_pg_in',
  pgpgout: 'pg_pg_out',
  pgfault: 'pg_fault',
  pgmajfault: 'pg_maj_fault',
  hierarchical_memsw_limit: 'hierarchical_swap_limit',
  total_pgpgin: 'total_pg_pg_in',
  total_pgpgout: 'total_pg_pg_out',
  total_pgfault: 'total_pg_fault',
  total_pgmajfault: 'total_pg_maj_fault',
};

export function v1Metrics(s: CgroupStats): V1 {
  const raw = s.memory.raw;
  const memory: Record<string, unknown> = {};
  for (const k of V1_MEMORY_KEYS) memory[k] = u64(raw[k]);
  for (const [from, to] of Object.entries(V1_RENAMED)) memory[to] = u64(raw[from]);
  const entry = (e: CgroupStats['memory']['usage']) => ({ limit: u64(e.limit), usage: u64(e.usage), max: u64(e.max), failcnt: u64(e.failcnt) });
  memory.usage = entry(s.memory.usage);
  memory.swap = entry(s.memory.swap);
  memory.kernel = entry(s.memory.kernel);
  memory.kernel_tcp = entry(s.memory.kernelTCP);
  const blk = (entries: CgroupStats['blkio']['ioServiceBytesRecursive']) =>
    entries.map((e) => ({ op: e.op, device: '', major: e.major, minor: e.minor, value: u64(e.value) }));
  return {
    pids: { current: u64(s.pids.current), limit: u64(s.pids.limit) },
    cpu: {
      usage: {
        total: u64(s.cpu.usage.total),
        kernel: u64(s.cpu.usage.kernel),
        user: u64(s.cpu.usage.user),
        per_cpu: s.cpu.usage.percpu.map(u64),
      },
      throttling: {
        periods: u64(s.cpu.throttling.periods),
        throttled_periods: u64(s.cpu.throttling.throttledPeriods),
        throttled_time: u64(s.cpu.throttling.throttledTime),
      },
    },
    memory: memory as V1['memory'],
    blkio: {
      io_service_bytes_recursive: blk(s.blkio.ioServiceBytesRecursive),
      io_serviced_recursive: blk(s.blkio.ioServicedRecursive),
      io_queued_recursive: blk(s.blkio.ioQueueRecursive),
      io_service_time_recursive: blk(s.blkio.ioServiceTimeRecursive),
      io_wait_time_recursive: blk(s.blkio.ioWaitTimeRecursive),
      io_merged_recursive: blk(s.blkio.ioMergedRecursive),
      io_time_recursive: blk(s.blkio.ioTimeRecursive),
      sectors_recursive: blk(s.blkio.sectorsRecursive),
    },
    hugetlb: Object.entries(s.hugetlb).map(([pagesize, h]) => ({ pagesize, usage: u64(h.usage), max: u64(h.max), failcnt: u64(h.failcnt) })),
    memory_oom_control: { oom_kill: u64(s.memory.oomKill) },
  };
}

const V2_MEMORY_KEYS = [
  'anon',
  'file',
  'kernel_stack',
  'slab',
  'sock',
  'shmem',
  'file_mapped',
  'file_dirty',
  'file_writeback',
  'anon_thp',
  'inactive_anon',
  'active_anon',
  'inactive_file',
  'active_file',
  'unevictable',
  'slab_reclaimable',
  'slab_unreclaimable',
  'pgfault',
  'pgmajfault',
  'workingset_refault',
  'workingset_activate',
  'workingset_nodereclaim',
  'pgrefill',
  'pgscan',
  'pgsteal',
  'pgactivate',
  'pgdeactivate',
  'pglazyfree',
  'pglazyfreed',
  'thp_fault_alloc',
  'thp_collapse_alloc',
] as const;

export function v2Metrics(s: CgroupStats): V2 {
  const raw = s.memory.raw;
  const memory: Record<string, unknown> = {};
  for (const k of V2_MEMORY_KEYS) memory[k] = u64(raw[k]);
  memory.usage = u64(s.memory.usage.usage);
  memory.usage_limit = u64(s.memory.usage.limit);
  memory.max_usage = u64(s.memory.usage.max);
  // CgroupStats keeps v1's memory+swap convention; v2 wants swap alone.
  memory.swap_usage = u64(Math.max(0, s.memory.swap.usage - s.memory.usage.usage));
  memory.swap_limit = u64(s.memory.swap.limit >= 18446744073709551615 ? s.memory.swap.limit : Math.max(0, s.memory.swap.limit - s.memory.usage.limit));
  memory.swap_max_usage = u64(s.memory.swap.max);
  const io = new Map<string, { major: number; minor: number; rbytes: number; wbytes: number; rios: number; wios: number }>();
  const dev = (major: number, minor: number) => {
    const key = `${major}:${minor}`;
    let e = io.get(key);
    if (!e) io.set(key, (e = { major, minor, rbytes: 0, wbytes: 0, rios: 0, wios: 0 }));
    return e;
  };
  for (const e of s.blkio.ioServiceBytesRecursive) {
    if (e.op === 'Read') dev(e.major, e.minor).rbytes += e.value;
    if (e.op === 'Write') dev(e.major, e.minor).wbytes += e.value;
  }
  for (const e of s.blkio.ioServicedRecursive) {
    if (e.op === 'Read') dev(e.major, e.minor).rios += e.value;
    if (e.op === 'Write') dev(e.major, e.minor).wios += e.value;
  }
  return {
    pids: { current: u64(s.pids.current), limit: u64(s.pids.limit) },
    cpu: {
      usage_usec: u64(s.cpu.usage.total / 1000),
      user_usec: u64(s.cpu.usage.user / 1000),
      system_usec: u64(s.cpu.usage.kernel / 1000),
      nr_periods: u64(s.cpu.throttling.periods),
      nr_throttled: u64(s.cpu.throttling.throttledPeriods),
      throttled_usec: u64(s.cpu.throttling.throttledTime / 1000),
    },
    memory: memory as V2['memory'],
    io: { usage: [...io.values()].map((e) => ({ ...e, rbytes: u64(e.rbytes), wbytes: u64(e.wbytes), rios: u64(e.rios), wios: u64(e.wios) })) },
    hugetlb: Object.entries(s.hugetlb).map(([pagesize, h]) => ({ pagesize, current: u64(h.usage), max: u64(h.max) })),
    memory_events: { oom_kill: u64(s.memory.oomKill), max: u64(s.memory.usage.failcnt) },
  };
}

/** The Stats Any for a cgroup driver mode. */
export function metricsAny(mode: 'v1' | 'v2', s: CgroupStats): Any {
  return mode === 'v2' ? anyOf('io.containerd.cgroups.v2.Metrics', v2Metrics(s)) : anyOf('io.containerd.cgroups.v1.Metrics', v1Metrics(s));
}
