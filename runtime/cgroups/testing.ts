// A fake cgroup file tree for unit tests (here and in other modules' tests): a temp
// directory laid out like /sys/fs/cgroup (v1 hierarchies, a hybrid unified tree, or a pure
// v2 tree), a fake Host describing it (mountinfo, /proc/self/cgroup, online cpus, …) and a
// CgroupFs that behaves enough like the kernel to test ordering and errors:
//   - mkdir fills the new cgroup with its controllers' files (v1: per hierarchy; v2: per
//     the parent's cgroup.subtree_control),
//   - writes never create files (ENOENT like a missing knob), every write is recorded,
//   - devices.allow/deny update devices.list, freezer.state/cgroup.freeze settle at once,
//     cgroup.subtree_control delegates to children, cgroup.procs appends,
//   - memory.limit_in_bytes/memsw.limit_in_bytes enforce memsw >= limit (EINVAL), and
//     cpuset.cpus/mems, pids.max, cpu.shares clamping behave like the kernel,
//   - failWrite(suffix, errno) injects a failure.
// FakeBpf stands in for bpf(2) (v2 device programs) and runs the programs it holds with a
// small interpreter (runDeviceProgram).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cgroupWriteError, nodeCgroupFs, type CgroupFs } from './fs';
import type { Host } from './host';
import { accessBits, BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR, decodeInsns, OP, type BpfInsn } from './v2/devicefilter';
import type { BpfSyscalls } from './v2/devices';

export interface FakeTreeOptions {
  mode: 'legacy' | 'hybrid' | 'unified';
  /** v1 hierarchies (each a list of co-mounted controllers). */
  hierarchies?: string[][];
  /** Controllers the cgroup2 root offers. */
  unifiedControllers?: string[];
  /** Our own cgroup per v1 controller; "" = the unified tree. Default "/" everywhere. */
  self?: Record<string, string>;
  onlineCpus?: string;
  onlineMems?: string;
  hugePageSizes?: string[];
  systemd?: boolean;
  /** Swap accounting (memory.memsw.*). Default true. */
  memsw?: boolean;
  /** Default cpus of the cpuset root. */
  rootCpus?: string;
}

export interface RecordedWrite {
  /** Path relative to the tree root. */
  file: string;
  value: string;
}

const DEFAULT_HIERARCHIES = [['cpu', 'cpuacct'], ['cpuset'], ['memory'], ['devices'], ['freezer'], ['blkio'], ['pids'], ['name=systemd']];

const UNLIMITED_V1 = '9223372036854771712';

