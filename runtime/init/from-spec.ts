// Translation of a validated config.json (or an exec process) into the flat InitPlan the
// C init helper executes, following what runc 1.1 does for the same input: default
// devices and /dev symlinks, the cgroup v1 tmpfs+bind emulation, capability masks,
// HOME from the container's /etc/passwd, and so on. All policy lives here; vkinit only
// performs the steps.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../errors';
import { capMask, maskToHex } from '../spec/capabilities';
import {
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_SLAVE,
  PROPAGATION,
  parseMountOptions,
} from '../spec/mount-options';
import { JOIN_ORDER, NAMESPACES } from '../spec/namespaces';
import { rlimitNumber, rlimitValue } from '../spec/rlimits';
import type { Capabilities, Hook, IdMapping, Mount, NamespaceType, Process, Rlimit, Spec } from '../spec/types';
import { SECCOMP_FLAGS, cleanContainerPath, sysctlKeyToPath } from '../spec/validate';
import type { InitPlan, PlanCaps, PlanDevice, PlanHook, PlanMount, PlanRlimit } from './plan-types';

/** What the plan builders read from the host; injectable for tests. */
export interface HostProbe {
  /** /proc/self/mountinfo */
  mountinfo(): string;
  /** /proc/self/cgroup */
  selfCgroup(): string;
  /** Whether /proc/kcore exists (runc links /dev/core to it only then). */
  kcoreExists(): boolean;
  /** Whether we already run inside a user namespace (then devices must be bind mounts). */
  runningInUserNs(): boolean;
  /** Whether /sys/fs/cgroup is a pure cgroup v2 (unified) hierarchy. */
  cgroup2Unified(): boolean;
  /** "dev:ino" of a namespace file, or undefined when it cannot be stat'ed. */
  nsId(p: string): string | undefined;
  geteuid(): number;
}

const CGROUP2_SUPER_MAGIC = 0x63677270;

function readOr(p: string, fallback: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return fallback;
  }
}

