// The cgroup v1 driver (legacy and hybrid hosts). Like runc's fs driver it creates a
// directory in every mounted v1 hierarchy (so ps/kill --all find every process, even in
// hierarchies no setting needs) and, on hybrid hosts, in the unified tree too.

import * as path from 'node:path';
import { FailedPreconditionError, NotFoundError } from '../../errors';
import type { LinuxResources } from '../../spec/types';
import { checkPid, checkSignal, cloneResources, createdParents, killPids, SIGKILL } from '../common';
import {
  mkdirBelow,
  readOptional,
  readPidsRecursive,
  removeCgroupDirs,
  removeCreatedParents,
  type CgroupFs,
} from '../fs';
import { parseCgroupMounts, parseSelfCgroup, type Host } from '../host';
import type { CgroupDescription, CgroupManager, FreezerState } from '../manager';
import { eventfdOomSource, oomEventStream, type OomEvent, type OomEventOptions } from '../oom';
import { resolveInnerPath, v1Dir } from '../paths';
import { readV1Stats, type CgroupStats } from '../stats';
import { validateResources } from '../validate';
import { enableControllers } from '../v2/enable';
import { freezeV2, freezerStateV2, thawV2 } from '../v2/freezer';
import { hugetlbController as hugetlbV2 } from '../v2/hugetlb';
import type { DeviceProgramLoader } from '../v2/devices';
import { blkioController } from './blkio';
import type { V1Context, V1Controller } from './controller';
import { cpuacctController, cpuController } from './cpu';
import { cpusetController } from './cpuset';
import { devicesController } from './devices';
import { freezeV1, freezerController, freezerStateV1, thawV1 } from './freezer';
import { hugetlbController } from './hugetlb';
import { memoryController, readOomControl } from './memory';
import { netClsController, netPrioController } from './net';
import { pidsController } from './pids';
import { rdmaController } from './rdma';

/** runc's subsystem order: settings are applied, and directories made, in this order. */
const ORDER = [
  'cpuset',
  'devices',
  'memory',
  'cpu',
  'cpuacct',
  'pids',
  'blkio',
  'hugetlb',
  'net_cls',
  'net_prio',
  'perf_event',
  'freezer',
  'rdma',
  'name=systemd',
  'misc',
];

export const V1_CONTROLLERS: readonly V1Controller[] = [
  cpusetController,
  devicesController,
  memoryController,
  cpuController,
  cpuacctController,
  pidsController,
  blkioController,
  hugetlbController,
  netClsController,
  netPrioController,
  freezerController,
  rdmaController,
];

interface Hierarchy {
  controllers: string[];
  mountpoint: string;
  dir: string;
}

interface UnifiedDir {
  mountpoint: string;
  dir: string;
}

interface V1State {
  id: string;
  root: string;
  cgroupsPath: string;
  hierarchies: Hierarchy[];
  unified?: UnifiedDir;
  created: string[];
  skipDevices: boolean;
}

export interface ManagerDeps {
  host: Host;
  fs: CgroupFs;
  warn: (message: string) => void;
  deviceLoader?: DeviceProgramLoader;
}

export interface ManagerInit {
  id: string;
  cgroupsPath?: string;
  systemd: boolean;
  root: string;
  skipDevices: boolean;
}

function orderIndex(controllers: string[]): number {
  const idx = controllers.map((c) => ORDER.indexOf(c)).filter((i) => i >= 0);
  return idx.length ? Math.min(...idx) : ORDER.length;
}

function isBelow(p: string, root: string): boolean {
  return p.startsWith(root === '/' ? '/' : `${root}/`);
}

export class V1Manager implements CgroupManager {
  readonly mode = 'v1' as const;

  private constructor(
    private readonly st: V1State,
    private readonly d: ManagerDeps,
  ) {}

