// Cgroup statistics for both hierarchies, typed in the shape of runc's `events --stats`
// (runc types/events.go, JSON key names kept) so the CLI can print it as runc does.
// Missing files (controller not mounted or not enabled, kernel lacking a knob) read as 0.
// Numbers are JS numbers: kernel values above 2^53 (v1's "unlimited" 9223372036854771712,
// v2's "max" → 2^64-1) lose their last digits.

import * as path from 'node:path';
import { parseFlatKeyed, parseNumOrMax, readOptional, readPidsRecursive, type CgroupFs } from './fs';
import { parseCpuList } from './validate';

export const MAX_UINT64 = 18446744073709551615;

export interface CpuUsage {
  /** nanoseconds */
  total: number;
  percpu: number[];
  percpu_kernel: number[];
  percpu_user: number[];
  kernel: number;
  user: number;
}

export interface Throttling {
  periods: number;
  throttledPeriods: number;
  /** nanoseconds */
  throttledTime: number;
}

export interface CpuStats {
  usage: CpuUsage;
  throttling: Throttling;
}

export interface MemoryEntry {
  limit: number;
  usage: number;
  max: number;
  failcnt: number;
}

export interface MemoryStats {
  /** Page cache (v1 total_cache, v2 file). */
  cache: number;
  /** Anonymous memory (v1 total_rss, v2 anon). */
  rss: number;
  usage: MemoryEntry;
  /** memory+swap, as v1 reports it (v2 values are converted). */
  swap: MemoryEntry;
  kernel: MemoryEntry;
  kernelTCP: MemoryEntry;
  /** OOM kills in this cgroup (v1 memory.oom_control oom_kill, v2 memory.events oom_kill). */
  oomKill: number;
  raw: Record<string, number>;
}

export interface PidsStats {
  current: number;
  /** 0 = no limit (runc). */
  limit: number;
}

export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

export interface BlkioStats {
  ioServiceBytesRecursive: BlkioEntry[];
  ioServicedRecursive: BlkioEntry[];
  ioQueueRecursive: BlkioEntry[];
  ioServiceTimeRecursive: BlkioEntry[];
  ioWaitTimeRecursive: BlkioEntry[];
  ioMergedRecursive: BlkioEntry[];
  ioTimeRecursive: BlkioEntry[];
  sectorsRecursive: BlkioEntry[];
}

export interface HugetlbStats {
  usage: number;
  max: number;
  failcnt: number;
}

export interface CpusetStats {
  cpus: number[];
  mems: number[];
}

export interface CgroupStats {
  cpu: CpuStats;
  cpuset: CpusetStats;
  memory: MemoryStats;
  pids: PidsStats;
  blkio: BlkioStats;
  /** Keyed by page size ("2MB"). */
  hugetlb: Record<string, HugetlbStats>;
}

const emptyEntry = (): MemoryEntry => ({ limit: 0, usage: 0, max: 0, failcnt: 0 });

export function emptyStats(): CgroupStats {
  return {
    cpu: {
      usage: { total: 0, percpu: [], percpu_kernel: [], percpu_user: [], kernel: 0, user: 0 },
      throttling: { periods: 0, throttledPeriods: 0, throttledTime: 0 },
    },
    cpuset: { cpus: [], mems: [] },
    memory: {
      cache: 0,
      rss: 0,
      usage: emptyEntry(),
      swap: emptyEntry(),
      kernel: emptyEntry(),
      kernelTCP: emptyEntry(),
      oomKill: 0,
      raw: {},
    },
    pids: { current: 0, limit: 0 },
    blkio: {
      ioServiceBytesRecursive: [],
      ioServicedRecursive: [],
      ioQueueRecursive: [],
      ioServiceTimeRecursive: [],
      ioWaitTimeRecursive: [],
      ioMergedRecursive: [],
      ioTimeRecursive: [],
      sectorsRecursive: [],
    },
    hugetlb: {},
  };
}