export const hostProbe: HostProbe = {
  mountinfo: () => readOr('/proc/self/mountinfo', ''),
  selfCgroup: () => readOr('/proc/self/cgroup', ''),
  kcoreExists: () => fs.existsSync('/proc/kcore'),
  runningInUserNs: () => {
    const map = readOr('/proc/self/uid_map', '');
    if (map === '') return false;
    const lines = map.trim().split('\n');
    return !(lines.length === 1 && /^\s*0\s+0\s+4294967295\s*$/.test(lines[0]));
  },
  cgroup2Unified: () => {
    try {
      return Number(fs.statfsSync('/sys/fs/cgroup').type) === CGROUP2_SUPER_MAGIC;
    } catch {
      return false;
    }
  },
  nsId: (p) => {
    try {
      const st = fs.statSync(p);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  },
  geteuid: () => process.geteuid?.() ?? 0,
};

export interface CreatePlanContext {
  bundle: string; // absolute
  execFifo: string; // absolute path the C side creates
  consoleSocket?: string;
  cgroupProcs: string[]; // cgroup.procs files to join (from the cgroup manager)
  noPivot: boolean;
  /** The container id: the session keyring is named "_ses.<id>" (as runc). */
  containerId?: string;
  /** --no-new-keyring: keep the caller's session keyring (as does leaving containerId out). */
  noNewKeyring?: boolean;
  preserveFds: number;
  wait: boolean; // foreground run: parent relays the exit code
  capLastCap: number; // from /proc/sys/kernel/cap_last_cap
  seccompBpf?: string;
  /** Overrides for host facts (tests). */
  probe?: Partial<HostProbe>;
}

export interface ExecPlanContext {
  pid: number; // container init pid
  spec: Spec; // container's config
  /** Join the container's session keyring "_ses.<id>" (unless it was created with --no-new-keyring). */
  containerId?: string;
  noNewKeyring?: boolean;
  cgroupProcs: string[];
  consoleSocket?: string;
  preserveFds: number;
  wait: boolean;
  capLastCap: number;
  /** The container's compiled seccomp filter, applied to exec'd processes too (as runc). */
  seccompBpf?: string;
  probe?: Partial<HostProbe>;
}

const DEFAULT_MOUNT_FLAGS = MS_NOEXEC | MS_NOSUID | MS_NODEV;

/** The device nodes runc creates in every container (specconv.AllowedDevices with a path). */
const DEFAULT_DEVICES: ReadonlyArray<{ path: string; major: number; minor: number }> = [
  { path: '/dev/null', major: 1, minor: 3 },
  { path: '/dev/random', major: 1, minor: 8 },
  { path: '/dev/full', major: 1, minor: 7 },
  { path: '/dev/tty', major: 5, minor: 0 },
  { path: '/dev/zero', major: 1, minor: 5 },
  { path: '/dev/urandom', major: 1, minor: 9 },
];

/** runc's session keyring name for a container. */
export function sessionKeyringName(id: string): string {
  return `_ses.${id}`;
}

/** runc's extra keyring permissions: search for its owner, or for "other" in a user namespace. */
const KEY_USR_SEARCH = 0x00080000;
const KEY_OTH_SEARCH = 0x00000008;

function probeOf(p?: Partial<HostProbe>): HostProbe {
  return { ...hostProbe, ...(p ?? {}) };
}

// ---------------------------------------------------------------------------------------
// small pieces shared by create and exec

/** uid_map / gid_map text: "inside outside count\n" per mapping. */
export function idMapText(maps: readonly IdMapping[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

/**
 * runc applies capabilities with gocapability, which ignores a failed ambient raise; the
 * kernel only lets a capability into the ambient set when it is permitted and
 * inheritable, so the effective ambient set is that intersection.
 */
export function buildCaps(caps: Capabilities | undefined, lastCap: number): PlanCaps {
  const bounding = capMask(caps?.bounding, lastCap);
  const effective = capMask(caps?.effective, lastCap);
  const inheritable = capMask(caps?.inheritable, lastCap);
  const permitted = capMask(caps?.permitted, lastCap);
  const ambient = capMask(caps?.ambient, lastCap) & permitted & inheritable;
  return {
    bounding: maskToHex(bounding),
    effective: maskToHex(effective),
    inheritable: maskToHex(inheritable),
    permitted: maskToHex(permitted),
    ambient: maskToHex(ambient),
    lastCap,
  };
}

function buildRlimits(list: readonly Rlimit[] | undefined): PlanRlimit[] {
  return (list ?? []).map((r) => {
    const resource = rlimitNumber(r.type);
    if (resource === undefined) throw new InvalidArgumentError(`rlimit: unknown rlimit type (got ${JSON.stringify(r.type)})`, 'process.rlimits');
    return { resource, soft: rlimitValue(r.soft), hard: rlimitValue(r.hard) };
  });
}

function buildHooks(list: readonly Hook[] | undefined): PlanHook[] {
  return (list ?? []).map((h) => ({
    path: h.path,
    args: h.args && h.args.length > 0 ? [...h.args] : [h.path],
    env: [...(h.env ?? [])],
    timeout: h.timeout ?? 0,
  }));
}

function seccompFlags(spec: Spec): number {
  const flags = spec.linux?.seccomp?.flags;
  // runc: no flags list at all → SPEC_ALLOW (when supported, as it is on this kernel).
  if (flags === undefined || flags === null) return SECCOMP_FLAGS.SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  return flags.reduce((acc, f) => acc | (SECCOMP_FLAGS[f] ?? 0), 0);
}

/**
 * The final environment as runc builds it: later duplicates override earlier ones (in
 * the earlier one's position, like os.Setenv), and HOME is added from the user's
 * /etc/passwd entry ("/" when there is none) when unset or empty.
 */
export function finalEnv(env: readonly string[] | undefined, home: () => string): string[] {
  const order: string[] = [];
  const values = new Map<string, string>();
  for (const kv of env ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) continue;
    const k = kv.slice(0, eq);
    if (!values.has(k)) order.push(k);
    values.set(k, kv.slice(eq + 1));
  }
  if (!values.get('HOME')) {
    if (!values.has('HOME')) order.push('HOME');
    values.set('HOME', home());
  }
  return order.map((k) => `${k}=${values.get(k)}`);
}

/**
 * Resolves `p` inside `root` the way the container would see it: symlinks are followed
 * but can never leave `root` (absolute targets restart at `root`, ".." stops at it).
 * Returns the host path, or undefined when a component is missing.
 */
export function resolveInRoot(root: string, p: string): string | undefined {
  const todo = p.split('/');
  const cur: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const seg = todo.shift()!;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      cur.pop();
      continue;
    }
    const host = path.join(root, ...cur, seg);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(host);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) return undefined;
      let target: string;
      try {
        target = fs.readlinkSync(host);
      } catch {
        return undefined;
      }
      if (target.startsWith('/')) cur.length = 0;
      todo.unshift(...target.split('/'));
      continue;
    }
    cur.push(seg);
  }
  return path.join(root, ...cur);
}