  static fromOptions(o: ManagerInit, d: ManagerDeps): V1Manager {
    const inner = resolveInnerPath(o.id, o.cgroupsPath, o.systemd, d.host);
    const mounts = parseCgroupMounts(d.host.mountinfo()).filter((m) => isBelow(m.mountpoint, o.root));
    const self = parseSelfCgroup(d.host.selfCgroup());
    const hierarchies: Hierarchy[] = [];
    const seen = new Set<string>();
    let unified: UnifiedDir | undefined;
    for (const m of mounts) {
      if (m.fstype === 'cgroup2') {
        if (!unified) unified = { mountpoint: m.mountpoint, dir: v1Dir(m, inner, self, '') };
        continue;
      }
      if (m.controllers.length === 0) continue;
      const key = [...m.controllers].sort().join(',');
      if (seen.has(key)) continue; // the same hierarchy mounted twice
      seen.add(key);
      hierarchies.push({ controllers: m.controllers, mountpoint: m.mountpoint, dir: v1Dir(m, inner, self, m.controllers[0]) });
    }
    hierarchies.sort((a, b) => orderIndex(a.controllers) - orderIndex(b.controllers));
    return new V1Manager(
      {
        id: o.id,
        root: o.root,
        cgroupsPath: inner.path,
        hierarchies,
        unified,
        created: [],
        skipDevices: o.skipDevices,
      },
      d,
    );
  }

  static fromDescription(desc: CgroupDescription, d: ManagerDeps): V1Manager {
    const byDir = new Map<string, Hierarchy>();
    let unified: UnifiedDir | undefined;
    for (const [ctrl, dir] of Object.entries(desc.paths)) {
      const mountpoint = desc.mounts?.[ctrl] ?? path.dirname(dir);
      if (ctrl === '') {
        unified = { mountpoint, dir };
        continue;
      }
      const key = `${mountpoint}\0${dir}`;
      const h = byDir.get(key);
      if (h) h.controllers.push(ctrl);
      else byDir.set(key, { controllers: [ctrl], mountpoint, dir });
    }
    const hierarchies = [...byDir.values()].sort((a, b) => orderIndex(a.controllers) - orderIndex(b.controllers));
    return new V1Manager(
      {
        id: desc.id,
        root: desc.root,
        cgroupsPath: desc.cgroupsPath,
        hierarchies,
        unified,
        created: [...(desc.created ?? [])],
        skipDevices: desc.skipDevices ?? false,
      },
      d,
    );
  }

  describe(): CgroupDescription {
    const paths: Record<string, string> = {};
    const mounts: Record<string, string> = {};
    for (const h of this.st.hierarchies) {
      for (const c of h.controllers) {
        paths[c] = h.dir;
        mounts[c] = h.mountpoint;
      }
    }
    if (this.st.unified) {
      paths[''] = this.st.unified.dir;
      mounts[''] = this.st.unified.mountpoint;
    }
    const desc: CgroupDescription = {
      version: 1,
      mode: 'v1',
      id: this.st.id,
      root: this.st.root,
      cgroupsPath: this.st.cgroupsPath,
      paths,
      mounts,
      created: [...this.st.created],
    };
    if (this.st.skipDevices) desc.skipDevices = true;
    return desc;
  }

  /** Directory of a v1 controller, if its hierarchy is mounted. */
  dirOf(controller: string): string | undefined {
    return this.st.hierarchies.find((h) => h.controllers.includes(controller))?.dir;
  }

  private leafDirs(): string[] {
    const dirs = [...new Set(this.st.hierarchies.map((h) => h.dir))];
    if (this.st.unified) dirs.push(this.st.unified.dir);
    return dirs;
  }

  private ctx(creating: boolean): V1Context {
    return { fs: this.d.fs, warn: this.d.warn, creating };
  }

  private async unifiedHasController(name: string): Promise<boolean> {
    if (!this.st.unified) return false;
    const text = await readOptional(this.d.fs, path.join(this.st.unified.mountpoint, 'cgroup.controllers'));
    return (text ?? '').split(/\s+/).includes(name);
  }

  private prepare(resources: LinuxResources | undefined, creating: boolean): LinuxResources {
    const r = cloneResources(resources);
    if (this.st.skipDevices) delete r.devices;
    else if (creating && r.devices === undefined) r.devices = []; // runc's defaults still apply
    validateResources(r, { mode: 'v1', host: this.d.host, warn: this.d.warn });
    return r;
  }

