// What the drivers need to know about the host, behind one interface so unit tests can
// describe a fake machine: the cgroup mounts (from /proc/self/mountinfo — statfs magic is
// not readable from Node), our own cgroups (/proc/self/cgroup), online CPUs and memory
// nodes, the huge page sizes, and whether systemd is running.

import * as fs from 'node:fs';

export interface Host {
  /** Text of /proc/self/mountinfo. */
  mountinfo(): string;
  /** Text of /proc/self/cgroup. */
  selfCgroup(): string;
  /** /sys/devices/system/cpu/online, e.g. "0-7". */
  onlineCpus(): string;
  /** /sys/devices/system/node/online, e.g. "0" ("0" when the file is absent). */
  onlineMems(): string;
  /** Huge page sizes in runc's notation ("2MB", "1GB"), from /sys/kernel/mm/hugepages. */
  hugePageSizes(): string[];
  /** True when /run/systemd/system exists (sd_booted(3)). */
  systemdRunning(): boolean;
}

function readText(p: string, fallback?: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (err) {
    if (fallback !== undefined) return fallback;
    throw err;
  }
}

/** "hugepages-2048kB" → "2MB" (runc's HugePageSizes: 1024-based units B, KB, MB, GB, TB, PB). */
export function hugePageSizeName(dirName: string): string | undefined {
  const m = /^hugepages-(\d+)kB$/.exec(dirName);
  if (!m) return undefined;
  let size = Number(m[1]) * 1024;
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (size >= 1024 && i < units.length - 1) {
    size /= 1024;
    i++;
  }
  return `${size}${units[i]}`;
}

export const realHost: Host = {
  mountinfo: () => readText('/proc/self/mountinfo'),
  selfCgroup: () => readText('/proc/self/cgroup'),
  onlineCpus: () => readText('/sys/devices/system/cpu/online').trim(),
  onlineMems: () => readText('/sys/devices/system/node/online', '0').trim(),
  hugePageSizes() {
    let names: string[];
    try {
      names = fs.readdirSync('/sys/kernel/mm/hugepages');
    } catch {
      return [];
    }
    return names.map(hugePageSizeName).filter((s): s is string => s !== undefined);
  },
  systemdRunning: () => fs.existsSync('/run/systemd/system'),
};

export interface CgroupMount {
  /** Where it is mounted, e.g. /sys/fs/cgroup/memory. */
  mountpoint: string;
  /** The cgroup this mount shows as its root (field 4 of mountinfo), "/" on the host. */
  root: string;
  fstype: 'cgroup' | 'cgroup2';
  /** v1: controllers and "name=…" of the hierarchy, e.g. ["cpu","cpuacct"]; v2: []. */
  controllers: string[];
}

const V1_CONTROLLERS = new Set([
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'net_prio',
  'blkio',
  'perf_event',
  'hugetlb',
  'pids',
  'rdma',
  'misc',
  'debug',
]);

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The cgroup/cgroup2 mounts listed in mountinfo text, in order. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    if (line.trim() === '') continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const fstype = post[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    if (pre.length < 5) continue;
    const superOpts = (post[2] ?? '').split(',');
    const controllers =
      fstype === 'cgroup' ? superOpts.filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name=')) : [];
    out.push({
      mountpoint: unescapeMountinfo(pre[4]),
      root: unescapeMountinfo(pre[3]),
      fstype,
      controllers,
    });
  }
  return out;
}

export interface SelfCgroups {
  /** v1 controller (or "name=systemd") → cgroup path as the kernel shows it. */
  v1: Map<string, string>;
  /** The "0::" line's path, when there is one. */
  unified?: string;
}

export function parseSelfCgroup(text: string): SelfCgroups {
  const v1 = new Map<string, string>();
  let unified: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const id = line.slice(0, first);
    const ctrls = line.slice(first + 1, second);
    const p = line.slice(second + 1);
    if (id === '0' && ctrls === '') {
      unified = p;
      continue;
    }
    for (const c of ctrls.split(',')) if (c) v1.set(c, p);
  }
  return { v1, unified };
}