/** The home directory of `uid` in passwd(5) text: first matching entry wins, as runc. */
export function homeFromPasswd(text: string, uid: number): string | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !/^\d+$/.test(f[2]) || Number(f[2]) !== uid) continue;
    return f[5] ?? '';
  }
  return undefined;
}

function homeFromFile(file: string | undefined, uid: number): string {
  if (!file) return '/';
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return '/';
  }
  return homeFromPasswd(text, uid) ?? '/';
}

// ---------------------------------------------------------------------------------------
// cgroup v1 emulation

export interface CgroupHierarchy {
  mountpoint: string;
  /** The root of the hierarchy that is mounted there (mountinfo field 4). */
  root: string;
  /** Controllers (and name=...) from the super options that /proc/self/cgroup knows. */
  subsystems: string[];
  /** Our own cgroup in this hierarchy (from /proc/self/cgroup). */
  ownPath: string;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The cgroup v1 hierarchies mounted on the host, first mount of each, in mountinfo order. */
export function cgroupV1Hierarchies(mountinfo: string, selfCgroup: string): CgroupHierarchy[] {
  const own = new Map<string, string>();
  for (const line of selfCgroup.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m || m[1] === '') continue;
    for (const ss of m[1].split(',')) own.set(ss, m[2]);
  }
  const out: CgroupHierarchy[] = [];
  const seen = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 0 || fields.length < sep + 4 || fields[sep + 1] !== 'cgroup') continue;
    const subsystems = fields[sep + 3].split(',').filter((o) => own.has(o));
    if (subsystems.length === 0 || subsystems.some((s) => seen.has(s))) continue;
    subsystems.forEach((s) => seen.add(s));
    out.push({
      mountpoint: unescapeMountinfo(fields[4]),
      root: unescapeMountinfo(fields[3]),
      subsystems,
      ownPath: own.get(subsystems[0])!,
    });
  }
  return out;
}