  /** Every field must have its controller: never drop a setting silently. */
  private async checkControllers(r: LinuxResources): Promise<void> {
    for (const c of V1_CONTROLLERS) {
      if (!c.needsToHandle(r) || this.dirOf(c.name) !== undefined) continue;
      if (c.name === 'hugetlb' && (await this.unifiedHasController('hugetlb'))) continue;
      throw new FailedPreconditionError(
        `${c.field(r)}: cannot set ${c.name} limit: the ${c.name} cgroup controller is not mounted under ${this.st.root}` +
          (c.name === 'hugetlb' && this.st.unified ? ' nor available in the unified hierarchy' : ''),
      );
    }
  }

  private async applyAll(r: LinuxResources, creating: boolean): Promise<void> {
    const ctx = this.ctx(creating);
    for (const c of V1_CONTROLLERS) {
      const dir = this.dirOf(c.name);
      if (c.check && dir !== undefined && c.needsToHandle(r)) await c.check(dir, r, ctx);
    }
    for (const c of V1_CONTROLLERS) {
      if (!c.needsToHandle(r)) continue;
      const dir = this.dirOf(c.name);
      if (dir !== undefined) {
        await c.apply(dir, r, ctx);
      } else if (c.name === 'hugetlb' && this.st.unified) {
        // Hybrid host with hugetlb in the unified tree.
        const u = this.st.unified;
        await enableControllers(this.d.fs, u.mountpoint, u.dir, [], [{ name: 'hugetlb', field: hugetlbController.field(r) }]);
        await hugetlbV2.apply(u.dir, r, ctx);
      }
    }
  }

  async create(resources?: LinuxResources): Promise<void> {
    const r = this.prepare(resources, true);
    await this.checkControllers(r);
    const ctx = this.ctx(true);
    const made: string[] = [];
    try {
      for (const h of this.st.hierarchies) {
        const inits = V1_CONTROLLERS.filter((c) => c.initDir && h.controllers.includes(c.name));
        await mkdirBelow(this.d.fs, h.mountpoint, h.dir, made, async (dir, parent) => {
          if (dir === h.dir) return;
          for (const c of inits) await c.initDir?.(dir, parent, ctx);
        });
      }
      if (this.st.unified) await mkdirBelow(this.d.fs, this.st.unified.mountpoint, this.st.unified.dir, made);
      await this.applyAll(r, true);
      for (const h of this.st.hierarchies) {
        for (const c of V1_CONTROLLERS) {
          if (c.initDir && h.controllers.includes(c.name)) await c.initDir(h.dir, path.dirname(h.dir), ctx);
        }
      }
    } catch (err) {
      await removeCreatedParents(this.d.fs, made);
      throw err;
    }
    for (const d of made) if (!this.st.created.includes(d)) this.st.created.push(d);
  }

  procsFiles(): string[] {
    return this.leafDirs().map((d) => path.join(d, 'cgroup.procs'));
  }

  async addProcess(pid: number): Promise<void> {
    checkPid(pid);
    for (const f of this.procsFiles()) await this.d.fs.write(f, String(pid));
  }

  async update(resources: LinuxResources): Promise<void> {
    const r = this.prepare(resources, false);
    await this.checkControllers(r);
    if (!(await this.exists())) throw new NotFoundError(`cgroup: ${this.leafDirs()[0] ?? this.st.cgroupsPath} does not exist`);
    await this.applyAll(r, false);
  }

  private freezerTarget(): { v1?: string; v2?: string } {
    const v1 = this.dirOf('freezer');
    if (v1) return { v1 };
    if (this.st.unified) return { v2: this.st.unified.dir };
    return {};
  }

  async freeze(): Promise<void> {
    const t = this.freezerTarget();
    if (t.v1) return freezeV1(this.d.fs, t.v1);
    if (t.v2 && (await this.d.fs.exists(path.join(t.v2, 'cgroup.freeze')))) return freezeV2(this.d.fs, t.v2);
    throw new FailedPreconditionError(`cgroup: cannot freeze: the freezer controller is not mounted under ${this.st.root}`);
  }

  async thaw(): Promise<void> {
    const t = this.freezerTarget();
    if (t.v1) return thawV1(this.d.fs, t.v1);
    if (t.v2) return thawV2(this.d.fs, t.v2);
  }