async function num(cfs: CgroupFs, file: string, maxValue = MAX_UINT64): Promise<number> {
  return parseNumOrMax(await readOptional(cfs, file), maxValue);
}

async function keyed(cfs: CgroupFs, file: string): Promise<Map<string, number>> {
  const text = await readOptional(cfs, file);
  return text === undefined ? new Map() : parseFlatKeyed(text);
}

function numbers(text: string | undefined): number[] {
  if (text === undefined) return [];
  return text
    .trim()
    .split(/\s+/)
    .filter((s) => s !== '')
    .map(Number);
}

function list(text: string | undefined): number[] {
  if (text === undefined) return [];
  try {
    return [...parseCpuList(text)].sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** USER_HZ: cpuacct.stat counts clock ticks. */
const CLOCK_TICKS = 100;
const NS_PER_TICK = 1e9 / CLOCK_TICKS;

/** "8:0 Read 4096" lines (v1 blkio *_recursive files); "Total" lines are dropped. */
export function parseBlkioFile(text: string | undefined): BlkioEntry[] {
  if (text === undefined) return [];
  const out: BlkioEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 3) {
      const m = /^(\d+):(\d+)$/.exec(f[0]);
      if (!m) continue;
      out.push({ major: Number(m[1]), minor: Number(m[2]), op: f[1], value: Number(f[2]) });
    } else if (f.length === 2 && /^(\d+):(\d+)$/.test(f[0])) {
      // sectors / time files: "8:0 1234"
      const m = /^(\d+):(\d+)$/.exec(f[0]) as RegExpExecArray;
      out.push({ major: Number(m[1]), minor: Number(m[2]), op: '', value: Number(f[1]) });
    }
  }
  return out;
}

/** v2 io.stat → runc's blkio shape (rbytes/wbytes → service bytes, rios/wios → serviced). */
export function parseIoStat(text: string | undefined): Pick<BlkioStats, 'ioServiceBytesRecursive' | 'ioServicedRecursive'> {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(f[0] ?? '');
    if (!m) continue;
    const major = Number(m[1]);
    const minor = Number(m[2]);
    for (const kv of f.slice(1)) {
      const [k, v] = kv.split('=');
      const value = Number(v);
      if (!Number.isFinite(value)) continue;
      if (k === 'rbytes') bytes.push({ major, minor, op: 'Read', value });
      else if (k === 'wbytes') bytes.push({ major, minor, op: 'Write', value });
      else if (k === 'rios') ios.push({ major, minor, op: 'Read', value });
      else if (k === 'wios') ios.push({ major, minor, op: 'Write', value });
    }
  }
  return { ioServiceBytesRecursive: bytes, ioServicedRecursive: ios };
}

function rawRecord(m: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of m) out[k] = v;
  return out;
}

/** Paths of a v1 container cgroup, by controller; `unified` is the hybrid v2 directory. */
export interface V1StatPaths {
  paths: Record<string, string>;
  unified?: string;
  hugePageSizes: string[];
}