function v1Files(ctrl: string, o: FakeTreeOptions, isRoot: boolean): Record<string, string> {
  const sizes = o.hugePageSizes ?? ['2MB', '1GB'];
  switch (ctrl) {
    case 'memory': {
      const f: Record<string, string> = {
        'memory.limit_in_bytes': UNLIMITED_V1,
        'memory.soft_limit_in_bytes': UNLIMITED_V1,
        'memory.usage_in_bytes': '4096',
        'memory.max_usage_in_bytes': '8192',
        'memory.failcnt': '0',
        'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
        'memory.swappiness': '60',
        'memory.stat': 'cache 100\nrss 200\ntotal_cache 100\ntotal_rss 200\n',
        'memory.kmem.limit_in_bytes': UNLIMITED_V1,
        'memory.kmem.usage_in_bytes': '0',
      };
      if (o.memsw !== false) {
        f['memory.memsw.limit_in_bytes'] = UNLIMITED_V1;
        f['memory.memsw.usage_in_bytes'] = '4096';
      }
      return f;
    }
    case 'cpu':
      return {
        'cpu.shares': '1024',
        'cpu.cfs_period_us': '100000',
        'cpu.cfs_quota_us': '-1',
        'cpu.cfs_burst_us': '0',
        'cpu.rt_period_us': '1000000',
        'cpu.rt_runtime_us': isRoot ? '950000' : '0',
        'cpu.idle': '0',
        'cpu.stat': 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\n',
      };
    case 'cpuacct':
      return { 'cpuacct.usage': '1000', 'cpuacct.usage_percpu': '600 400', 'cpuacct.stat': 'user 1\nsystem 2\n' };
    case 'cpuset':
      return {
        'cpuset.cpus': isRoot ? o.rootCpus ?? o.onlineCpus ?? '0-3' : '',
        'cpuset.mems': isRoot ? o.onlineMems ?? '0' : '',
        'cpuset.cpu_exclusive': '0',
      };
    case 'devices':
      return { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm\n' };
    case 'freezer':
      return isRoot ? {} : { 'freezer.state': 'THAWED\n' };
    case 'pids':
      return isRoot ? {} : { 'pids.max': 'max\n', 'pids.current': '0\n' };
    case 'blkio':
      return {
        'blkio.bfq.weight': '100',
        'blkio.bfq.weight_device': '',
        'blkio.throttle.read_bps_device': '',
        'blkio.throttle.write_bps_device': '',
        'blkio.throttle.read_iops_device': '',
        'blkio.throttle.write_iops_device': '',
        'blkio.throttle.io_service_bytes_recursive': '8:0 Read 512\n8:0 Write 1024\nTotal 1536\n',
      };
    case 'hugetlb':
      return Object.fromEntries(sizes.flatMap((s) => [[`hugetlb.${s}.limit_in_bytes`, UNLIMITED_V1], [`hugetlb.${s}.usage_in_bytes`, '0']]));
    case 'net_cls':
      return { 'net_cls.classid': '0' };
    case 'net_prio':
      return { 'net_prio.ifpriomap': 'lo 0\n' };
    case 'rdma':
      return { 'rdma.max': '' };
    default:
      return {};
  }
}

function v2Files(ctrl: string, o: FakeTreeOptions): Record<string, string> {
  const sizes = o.hugePageSizes ?? ['2MB', '1GB'];
  switch (ctrl) {
    case 'memory': {
      const f: Record<string, string> = {
        'memory.max': 'max\n',
        'memory.low': '0\n',
        'memory.high': 'max\n',
        'memory.current': '4096\n',
        'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n',
        'memory.stat': 'anon 200\nfile 100\n',
        'memory.oom.group': '0\n',
      };
      if (o.memsw !== false) {
        f['memory.swap.max'] = 'max\n';
        f['memory.swap.current'] = '0\n';
      }
      return f;
    }
    case 'cpu':
      return { 'cpu.weight': '100\n', 'cpu.max': 'max 100000\n', 'cpu.max.burst': '0\n', 'cpu.idle': '0\n' };
    case 'cpuset':
      return { 'cpuset.cpus': '', 'cpuset.mems': '', 'cpuset.cpus.effective': `${o.onlineCpus ?? '0-3'}\n`, 'cpuset.mems.effective': '0\n' };
    case 'io':
      return { 'io.weight': 'default 100\n', 'io.max': '', 'io.stat': '8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n' };
    case 'pids':
      return { 'pids.max': 'max\n', 'pids.current': '0\n' };
    case 'hugetlb':
      return Object.fromEntries(sizes.flatMap((s) => [[`hugetlb.${s}.max`, 'max\n'], [`hugetlb.${s}.current`, '0\n'], [`hugetlb.${s}.events`, 'max 0\n']]));
    case 'rdma':
      return { 'rdma.max': '' };
    default:
      return {};
  }
}

function mountName(ctrls: string[]): string {
  return ctrls.map((c) => (c.startsWith('name=') ? c.slice(5) : c)).join(',');
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: fake kernel, write`), { code });
}

export class FakeCgroupTree {
  readonly root: string;
  readonly host: Host;
  readonly fs: CgroupFs;
  readonly writes: RecordedWrite[] = [];
  private readonly failures: { suffix: string; code: string; times: number }[] = [];
  /** v1 mountpoint → controllers; the unified mountpoint maps to []. */
  readonly mounts = new Map<string, string[]>();
  unifiedMount?: string;

  constructor(readonly opts: FakeTreeOptions) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'vk-cgroup-fake-'));
    const lines: string[] = [];
    let id = 30;
    const self = opts.self ?? {};
    if (opts.mode === 'unified') {
      this.unifiedMount = this.root;
    } else {
      lines.push(`${id++} 1 0:20 / ${this.root} rw,relatime - tmpfs tmpfs rw,mode=755`);
      for (const h of opts.hierarchies ?? DEFAULT_HIERARCHIES) {
        const mp = path.join(this.root, mountName(h));
        fs.mkdirSync(mp);
        this.mounts.set(mp, h);
        this.populateV1(mp, h, true);
        lines.push(`${id++} 30 0:${id} / ${mp} rw,nosuid - cgroup cgroup rw,${h.join(',')}`);
      }
      if (opts.mode === 'hybrid') this.unifiedMount = path.join(this.root, 'unified');
    }
    if (this.unifiedMount) {
      fs.mkdirSync(this.unifiedMount, { recursive: true });
      const ctrls = opts.unifiedControllers ?? (opts.mode === 'hybrid' ? ['hugetlb'] : ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc']);
      this.populateV2(this.unifiedMount, ctrls, true);
      lines.push(`${id++} 30 0:${id} / ${this.unifiedMount} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate`);
    }
    // our own cgroups must exist for relative paths
    for (const [ctrl, p] of Object.entries(self)) {
      if (p === '/') continue;
      const mp = ctrl === '' ? this.unifiedMount : [...this.mounts].find(([, cs]) => cs.includes(ctrl))?.[0];
      if (!mp) continue;
      let cur = mp;
      for (const part of p.split('/').filter(Boolean)) {
        cur = path.join(cur, part);
        if (!fs.existsSync(cur)) {
          fs.mkdirSync(cur);
          this.populate(cur);
        }
      }
    }
    const selfLines: string[] = [];
    let hid = 1;
    for (const h of opts.hierarchies ?? (opts.mode === 'unified' ? [] : DEFAULT_HIERARCHIES)) {
      selfLines.push(`${hid++}:${h.join(',')}:${self[h[0]] ?? '/'}`);
    }
    if (this.unifiedMount) selfLines.push(`0::${self[''] ?? '/'}`);
    const mountinfo = lines.join('\n') + '\n';
    const selfText = selfLines.join('\n') + '\n';
    this.host = {
      mountinfo: () => mountinfo,
      selfCgroup: () => selfText,
      onlineCpus: () => opts.onlineCpus ?? '0-3',
      onlineMems: () => opts.onlineMems ?? '0',
      hugePageSizes: () => opts.hugePageSizes ?? ['2MB', '1GB'],
      systemdRunning: () => opts.systemd ?? false,
    };
    this.fs = this.makeFs();
  }

  /** Path inside the tree. */
  p(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  read(...parts: string[]): string {
    return fs.readFileSync(this.p(...parts), 'utf8');
  }

  exists(...parts: string[]): boolean {
    return fs.existsSync(this.p(...parts));
  }

  /** Writes whose file ends with `suffix`, as "file=value" relative paths. */
  writesTo(suffix: string): string[] {
    return this.writes.filter((w) => w.file.endsWith(suffix)).map((w) => w.value);
  }

  /** Make the next `times` writes to a file ending with `suffix` fail with `code`. */
  failWrite(suffix: string, code: string, times = 1): void {
    this.failures.push({ suffix, code, times });
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** Every directory under the tree that is not a mountpoint or pre-existing own cgroup. */
  listDirs(): string[] {
    const out: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        const full = path.join(d, e.name);
        out.push(path.relative(this.root, full));
        walk(full);
      }
    };
    walk(this.root);
    return out.sort();
  }

  private mountOf(dir: string): { mp: string; ctrls: string[] | undefined } | undefined {
    const u = this.unifiedMount;
    if (u && (dir === u || dir.startsWith(u + '/'))) return { mp: u, ctrls: undefined };
    for (const [mp, ctrls] of this.mounts) if (dir === mp || dir.startsWith(mp + '/')) return { mp, ctrls };
    return undefined;
  }

  private populate(dir: string): void {
    const m = this.mountOf(dir);
    if (!m) return;
    if (m.ctrls) this.populateV1(dir, m.ctrls, false);
    else {
      const parentSub = fs.readFileSync(path.join(path.dirname(dir), 'cgroup.subtree_control'), 'utf8').split(/\s+/).filter(Boolean);
      this.populateV2(dir, parentSub, false);
    }
  }

  private populateV1(dir: string, ctrls: string[], isRoot: boolean): void {
    const files: Record<string, string> = { 'cgroup.procs': '', tasks: '' };
    for (const c of ctrls) Object.assign(files, v1Files(c, this.opts, isRoot));
    if (!isRoot && ctrls.includes('devices')) {
      files['devices.list'] = fs.readFileSync(path.join(path.dirname(dir), 'devices.list'), 'utf8');
    }
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), v);
  }

  private populateV2(dir: string, ctrls: string[], isRoot: boolean): void {
    const files: Record<string, string> = {
      'cgroup.controllers': ctrls.join(' ') + '\n',
      'cgroup.subtree_control': '\n',
      'cgroup.procs': '',
    };
    if (!isRoot) {
      Object.assign(files, { 'cgroup.freeze': '0\n', 'cgroup.events': 'populated 0\nfrozen 0\n', 'cgroup.kill': '', 'cgroup.type': 'domain\n' });
      for (const c of ctrls) Object.assign(files, v2Files(c, this.opts));
    }
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), v);
  }

  private makeFs(): CgroupFs {
    const tree = this;
    return {
      read: (file) => nodeCgroupFs.read(file),
      exists: (p) => nodeCgroupFs.exists(p),
      rmdir: async (dir) => {
        // Like cgroupfs: only control files inside, rmdir removes them with the directory.
        const entries = fs.readdirSync(dir, { withFileTypes: true });
        if (entries.some((e) => e.isDirectory())) throw errno('EBUSY');
        const procs = path.join(dir, 'cgroup.procs');
        if (fs.existsSync(procs) && fs.readFileSync(procs, 'utf8').trim() !== '') throw errno('EBUSY');
        fs.rmSync(dir, { recursive: true });
      },
      subdirs: (dir) => nodeCgroupFs.subdirs(dir),
      async mkdir(dir) {
        const made = await nodeCgroupFs.mkdir(dir);
        if (made) tree.populate(dir);
        return made;
      },
      async write(file, value, field) {
        tree.writes.push({ file: path.relative(tree.root, file), value });
        const fail = tree.failures.find((f) => file.endsWith(f.suffix) && f.times > 0);
        if (fail) {
          fail.times--;
          throw cgroupWriteError(value, file, errno(fail.code), field);
        }
        if (!fs.existsSync(file)) throw cgroupWriteError(value, file, errno('ENOENT'), field);
        try {
          tree.kernelWrite(file, value);
        } catch (err) {
          throw cgroupWriteError(value, file, err, field);
        }
      },
    };
  }

  private kernelWrite(file: string, value: string): void {
    const dir = path.dirname(file);
    const base = path.basename(file);
    const set = (f: string, v: string) => fs.writeFileSync(path.join(dir, f), v);
    const get = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8').trim() : undefined);
    const big = (v: string) => (v.trim() === '-1' ? BigInt(UNLIMITED_V1) : BigInt(v.trim()));
    switch (base) {
      case 'cgroup.procs':
      case 'tasks': {
        if (!/^\d+$/.test(value.trim())) throw errno('EINVAL');
        const cur = get(base) ?? '';
        set(base, cur + (cur ? '\n' : '') + value.trim() + '\n');
        return;
      }
      case 'devices.allow':
      case 'devices.deny': {
        // The kernel's model: "a" resets the default; other rules add or remove access bits
        // of the exact exception (deny exceptions of an allow-all cgroup are not listed).
        const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]+)$/.exec(value.trim());
        if (!m) throw errno('EINVAL');
        const allow = base === 'devices.allow';
        const cur = get('devices.list') ?? '';
        if (m[1] === 'a') {
          set('devices.list', allow ? 'a *:* rwm\n' : '');
          return;
        }
        if (/^a \*:\* rwm$/m.test(cur)) return; // allow-all: exceptions are invisible
        const rules = new Map<string, string>();
        for (const line of cur.split('\n').filter(Boolean)) {
          const i = line.lastIndexOf(' ');
          rules.set(line.slice(0, i), line.slice(i + 1));
        }
        const key = `${m[1]} ${m[2]}:${m[3]}`;
        const had = rules.get(key) ?? '';
        const next = allow ? had + m[4] : [...had].filter((c) => !m[4].includes(c)).join('');
        const norm = ['r', 'w', 'm'].filter((c) => next.includes(c)).join('');
        if (norm) rules.set(key, norm);
        else rules.delete(key);
        set('devices.list', [...rules].map(([k, v]) => `${k} ${v}\n`).join(''));
        return;
      }
      case 'freezer.state':
        if (value !== 'FROZEN' && value !== 'THAWED') throw errno('EINVAL');
        set(base, value + '\n');
        return;
      case 'cgroup.freeze': {
        if (value !== '0' && value !== '1') throw errno('EINVAL');
        set(base, value + '\n');
        set('cgroup.events', `populated 0\nfrozen ${value}\n`);
        return;
      }
      case 'cgroup.kill':
        if (value !== '1') throw errno('EINVAL');
        set('cgroup.procs', '');
        return;
      case 'cgroup.subtree_control': {
        const avail = (get('cgroup.controllers') ?? '').split(/\s+/);
        const cur = new Set((get(base) ?? '').split(/\s+/).filter(Boolean));
        for (const tok of value.split(/\s+/).filter(Boolean)) {
          const c = tok.slice(1);
          if (!avail.includes(c)) throw errno('ENOENT');
          if (tok[0] === '+') cur.add(c);
          else if (tok[0] === '-') cur.delete(c);
          else throw errno('EINVAL');
        }
        set(base, [...cur].join(' ') + '\n');
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          if (!e.isDirectory()) continue;
          const child = path.join(dir, e.name);
          fs.writeFileSync(path.join(child, 'cgroup.controllers'), [...cur].join(' ') + '\n');
          for (const c of cur) {
            for (const [f, v] of Object.entries(v2Files(c, this.opts))) {
              if (!fs.existsSync(path.join(child, f))) fs.writeFileSync(path.join(child, f), v);
            }
          }
        }
        return;
      }
      case 'memory.limit_in_bytes': {
        const memsw = get('memory.memsw.limit_in_bytes');
        if (memsw !== undefined && big(value) > big(memsw)) throw errno('EINVAL');
        set(base, big(value).toString());
        return;
      }
      case 'memory.memsw.limit_in_bytes': {
        const lim = get('memory.limit_in_bytes') ?? '0';
        if (big(value) < big(lim)) throw errno('EINVAL');
        set(base, big(value).toString());
        return;
      }
      case 'cpu.shares': {
        const n = Math.min(262144, Math.max(2, Number(value)));
        set(base, String(n));
        return;
      }
      case 'cpuset.cpus':
      case 'cpuset.mems': {
        const parent = fs.readFileSync(path.join(path.dirname(dir), base), 'utf8').trim();
        if (value.trim() !== '' && parent !== '' && !withinList(value, parent)) throw errno('EINVAL');
        set(base, value);
        return;
      }
      case 'pids.max':
        if (value !== 'max' && !/^\d+$/.test(value)) throw errno('EINVAL');
        set(base, value + '\n');
        return;
      case 'blkio.bfq.weight_device':
      case 'blkio.throttle.read_bps_device':
      case 'blkio.throttle.write_bps_device':
      case 'blkio.throttle.read_iops_device':
      case 'blkio.throttle.write_iops_device':
      case 'io.max':
      case 'rdma.max':
      case 'net_prio.ifpriomap': {
        const cur = get(base) ?? '';
        set(base, cur + (cur ? '\n' : '') + value + '\n');
        return;
      }
      default:
        set(base, value);
    }
  }
}

function expandList(s: string): Set<number> {
  const out = new Set<number>();
  for (const part of s.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a; i <= (b ?? a); i++) out.add(i);
  }
  return out;
}

function withinList(child: string, parent: string): boolean {
  const p = expandList(parent);
  return [...expandList(child)].every((c) => p.has(c));
}

// ---- cgroup v2 device programs -----------------------------------------------------------

/** The request a device program judges (struct bpf_cgroup_dev_ctx). */
export interface DeviceAccess {
  type: 'b' | 'c';
  major: number;
  minor: number;
  /** Non-empty subset of "rwm". */
  access: string;
}

const U64 = (1n << 64n) - 1n;
const U32 = (1n << 32n) - 1n;

/**
 * Runs a BPF_PROG_TYPE_CGROUP_DEVICE program on one request: a small interpreter of the
 * instructions devicefilter.ts emits (ALU32 mov/and/rsh, 32-bit loads from the context,
 * JNE/JNE32, exit). Returns r0 (1 = allow). Anything else is an error, as is running off
 * the end or a load outside the 12-byte context.
 */
export function runDeviceProgram(insns: BpfInsn[], req: DeviceAccess): number {
  const ctx = Buffer.alloc(12);
  ctx.writeUInt32LE(((accessBits(req.access) << 16) | (req.type === 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK)) >>> 0, 0);
  ctx.writeUInt32LE(req.major >>> 0, 4);
  ctx.writeUInt32LE(req.minor >>> 0, 8);
  const r: bigint[] = new Array(11).fill(0n);
  const sext = (imm: number) => BigInt.asUintN(64, BigInt(imm));
  let steps = 0;
  for (let pc = 0; ; ) {
    if (pc < 0 || pc >= insns.length) throw new Error(`device program: pc ${pc} out of range`);
    if (++steps > 10000) throw new Error('device program: too many steps');
    const i = insns[pc];
    const jump = (taken: boolean) => (pc += 1 + (taken ? i.off : 0));
    switch (i.code) {
      case OP.LDXW: {
        const at = Number(r[i.src]) + i.off;
        if (i.src !== 1 || at < 0 || at + 4 > ctx.length || at % 4 !== 0) throw new Error(`device program: bad load at ${pc}`);
        r[i.dst] = BigInt(ctx.readUInt32LE(at));
        pc++;
        break;
      }
      case OP.AND32_IMM:
        r[i.dst] = (r[i.dst] & U32) & (sext(i.imm) & U32);
        pc++;
        break;
      case OP.RSH32_IMM:
        r[i.dst] = (r[i.dst] & U32) >> BigInt(i.imm & 31);
        pc++;
        break;
      case OP.MOV32_IMM:
        r[i.dst] = sext(i.imm) & U32;
        pc++;
        break;
      case OP.MOV32_REG:
        r[i.dst] = r[i.src] & U32;
        pc++;
        break;
      case OP.JNE_IMM:
        jump(r[i.dst] !== (sext(i.imm) & U64));
        break;
      case OP.JNE32_IMM:
        jump((r[i.dst] & U32) !== (sext(i.imm) & U32));
        break;
      case OP.JNE_REG:
        jump(r[i.dst] !== r[i.src]);
        break;
      case OP.EXIT:
        return Number(r[0]);
      default:
        throw new Error(`device program: unexpected opcode 0x${i.code.toString(16)} at ${pc}`);
    }
  }
}

function fakeErrno(errno: number, code: string, what: string): Error {
  return Object.assign(new Error(`${what}: ${code} (fake bpf)`), { errno, code });
}

/**
 * bpf(2) for unit tests: programs are kept as instructions, attachments per directory path
 * (in attach order), and `allows()` runs every program attached to a directory and its
 * ancestors like the kernel (all must allow). A program lives while an fd or an attachment
 * holds it; a removed directory holds nothing. `calls` records each call.
 */
export class FakeBpf implements BpfSyscalls {
  readonly calls: string[] = [];
  private nextFd = 1000;
  private nextId = 1;
  private readonly fds = new Map<number, { dir?: string; prog?: number }>();
  private readonly progs = new Map<number, BpfInsn[]>();
  private readonly attached = new Map<string, number[]>();
  /** The next progLoad fails with this errno and verifier log. */
  failLoad?: { errno: number; log: string };

  openDir(dir: string): number {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw fakeErrno(2, 'ENOENT', `open ${dir}`);
    const fd = this.nextFd++;
    this.fds.set(fd, { dir });
    return fd;
  }

  close(fd: number): void {
    if (!this.fds.delete(fd)) throw fakeErrno(9, 'EBADF', `close ${fd}`);
    this.gc();
  }

  progLoad(insns: Buffer, license: string): number {
    this.calls.push(`load ${insns.length / 8} ${license}`);
    if (this.failLoad) {
      const f = this.failLoad;
      this.failLoad = undefined;
      throw Object.assign(fakeErrno(f.errno, 'EACCES', 'bpf(BPF_PROG_LOAD)'), { message: `bpf(BPF_PROG_LOAD): ${f.log}`, log: f.log });
    }
    const decoded = decodeInsns(insns);
    // What the verifier would insist on for these programs: it ends in exit, r0 is set.
    if (decoded.length === 0 || decoded[decoded.length - 1].code !== OP.EXIT) throw fakeErrno(22, 'EINVAL', 'bpf(BPF_PROG_LOAD)');
    const id = this.nextId++;
    this.progs.set(id, decoded);
    const fd = this.nextFd++;
    this.fds.set(fd, { prog: id });
    return fd;
  }

  private dirOf(fd: number): string {
    const f = this.fds.get(fd);
    if (!f?.dir) throw fakeErrno(9, 'EBADF', `fd ${fd}`);
    return f.dir;
  }

  private progOf(fd: number): number {
    const f = this.fds.get(fd);
    if (!f?.prog) throw fakeErrno(9, 'EBADF', `fd ${fd}`);
    return f.prog;
  }

  attach(cgroupFd: number, progFd: number): void {
    const dir = this.dirOf(cgroupFd);
    const id = this.progOf(progFd);
    this.calls.push(`attach ${id}`);
    const list = this.attachedTo(dir);
    if (list.includes(id)) throw fakeErrno(17, 'EEXIST', 'bpf(BPF_PROG_ATTACH)');
    this.attached.set(dir, [...list, id]);
  }

  detach(cgroupFd: number, progFd: number): void {
    const dir = this.dirOf(cgroupFd);
    const id = this.progOf(progFd);
    this.calls.push(`detach ${id}`);
    const list = this.attachedTo(dir);
    if (!list.includes(id)) throw fakeErrno(2, 'ENOENT', 'bpf(BPF_PROG_DETACH)');
    this.attached.set(
      dir,
      list.filter((x) => x !== id),
    );
  }

  query(cgroupFd: number): number[] {
    return [...this.attachedTo(this.dirOf(cgroupFd))];
  }

  progFdById(id: number): number {
    this.gc();
    if (!this.progs.has(id)) throw fakeErrno(2, 'ENOENT', 'bpf(BPF_PROG_GET_FD_BY_ID)');
    const fd = this.nextFd++;
    this.fds.set(fd, { prog: id });
    return fd;
  }

  /** Program ids attached to `dir` itself (none once the directory is gone). */
  attachedTo(dir: string): number[] {
    if (!fs.existsSync(dir)) {
      this.attached.delete(dir);
      return [];
    }
    return this.attached.get(dir) ?? [];
  }

  /** The instructions of a live program. */
  program(id: number): BpfInsn[] | undefined {
    return this.progs.get(id);
  }

  /** Live programs (held by an fd or an attachment). */
  liveIds(): number[] {
    this.gc();
    return [...this.progs.keys()];
  }

  /** Would an access from a process in `dir` be allowed (programs of dir and its ancestors)? */
  allows(dir: string, req: DeviceAccess): boolean {
    for (let d = dir; ; d = path.dirname(d)) {
      for (const id of this.attachedTo(d)) if (runDeviceProgram(this.progs.get(id)!, req) !== 1) return false;
      if (d === path.dirname(d)) return true;
    }
  }

  private gc(): void {
    const held = new Set<number>();
    for (const f of this.fds.values()) if (f.prog) held.add(f.prog);
    for (const dir of [...this.attached.keys()]) for (const id of this.attachedTo(dir)) held.add(id);
    for (const id of [...this.progs.keys()]) if (!held.has(id)) this.progs.delete(id);
  }
}
