// Validation of linux.resources before anything is created or written: every rejection is an
// InvalidArgumentError naming the field ("linux.resources.cpu.cpus: …"). Values that runc
// treats as "unset" (0 for most numbers, "" for cpus/mems) pass through untouched.

import { InvalidArgumentError, invalidField } from '../errors';
import type { LinuxResources, ThrottleDevice } from '../spec/types';
import type { Host } from './host';
import { deviceRulesFromOci } from './device-rules';

export type CgroupMode = 'v1' | 'v2';

export interface ValidationContext {
  mode: CgroupMode;
  host: Host;
  warn: (message: string) => void;
}

const F = 'linux.resources';

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function int(field: string, v: unknown, min: number, max = Number.MAX_VALUE, extra: number[] = []): number {
  if (!isInt(v)) throw invalidField(field, v, 'must be an integer');
  if (extra.includes(v)) return v;
  if (v < min || v > max) {
    const range = max === Number.MAX_VALUE ? `>= ${min}` : `between ${min} and ${max}`;
    const alt = extra.length ? ` or ${extra.join(', ')}` : '';
    throw invalidField(field, v, `must be ${range}${alt}`);
  }
  return v;
}

/**
 * Parse a kernel cpu/node list ("0-3,8,10-15:2/4") into its members. Throws a string reason
 * on bad syntax.
 */
export function parseCpuList(text: string): Set<number> {
  const out = new Set<number>();
  const t = text.trim();
  if (t === '') return out;
  for (const raw of t.split(',')) {
    const item = raw.trim();
    const m = /^(\d+)(?:-(\d+)(?::(\d+)\/(\d+))?)?$/.exec(item);
    if (!m) throw `invalid list element ${JSON.stringify(item)}`;
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a) throw `invalid range ${JSON.stringify(item)}`;
    const used = m[3] !== undefined ? Number(m[3]) : 1;
    const group = m[4] !== undefined ? Number(m[4]) : 1;
    if (group === 0 || used === 0 || used > group) throw `invalid group ${JSON.stringify(item)}`;
    if (b - a > 1 << 20) throw `range too large ${JSON.stringify(item)}`;
    for (let i = a; i <= b; i++) if ((i - a) % group < used) out.add(i);
  }
  return out;
}

export function formatCpuList(set: Iterable<number>): string {
  const sorted = [...set].sort((x, y) => x - y);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function checkList(field: string, value: unknown, online: string, what: string): void {
  if (typeof value !== 'string') throw invalidField(field, value, 'must be a string');
  if (value.trim() === '') return;
  let want: Set<number>;
  try {
    want = parseCpuList(value);
  } catch (reason) {
    throw invalidField(field, value, String(reason));
  }
  let have: Set<number>;
  try {
    have = parseCpuList(online);
  } catch {
    return; // cannot judge: leave it to the kernel
  }
  const missing = [...want].filter((c) => !have.has(c));
  if (missing.length > 0) {
    throw invalidField(
      field,
      value,
      `${what} ${formatCpuList(missing)} ${missing.length === 1 ? 'is' : 'are'} not online on this host (online: ${online})`,
    );
  }
}

function checkThrottle(field: string, list: ThrottleDevice[] | undefined): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) throw invalidField(field, list, 'must be an array');
  list.forEach((d, i) => {
    int(`${field}[${i}].major`, d.major, 0);
    int(`${field}[${i}].minor`, d.minor, 0);
    int(`${field}[${i}].rate`, d.rate, 0);
  });
}

const HUGEPAGE_SIZE_RE = /^\d+(KB|MB|GB|TB|PB)$/;