export async function readV1Stats(cfs: CgroupFs, p: V1StatPaths): Promise<CgroupStats> {
  const s = emptyStats();
  const at = (ctrl: string, file: string): string | undefined =>
    p.paths[ctrl] === undefined ? undefined : path.join(p.paths[ctrl], file);
  const read = async (ctrl: string, file: string) => {
    const f = at(ctrl, file);
    return f === undefined ? undefined : readOptional(cfs, f);
  };
  const n = async (ctrl: string, file: string) => {
    const f = at(ctrl, file);
    return f === undefined ? 0 : num(cfs, f);
  };

  // cpu / cpuacct
  s.cpu.usage.total = await n('cpuacct', 'cpuacct.usage');
  s.cpu.usage.percpu = numbers(await read('cpuacct', 'cpuacct.usage_percpu'));
  const all = await read('cpuacct', 'cpuacct.usage_all');
  if (all !== undefined) {
    for (const line of all.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length !== 3) continue;
      s.cpu.usage.percpu_user.push(Number(f[1]));
      s.cpu.usage.percpu_kernel.push(Number(f[2]));
    }
  }
  const acctStat = parseFlatKeyed((await read('cpuacct', 'cpuacct.stat')) ?? '');
  s.cpu.usage.user = (acctStat.get('user') ?? 0) * NS_PER_TICK;
  s.cpu.usage.kernel = (acctStat.get('system') ?? 0) * NS_PER_TICK;
  const cpuStat = parseFlatKeyed((await read('cpu', 'cpu.stat')) ?? '');
  s.cpu.throttling = {
    periods: cpuStat.get('nr_periods') ?? 0,
    throttledPeriods: cpuStat.get('nr_throttled') ?? 0,
    throttledTime: cpuStat.get('throttled_time') ?? 0,
  };

  // cpuset
  s.cpuset.cpus = list(await read('cpuset', 'cpuset.cpus'));
  s.cpuset.mems = list(await read('cpuset', 'cpuset.mems'));

  // memory
  if (p.paths.memory !== undefined) {
    const entry = async (prefix: string): Promise<MemoryEntry> => ({
      usage: await n('memory', `${prefix}usage_in_bytes`),
      max: await n('memory', `${prefix}max_usage_in_bytes`),
      failcnt: await n('memory', `${prefix}failcnt`),
      limit: await n('memory', `${prefix}limit_in_bytes`),
    });
    s.memory.usage = await entry('memory.');
    s.memory.swap = await entry('memory.memsw.');
    s.memory.kernel = await entry('memory.kmem.');
    s.memory.kernelTCP = await entry('memory.kmem.tcp.');
    const stat = parseFlatKeyed((await read('memory', 'memory.stat')) ?? '');
    s.memory.raw = rawRecord(stat);
    s.memory.cache = stat.get('total_cache') ?? stat.get('cache') ?? 0;
    s.memory.rss = stat.get('total_rss') ?? stat.get('rss') ?? 0;
    s.memory.oomKill = parseFlatKeyed((await read('memory', 'memory.oom_control')) ?? '').get('oom_kill') ?? 0;
  }

  // pids
  if (p.paths.pids !== undefined) {
    s.pids.current = await n('pids', 'pids.current');
    s.pids.limit = parseNumOrMax(await read('pids', 'pids.max'), 0);
  }

  // blkio: CFQ files, else BFQ when it has data, else the throttle layer (runc's order).
  if (p.paths.blkio !== undefined) {
    const pick = async (name: string): Promise<BlkioEntry[]> => {
      for (const prefix of ['blkio.', 'blkio.bfq.', 'blkio.throttle.']) {
        const text = await read('blkio', `${prefix}${name}`);
        if (text === undefined) continue;
        const entries = parseBlkioFile(text);
        if (entries.length > 0 || prefix === 'blkio.throttle.') return entries;
      }
      return [];
    };
    s.blkio.ioServiceBytesRecursive = await pick('io_service_bytes_recursive');
    s.blkio.ioServicedRecursive = await pick('io_serviced_recursive');
    s.blkio.ioQueueRecursive = parseBlkioFile(await read('blkio', 'blkio.io_queued_recursive'));
    s.blkio.ioServiceTimeRecursive = parseBlkioFile(await read('blkio', 'blkio.io_service_time_recursive'));
    s.blkio.ioWaitTimeRecursive = parseBlkioFile(await read('blkio', 'blkio.io_wait_time_recursive'));
    s.blkio.ioMergedRecursive = parseBlkioFile(await read('blkio', 'blkio.io_merged_recursive'));
    s.blkio.ioTimeRecursive = parseBlkioFile(await read('blkio', 'blkio.time_recursive'));
    s.blkio.sectorsRecursive = parseBlkioFile(await read('blkio', 'blkio.sectors_recursive'));
  }

  // hugetlb: the v1 controller, or (hybrid) the unified tree.
  for (const size of p.hugePageSizes) {
    if (p.paths.hugetlb !== undefined) {
      s.hugetlb[size] = {
        usage: await n('hugetlb', `hugetlb.${size}.usage_in_bytes`),
        max: await n('hugetlb', `hugetlb.${size}.max_usage_in_bytes`),
        failcnt: await n('hugetlb', `hugetlb.${size}.failcnt`),
      };
    } else if (p.unified !== undefined && (await cfs.exists(path.join(p.unified, `hugetlb.${size}.current`)))) {
      s.hugetlb[size] = await v2Hugetlb(cfs, p.unified, size);
    }
  }
  return s;
}