  async freezerState(): Promise<FreezerState> {
    const t = this.freezerTarget();
    if (t.v1) return freezerStateV1(this.d.fs, t.v1);
    if (t.v2) return freezerStateV2(this.d.fs, t.v2);
    return 'thawed';
  }

  /** The hierarchy `pids()` reads: freezer (what freeze/kill act on), else devices, pids, memory. */
  private primaryDir(): string | undefined {
    for (const c of ['freezer', 'devices', 'pids', 'memory', 'cpu']) {
      const d = this.dirOf(c);
      if (d) return d;
    }
    return this.st.hierarchies[0]?.dir ?? this.st.unified?.dir;
  }

  async pids(): Promise<number[]> {
    const d = this.primaryDir();
    return d === undefined ? [] : readPidsRecursive(this.d.fs, d);
  }

  async stats(): Promise<CgroupStats> {
    const paths: Record<string, string> = {};
    for (const h of this.st.hierarchies) for (const c of h.controllers) paths[c] = h.dir;
    return readV1Stats(this.d.fs, { paths, unified: this.st.unified?.dir, hugePageSizes: this.d.host.hugePageSizes() });
  }

  /**
   * runc signalAllProcesses: freeze, signal every pid, thaw. Thaws only if it froze the
   * cgroup itself, or for SIGKILL (so a paused container's processes can die). On hybrid
   * hosts SIGKILL also goes through the unified tree's cgroup.kill.
   */
  async killAll(signal: number): Promise<void> {
    checkSignal(signal);
    let froze = false;
    const freezer = this.dirOf('freezer');
    if (freezer) {
      try {
        if ((await freezerStateV1(this.d.fs, freezer)) === 'thawed') {
          await freezeV1(this.d.fs, freezer);
          froze = true;
        }
      } catch (err) {
        this.d.warn(`cgroup: kill all: could not freeze ${freezer}: ${(err as Error).message}`);
      }
    }
    try {
      const pids = new Set(await this.pids());
      if (this.st.unified && this.st.unified.dir !== this.primaryDir()) {
        for (const p of await readPidsRecursive(this.d.fs, this.st.unified.dir)) pids.add(p);
      }
      killPids([...pids], signal);
      if (signal === SIGKILL && this.st.unified) {
        const killFile = path.join(this.st.unified.dir, 'cgroup.kill');
        if (await this.d.fs.exists(killFile)) await this.d.fs.write(killFile, '1');
      }
    } finally {
      if (freezer && (froze || signal === SIGKILL)) await thawV1(this.d.fs, freezer).catch(() => undefined);
    }
  }

  async destroy(): Promise<void> {
    const freezer = this.dirOf('freezer');
    if (freezer && (await this.d.fs.exists(freezer))) {
      await thawV1(this.d.fs, freezer).catch(() => undefined);
    }
    if (this.st.unified && (await this.d.fs.exists(this.st.unified.dir))) {
      await thawV2(this.d.fs, this.st.unified.dir).catch(() => undefined);
    }
    const leaves = this.leafDirs();
    await removeCgroupDirs(this.d.fs, leaves);
    await removeCreatedParents(this.d.fs, createdParents(this.st.created, leaves));
    this.st.created = [];
  }

  async exists(): Promise<boolean> {
    for (const d of this.leafDirs()) if (await this.d.fs.exists(d)) return true;
    return false;
  }

  async oomKillCount(): Promise<number> {
    const mem = this.dirOf('memory');
    if (!mem) return 0;
    const oc = await readOomControl(this.ctx(false), mem);
    if (oc === undefined && !(await this.d.fs.exists(mem))) throw new NotFoundError(`cgroup: ${mem} does not exist`);
    return oc?.oomKill ?? 0;
  }

  oomEvents(opts?: OomEventOptions): AsyncIterable<OomEvent> {
    const mem = this.dirOf('memory');
    const ctx = this.ctx(false);
    return oomEventStream(
      async () => {
        if (!mem) return undefined;
        const oc = await readOomControl(ctx, mem);
        return oc === undefined ? undefined : { oomKill: oc.oomKill, underOom: oc.underOom };
      },
      mem ? eventfdOomSource(this.d.fs, mem) : undefined,
      opts,
    );
  }
}