function realDir(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** runc's mountCgroupV1 (or a plain cgroup2 mount on a unified host). */
function cgroupMounts(
  dest: string,
  flags: number,
  propagation: number[],
  data: string,
  cgroupNs: boolean,
  cgroupProcs: readonly string[],
  probe: HostProbe,
): { mounts: PlanMount[]; symlinks: [string, string][] } {
  if (probe.cgroup2Unified()) {
    return {
      mounts: [{ source: 'cgroup', destination: dest, fstype: 'cgroup2', flags, propagation, data, kind: 'dir' }],
      symlinks: [],
    };
  }
  const mounts: PlanMount[] = [
    { source: 'tmpfs', destination: dest, fstype: 'tmpfs', flags: DEFAULT_MOUNT_FLAGS, propagation, data: 'mode=755', kind: 'dir' },
  ];
  const symlinks: [string, string][] = [];
  const joined = cgroupProcs.map((p) => realDir(path.dirname(p)));
  for (const h of cgroupV1Hierarchies(probe.mountinfo(), probe.selfCgroup())) {
    const base = path.basename(h.mountpoint);
    const sub = path.posix.join(dest, base);
    if (cgroupNs) {
      const named = h.subsystems.length === 1 && h.subsystems[0].startsWith('name=');
      mounts.push({
        source: named ? h.subsystems[0].slice(5) : 'cgroup',
        destination: sub,
        fstype: 'cgroup',
        flags: DEFAULT_MOUNT_FLAGS | (flags & MS_RDONLY),
        propagation: [],
        data: h.subsystems.join(','),
        kind: 'dir',
      });
    } else {
      const mp = realDir(h.mountpoint);
      let source = joined.find((d) => d === mp || d.startsWith(mp + '/'));
      if (!source) {
        const rel = path.posix.relative(h.root, h.ownPath);
        source = rel.startsWith('..') ? h.mountpoint : path.posix.join(h.mountpoint, rel);
      }
      mounts.push({ source, destination: sub, fstype: 'bind', flags: MS_BIND | MS_REC | flags, propagation, data: '', kind: 'dir' });
    }
    if (base.includes(',')) {
      for (const ss of base.split(',')) symlinks.push([base, path.posix.join(dest, ss)]);
    }
  }
  return { mounts, symlinks };
}

// ---------------------------------------------------------------------------------------
// create

function requireClean(p: string, field: string): string {
  const clean = p.startsWith('/') ? cleanContainerPath(p) : undefined;
  if (clean === undefined) throw new InvalidArgumentError(`${field}: must be an absolute path inside the container (got ${JSON.stringify(p)})`, field);
  return clean;
}

interface MountPlanResult {
  mounts: PlanMount[];
  symlinks: [string, string][];
  /** tmpfs mounts asked to be read-only: made read-only after setup (runc's finalizeRootfs). */
  lateReadonly: string[];
  /** False when /dev is a bind mount: then runc creates no devices or /dev symlinks. */
  setupDev: boolean;
  /** Container path → host file, for bind mounts (for the /etc/passwd lookup). */
  binds: { destination: string; source: string; bind: boolean }[];
}

function planMounts(spec: Spec, ctx: CreatePlanContext, probe: HostProbe): MountPlanResult {
  const res: MountPlanResult = { mounts: [], symlinks: [], lateReadonly: [], setupDev: true, binds: [] };
  const cgroupNs = (spec.linux?.namespaces ?? []).some((n) => n.type === 'cgroup');
  (spec.mounts ?? []).forEach((m: Mount, i) => {
    const field = `mounts[${i}]`;
    const dest = requireClean(m.destination, `${field}.destination`);
    const opts = parseMountOptions(m.options, `${field}.options`);
    const type = m.type ?? '';
    if (opts.flags & MS_BIND) {
      const source = path.resolve(ctx.bundle, m.source ?? '');
      let st: fs.Stats;
      try {
        st = fs.statSync(source);
      } catch (err) {
        throw new InvalidArgumentError(
          `${field}.source: bind mount source cannot be used: ${(err as NodeJS.ErrnoException).code ?? err} (got ${JSON.stringify(m.source)})`,
          `${field}.source`,
        );
      }
      res.mounts.push({
        source,
        destination: dest,
        fstype: 'bind',
        flags: opts.flags,
        propagation: opts.propagation,
        data: opts.data,
        kind: st.isDirectory() ? 'dir' : 'file',
      });
      res.binds.push({ destination: dest, source, bind: true });
      if (dest === '/dev') res.setupDev = false;
      return;
    }
    res.binds.push({ destination: dest, source: m.source ?? '', bind: false });
    if (type === 'cgroup') {
      const cg = cgroupMounts(dest, opts.flags, opts.propagation, opts.data, cgroupNs, ctx.cgroupProcs, probe);
      res.mounts.push(...cg.mounts);
      res.symlinks.push(...cg.symlinks);
      return;
    }
    let flags = opts.flags;
    // runc mounts tmpfs (and /dev) writable and remounts them read-only at the very end,
    // so that devices, symlinks and nested mount points can still be created in them.
    if ((type === 'tmpfs' || dest === '/dev') && flags & MS_RDONLY) {
      flags &= ~MS_RDONLY;
      res.lateReadonly.push(dest);
    }
    res.mounts.push({
      source: m.source ?? '',
      destination: dest,
      fstype: type,
      flags,
      propagation: opts.propagation,
      data: opts.data,
      kind: 'dir',
    });
  });
  return res;
}

/**
 * Filesystems runc mounts without linux.mountLabel: binds, those SELinux cannot label, and
 * mqueue, whose superblock exists with the IPC namespace already (a mount with context= is
 * refused as a different security setting): runc labels its root afterwards instead
 * (vkinit: the `mount_label` record, setxattr security.selinux on each mqueue mount).
 */
const UNLABELED_FSTYPES = new Set(['bind', 'proc', 'sysfs', 'cgroup', 'cgroup2', 'mqueue']);

/**
 * runc's label.FormatMountLabel: `context="<label>"` appended to the data of every mount
 * but binds, proc, sysfs and cgroup (tmpfs, devpts, mqueue, ...). Like runc this does not
 * look at the host: create refuses a mountLabel without SELinux beforehand
 * (checkSecurityModules), and the kernel would refuse the option.
 */
export function labelMounts(mounts: PlanMount[], mountLabel: string | undefined): void {
  if (!mountLabel) return;
  for (const m of mounts) {
    if (m.flags & MS_BIND || UNLABELED_FSTYPES.has(m.fstype)) continue;
    const ctx = `context="${mountLabel}"`;
    m.data = m.data ? `${m.data},${ctx}` : ctx;
  }
}

function planDevices(spec: Spec, bind: boolean): PlanDevice[] {
  const specDevices = spec.linux?.devices ?? [];
  const specPaths = new Set(specDevices.map((d) => cleanContainerPath(d.path)));
  const out: PlanDevice[] = [];
  for (const d of DEFAULT_DEVICES) {
    if (specPaths.has(d.path)) continue; // the spec's definition wins, as in runc
    out.push({ path: d.path, type: 'c', major: d.major, minor: d.minor, mode: 0o666, uid: 0, gid: 0, bind });
  }
  specDevices.forEach((d, i) => {
    const type = d.type === 'u' ? 'c' : d.type;
    if (type !== 'c' && type !== 'b' && type !== 'p') {
      throw new InvalidArgumentError(`linux.devices[${i}].type: invalid device type (got ${JSON.stringify(d.type)})`, `linux.devices[${i}].type`);
    }
    out.push({
      path: requireClean(d.path, `linux.devices[${i}].path`),
      type,
      major: d.major ?? 0,
      minor: d.minor ?? 0,
      mode: (d.fileMode ?? 0o666) & 0o7777,
      uid: d.uid ?? 0,
      gid: d.gid ?? 0,
      bind,
    });
  });
  return out;
}

function passwdFileForCreate(rootfs: string, binds: MountPlanResult['binds']): string | undefined {
  const target = '/etc/passwd';
  for (let i = binds.length - 1; i >= 0; i--) {
    const b = binds[i];
    if (b.destination !== target && !target.startsWith(b.destination === '/' ? '/' : b.destination + '/')) continue;
    if (!b.bind) return undefined; // a filesystem mounted over it: no passwd file we can read now
    const rest = target.slice(b.destination.length);
    return rest === '' ? b.source : resolveInRoot(b.source, rest);
  }
  return resolveInRoot(rootfs, target);
}

export function buildCreatePlan(spec: Spec, ctx: CreatePlanContext): InitPlan {
  const probe = probeOf(ctx.probe);
  const proc = spec.process;
  if (!proc) throw new InvalidArgumentError('process: is required', 'process');
  if (!spec.root) throw new InvalidArgumentError('root: is required', 'root');
  const rootfs = fs.realpathSync(path.resolve(ctx.bundle, spec.root.path));
  const linux = spec.linux ?? {};

  // namespaces
  const nsList = linux.namespaces ?? [];
  let cloneFlags = 0;
  const joinPaths = new Map<NamespaceType, string>();
  for (const n of nsList) {
    if (n.path) joinPaths.set(n.type, n.path);
    else cloneFlags |= NAMESPACES[n.type].flag;
  }
  const joins = JOIN_ORDER.filter((t) => joinPaths.has(t)).map((t) => ({ nstype: NAMESPACES[t].flag, path: joinPaths.get(t)! }));
  const hasUserNs = nsList.some((n) => n.type === 'user');
  const newUserNs = hasUserNs && !joinPaths.has('user');

  // root propagation
  let rootPropagation = MS_SLAVE | MS_REC;
  if (linux.rootfsPropagation) {
    rootPropagation = PROPAGATION[linux.rootfsPropagation];
    if (ctx.noPivot && rootPropagation & MS_PRIVATE) {
      throw new InvalidArgumentError(
        `linux.rootfsPropagation: [r]private is not safe without pivot_root (got ${JSON.stringify(linux.rootfsPropagation)})`,
        'linux.rootfsPropagation',
      );
    }
  }

  const mp = planMounts(spec, ctx, probe);
  labelMounts(mp.mounts, linux.mountLabel);
  const mountLabel = linux.mountLabel && mp.mounts.some((m) => m.fstype === 'mqueue') ? linux.mountLabel : undefined;
  const devices = mp.setupDev ? planDevices(spec, hasUserNs || probe.runningInUserNs()) : [];
  const symlinks: [string, string][] = [...mp.symlinks];
  if (mp.setupDev) {
    symlinks.push(['pts/ptmx', '/dev/ptmx']);
    symlinks.push(['/proc/self/fd', '/dev/fd']);
    symlinks.push(['/proc/self/fd/0', '/dev/stdin']);
    symlinks.push(['/proc/self/fd/1', '/dev/stdout']);
    symlinks.push(['/proc/self/fd/2', '/dev/stderr']);
    if (probe.kcoreExists()) symlinks.push(['/proc/kcore', '/dev/core']);
  }

  const caps = buildCaps(proc.capabilities, ctx.capLastCap);
  const plan: InitPlan = {
    mode: 'create',
    cloneFlags,
    joins,
    cgroupProcs: [...ctx.cgroupProcs],
    execFifo: ctx.execFifo,
    wait: ctx.wait,
    syncHooks: hasAnyHooks(spec),
    preserveFds: ctx.preserveFds,
    rootfs,
    rootReadonly: !!spec.root.readonly,
    noPivot: ctx.noPivot,
    rootPropagation,
    mounts: mp.mounts,
    devices,
    symlinks,
    maskedPaths: (linux.maskedPaths ?? []).map((p, i) => requireClean(p, `linux.maskedPaths[${i}]`)),
    readonlyPaths: [...(linux.readonlyPaths ?? []).map((p, i) => requireClean(p, `linux.readonlyPaths[${i}]`)), ...mp.lateReadonly],
    sysctl: Object.entries(linux.sysctl ?? {}).map(([k, v]) => [sysctlKeyToPath(k), v] as [string, string]),
    terminal: !!proc.terminal,
    cwd: proc.cwd,
    args: [...(proc.args ?? [])],
    env: finalEnv(proc.env, () => homeFromFile(passwdFileForCreate(rootfs, mp.binds), proc.user.uid)),
    rlimits: buildRlimits(proc.rlimits),
    uid: proc.user.uid,
    gid: proc.user.gid,
    additionalGids: [...(proc.user.additionalGids ?? [])],
    caps,
    noNewPrivileges: !!proc.noNewPrivileges,
    createContainerHooks: buildHooks(spec.hooks?.createContainer),
    startContainerHooks: buildHooks(spec.hooks?.startContainer),
  };
  if (newUserNs) {
    plan.uidMap = idMapText(linux.uidMappings ?? []);
    plan.gidMap = idMapText(linux.gidMappings ?? []);
    if (probe.geteuid() !== 0) plan.setgroupsDeny = true;
  }
  if (ctx.consoleSocket) plan.consoleSocket = ctx.consoleSocket;
  if (ctx.containerId !== undefined && !ctx.noNewKeyring) {
    plan.sessionKeyring = { name: sessionKeyringName(ctx.containerId), addPerm: hasUserNs ? KEY_OTH_SEARCH : KEY_USR_SEARCH };
  }
  // runc's specconv adds its loopback "network" for a new (not joined) network namespace.
  if (cloneFlags & NAMESPACES.network.flag) plan.loopbackUp = true;
  if (spec.hostname) plan.hostname = spec.hostname;
  if (spec.domainname) plan.domainname = spec.domainname;
  if (proc.terminal && proc.consoleSize) plan.consoleSize = { rows: proc.consoleSize.height, cols: proc.consoleSize.width };
  if (proc.oomScoreAdj !== undefined && proc.oomScoreAdj !== null) plan.oomScoreAdj = proc.oomScoreAdj;
  if (proc.user.umask !== undefined && proc.user.umask !== null) plan.umask = proc.user.umask;
  if (ctx.seccompBpf) {
    plan.seccompBpf = ctx.seccompBpf;
    plan.seccompFlags = seccompFlags(spec);
  }
  if (proc.apparmorProfile) plan.apparmorProfile = proc.apparmorProfile;
  if (proc.selinuxLabel) plan.selinuxLabel = proc.selinuxLabel;
  if (mountLabel) plan.mountLabel = mountLabel;
  return plan;
}

function hasAnyHooks(spec: Spec): boolean {
  const h = spec.hooks;
  if (!h) return false;
  return [h.prestart, h.createRuntime, h.createContainer, h.startContainer, h.poststart, h.poststop].some((l) => (l?.length ?? 0) > 0);
}

// ---------------------------------------------------------------------------------------
// exec

export function buildExecPlan(proc: Process, ctx: ExecPlanContext): InitPlan {
  const probe = probeOf(ctx.probe);
  const nsDir = `/proc/${ctx.pid}/ns`;
  if (!Number.isInteger(ctx.pid) || ctx.pid <= 0 || probe.nsId(`${nsDir}/mnt`) === undefined) {
    throw new FailedPreconditionError(`container init process ${ctx.pid} is not running`);
  }
  // Every namespace of the container init, except those it shares with us (joining our
  // own user namespace would even fail with EINVAL).
  const joins: { nstype: number; path: string }[] = [];
  for (const t of JOIN_ORDER) {
    const name = NAMESPACES[t].procName;
    const theirs = probe.nsId(`${nsDir}/${name}`);
    if (theirs === undefined) continue;
    if (theirs === probe.nsId(`/proc/self/ns/${name}`)) continue;
    joins.push({ nstype: NAMESPACES[t].flag, path: `${nsDir}/${name}` });
  }

  const base = ctx.spec.process;
  const rlimits = proc.rlimits && proc.rlimits.length > 0 ? proc.rlimits : base?.rlimits;
  const oomScoreAdj = proc.oomScoreAdj ?? base?.oomScoreAdj;
  const plan: InitPlan = {
    mode: 'exec',
    cloneFlags: 0,
    joins,
    cgroupProcs: [...ctx.cgroupProcs],
    wait: ctx.wait,
    syncHooks: false,
    preserveFds: ctx.preserveFds,
    rootPropagation: 0,
    mounts: [],
    devices: [],
    symlinks: [],
    maskedPaths: [],
    readonlyPaths: [],
    sysctl: [],
    terminal: !!proc.terminal,
    cwd: proc.cwd,
    args: [...(proc.args ?? [])],
    env: finalEnv(proc.env, () => homeFromFile(resolveInRoot(`/proc/${ctx.pid}/root`, '/etc/passwd'), proc.user.uid)),
    rlimits: buildRlimits(rlimits),
    uid: proc.user.uid,
    gid: proc.user.gid,
    additionalGids: [...(proc.user.additionalGids ?? [])],
    caps: buildCaps(proc.capabilities ?? base?.capabilities, ctx.capLastCap),
    noNewPrivileges: !!proc.noNewPrivileges,
    createContainerHooks: [],
    startContainerHooks: [],
  };
  if (ctx.consoleSocket) plan.consoleSocket = ctx.consoleSocket;
  // runc's setns init joins the container's keyring as it is (no permission change).
  if (ctx.containerId !== undefined && !ctx.noNewKeyring) plan.sessionKeyring = { name: sessionKeyringName(ctx.containerId), addPerm: 0 };
  if (proc.terminal && proc.consoleSize) plan.consoleSize = { rows: proc.consoleSize.height, cols: proc.consoleSize.width };
  if (oomScoreAdj !== undefined && oomScoreAdj !== null) plan.oomScoreAdj = oomScoreAdj;
  if (proc.user.umask !== undefined && proc.user.umask !== null) plan.umask = proc.user.umask;
  if (ctx.seccompBpf) {
    plan.seccompBpf = ctx.seccompBpf;
    plan.seccompFlags = seccompFlags(ctx.spec);
  }
  // runc: the container's profile and label, unless the exec'd process names its own
  // (also with --process: a process.json without them does not run unconfined).
  const apparmorProfile = proc.apparmorProfile || base?.apparmorProfile;
  const selinuxLabel = proc.selinuxLabel || base?.selinuxLabel;
  if (apparmorProfile) plan.apparmorProfile = apparmorProfile;
  if (selinuxLabel) plan.selinuxLabel = selinuxLabel;
  return plan;
}