async function v2Hugetlb(cfs: CgroupFs, dir: string, size: string): Promise<HugetlbStats> {
  return {
    usage: await num(cfs, path.join(dir, `hugetlb.${size}.current`)),
    max: 0,
    failcnt: (await keyed(cfs, path.join(dir, `hugetlb.${size}.events`))).get('max') ?? 0,
  };
}

export async function readV2Stats(cfs: CgroupFs, dir: string, hugePageSizes: string[]): Promise<CgroupStats> {
  const s = emptyStats();
  const f = (name: string) => path.join(dir, name);

  const cpu = await keyed(cfs, f('cpu.stat'));
  s.cpu.usage.total = (cpu.get('usage_usec') ?? 0) * 1000;
  s.cpu.usage.user = (cpu.get('user_usec') ?? 0) * 1000;
  s.cpu.usage.kernel = (cpu.get('system_usec') ?? 0) * 1000;
  s.cpu.throttling = {
    periods: cpu.get('nr_periods') ?? 0,
    throttledPeriods: cpu.get('nr_throttled') ?? 0,
    throttledTime: (cpu.get('throttled_usec') ?? 0) * 1000,
  };

  s.cpuset.cpus = list(await readOptional(cfs, f('cpuset.cpus.effective')));
  s.cpuset.mems = list(await readOptional(cfs, f('cpuset.mems.effective')));

  const events = await keyed(cfs, f('memory.events'));
  const usage = await num(cfs, f('memory.current'));
  const limit = await num(cfs, f('memory.max'));
  s.memory.usage = { usage, limit, max: await num(cfs, f('memory.peak')), failcnt: events.get('max') ?? 0 };
  const swapLimit = await num(cfs, f('memory.swap.max'));
  // v1 reports swap as memory+swap: do the same.
  s.memory.swap = {
    usage: (await num(cfs, f('memory.swap.current'))) + usage,
    limit: swapLimit === MAX_UINT64 || limit === MAX_UINT64 ? MAX_UINT64 : swapLimit + limit,
    max: await num(cfs, f('memory.swap.peak')),
    failcnt: (await keyed(cfs, f('memory.swap.events'))).get('max') ?? 0,
  };
  const stat = await keyed(cfs, f('memory.stat'));
  s.memory.raw = rawRecord(stat);
  s.memory.cache = stat.get('file') ?? 0;
  s.memory.rss = stat.get('anon') ?? 0;
  s.memory.kernel = { ...emptyEntry(), usage: stat.get('kernel') ?? 0 };
  s.memory.kernelTCP = { ...emptyEntry(), usage: stat.get('sock') ?? 0 };
  s.memory.oomKill = events.get('oom_kill') ?? 0;

  const pidsCurrent = await readOptional(cfs, f('pids.current'));
  if (pidsCurrent !== undefined) {
    s.pids.current = parseNumOrMax(pidsCurrent, 0);
    s.pids.limit = parseNumOrMax(await readOptional(cfs, f('pids.max')), 0);
  } else {
    // pids controller not enabled: count the processes (runc does the same).
    s.pids.current = (await readPidsRecursive(cfs, dir)).length;
  }

  const io = parseIoStat(await readOptional(cfs, f('io.stat')));
  s.blkio.ioServiceBytesRecursive = io.ioServiceBytesRecursive;
  s.blkio.ioServicedRecursive = io.ioServicedRecursive;

  for (const size of hugePageSizes) {
    if (await cfs.exists(f(`hugetlb.${size}.current`))) s.hugetlb[size] = await v2Hugetlb(cfs, dir, size);
  }
  return s;
}