/** Throws InvalidArgumentError for the first bad field; warns about ignored ones. */
export function validateResources(r: LinuxResources | undefined, ctx: ValidationContext): void {
  if (r === undefined || r === null) return;
  if (typeof r !== 'object') throw invalidField(F, r, 'must be an object');

  const mem = r.memory;
  if (mem !== undefined) {
    const limit = mem.limit === undefined ? 0 : int(`${F}.memory.limit`, mem.limit, 0, Number.MAX_VALUE, [-1]);
    if (mem.reservation !== undefined) int(`${F}.memory.reservation`, mem.reservation, 0, Number.MAX_VALUE, [-1]);
    const swap = mem.swap === undefined ? 0 : int(`${F}.memory.swap`, mem.swap, 0, Number.MAX_VALUE, [-1]);
    if (swap > 0 && limit > 0 && swap < limit) {
      throw invalidField(`${F}.memory.swap`, swap, `memory+swap limit must be >= the memory limit ${limit}`);
    }
    if (ctx.mode === 'v2' && swap > 0 && limit <= 0) {
      throw invalidField(`${F}.memory.swap`, swap, 'unable to set a swap limit without a memory limit on cgroup v2');
    }
    if (mem.swappiness !== undefined) int(`${F}.memory.swappiness`, mem.swappiness, 0, 100, [-1]);
    if (mem.disableOOMKiller !== undefined && typeof mem.disableOOMKiller !== 'boolean') {
      throw invalidField(`${F}.memory.disableOOMKiller`, mem.disableOOMKiller, 'must be a boolean');
    }
    if (mem.kernel !== undefined) ctx.warn(`${F}.memory.kernel: kernel memory settings are ignored and will be removed`);
    if (mem.kernelTCP !== undefined) {
      ctx.warn(`${F}.memory.kernelTCP: kernel memory settings are ignored and will be removed`);
    }
    if (mem.useHierarchy === false) {
      ctx.warn(`${F}.memory.useHierarchy: ignored, the kernel always uses the memory hierarchy`);
    }
  }

  const cpu = r.cpu;
  if (cpu !== undefined) {
    if (cpu.shares !== undefined && cpu.shares !== 0) int(`${F}.cpu.shares`, cpu.shares, 2, 262144);
    if (cpu.quota !== undefined && cpu.quota !== 0) {
      int(`${F}.cpu.quota`, cpu.quota, -Number.MAX_VALUE, 2 ** 44 - 1);
      if (cpu.quota > 0 && cpu.quota < 1000) {
        throw invalidField(`${F}.cpu.quota`, cpu.quota, 'must be at least 1000 (1ms) or negative for no limit');
      }
    }
    if (cpu.period !== undefined && cpu.period !== 0) int(`${F}.cpu.period`, cpu.period, 1000, 1000000);
    if (cpu.burst !== undefined) int(`${F}.cpu.burst`, cpu.burst, 0, 2 ** 44 - 1);
    if (cpu.realtimeRuntime !== undefined) int(`${F}.cpu.realtimeRuntime`, cpu.realtimeRuntime, 0, Number.MAX_VALUE, [-1]);
    if (cpu.realtimePeriod !== undefined) int(`${F}.cpu.realtimePeriod`, cpu.realtimePeriod, 0);
    if (cpu.realtimeRuntime && cpu.realtimePeriod && cpu.realtimeRuntime > cpu.realtimePeriod) {
      throw invalidField(`${F}.cpu.realtimeRuntime`, cpu.realtimeRuntime, `must not exceed realtimePeriod ${cpu.realtimePeriod}`);
    }
    if (cpu.idle !== undefined) int(`${F}.cpu.idle`, cpu.idle, 0, 1);
    if (cpu.cpus !== undefined) checkList(`${F}.cpu.cpus`, cpu.cpus, ctx.host.onlineCpus(), 'cpu');
    if (cpu.mems !== undefined) checkList(`${F}.cpu.mems`, cpu.mems, ctx.host.onlineMems(), 'memory node');
    if (ctx.mode === 'v2') {
      if (cpu.realtimeRuntime) {
        throw invalidField(`${F}.cpu.realtimeRuntime`, cpu.realtimeRuntime, 'real-time group scheduling is not supported on cgroup v2');
      }
      if (cpu.realtimePeriod) {
        throw invalidField(`${F}.cpu.realtimePeriod`, cpu.realtimePeriod, 'real-time group scheduling is not supported on cgroup v2');
      }
    }
  }

  if (r.pids !== undefined) {
    if (r.pids === null || typeof r.pids !== 'object') throw invalidField(`${F}.pids`, r.pids, 'must be an object');
    int(`${F}.pids.limit`, r.pids.limit, -Number.MAX_VALUE);
  }

  const bio = r.blockIO;
  if (bio !== undefined) {
    if (bio.weight !== undefined && bio.weight !== 0) int(`${F}.blockIO.weight`, bio.weight, 10, 1000);
    if (bio.leafWeight !== undefined && bio.leafWeight !== 0) {
      int(`${F}.blockIO.leafWeight`, bio.leafWeight, 10, 1000);
      if (ctx.mode === 'v2') {
        throw invalidField(`${F}.blockIO.leafWeight`, bio.leafWeight, 'leaf weights are not supported on cgroup v2');
      }
    }
    (bio.weightDevice ?? []).forEach((d, i) => {
      const f = `${F}.blockIO.weightDevice[${i}]`;
      int(`${f}.major`, d.major, 0);
      int(`${f}.minor`, d.minor, 0);
      if (d.weight !== undefined && d.weight !== 0) int(`${f}.weight`, d.weight, 10, 1000);
      if (d.leafWeight !== undefined && d.leafWeight !== 0) {
        int(`${f}.leafWeight`, d.leafWeight, 10, 1000);
        if (ctx.mode === 'v2') throw invalidField(`${f}.leafWeight`, d.leafWeight, 'leaf weights are not supported on cgroup v2');
      }
    });
    checkThrottle(`${F}.blockIO.throttleReadBpsDevice`, bio.throttleReadBpsDevice);
    checkThrottle(`${F}.blockIO.throttleWriteBpsDevice`, bio.throttleWriteBpsDevice);
    checkThrottle(`${F}.blockIO.throttleReadIOPSDevice`, bio.throttleReadIOPSDevice);
    checkThrottle(`${F}.blockIO.throttleWriteIOPSDevice`, bio.throttleWriteIOPSDevice);
  }

  if (r.hugepageLimits !== undefined) {
    if (!Array.isArray(r.hugepageLimits)) throw invalidField(`${F}.hugepageLimits`, r.hugepageLimits, 'must be an array');
    const sizes = ctx.host.hugePageSizes();
    r.hugepageLimits.forEach((h, i) => {
      const f = `${F}.hugepageLimits[${i}]`;
      if (typeof h.pageSize !== 'string' || !HUGEPAGE_SIZE_RE.test(h.pageSize)) {
        throw invalidField(`${f}.pageSize`, h.pageSize, 'must be a size like "2MB" or "1GB"');
      }
      if (!sizes.includes(h.pageSize)) {
        throw invalidField(
          `${f}.pageSize`,
          h.pageSize,
          `huge page size not supported by this host (supported: ${sizes.length ? sizes.join(', ') : 'none'})`,
        );
      }
      int(`${f}.limit`, h.limit, 0);
    });
  }

  const net = r.network;
  if (net !== undefined) {
    if (net.classID !== undefined) int(`${F}.network.classID`, net.classID, 0, 0xffffffff);
    (net.priorities ?? []).forEach((p, i) => {
      const f = `${F}.network.priorities[${i}]`;
      if (typeof p.name !== 'string' || !/^[^\s/]+$/.test(p.name)) {
        throw invalidField(`${f}.name`, p.name, 'must be an interface name');
      }
      int(`${f}.priority`, p.priority, 0, 0xffffffff);
    });
  }

  if (r.rdma !== undefined) {
    if (r.rdma === null || typeof r.rdma !== 'object') throw invalidField(`${F}.rdma`, r.rdma, 'must be an object');
    for (const [dev, lim] of Object.entries(r.rdma)) {
      const f = `${F}.rdma.${dev}`;
      if (!/^[^\s=/]+$/.test(dev)) throw invalidField(f, dev, 'must be an rdma device name');
      if (lim.hcaHandles !== undefined) int(`${f}.hcaHandles`, lim.hcaHandles, 0, 0x7fffffff);
      if (lim.hcaObjects !== undefined) int(`${f}.hcaObjects`, lim.hcaObjects, 0, 0x7fffffff);
    }
  }

  if (r.unified !== undefined) {
    if (ctx.mode === 'v1') {
      throw new InvalidArgumentError(
        `${F}.unified: cannot use unified on cgroup v1 (this host uses the v1 hierarchies)`,
        `${F}.unified`,
      );
    }
    if (r.unified === null || typeof r.unified !== 'object') throw invalidField(`${F}.unified`, r.unified, 'must be an object');
    for (const [key, value] of Object.entries(r.unified)) {
      const f = `${F}.unified.${key}`;
      if (key === '' || key === '.' || key === '..' || key.includes('/') || key.includes('\0')) {
        throw invalidField(f, key, 'must be a file name (no "/" or "..")');
      }
      if (!/^[a-z0-9_]+\.[A-Za-z0-9_.-]+$/.test(key)) {
        throw invalidField(f, key, 'must be in the form CONTROLLER.PARAMETER');
      }
      if (typeof value !== 'string' || value.includes('\0')) throw invalidField(f, value, 'must be a string');
    }
  }

  if (r.devices !== undefined) deviceRulesFromOci(r.devices);
}
