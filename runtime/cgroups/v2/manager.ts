// The cgroup v2 (unified) driver: one directory, controllers delegated through the
// ancestors' cgroup.subtree_control, settings in runc's fs2 order (pids, memory, io, cpu,
// devices, cpuset, hugetlb, rdma, then unified verbatim), freeze via cgroup.freeze, kill
// via cgroup.kill.

import * as path from 'node:path';
import { FailedPreconditionError, NotFoundError } from '../../errors';
import type { LinuxResources } from '../../spec/types';
import { checkPid, checkSignal, cloneResources, createdParents, killPids, SIGKILL } from '../common';
import { effectiveDeviceRules } from '../device-rules';
import {
  mkdirBelow,
  parseFlatKeyed,
  readOptional,
  readPidsRecursive,
  removeCgroupDirs,
  removeCreatedParents,
} from '../fs';
import { parseCgroupMounts, parseSelfCgroup } from '../host';
import type { CgroupDescription, CgroupManager, FreezerState } from '../manager';
import { inotifyOomSource, oomEventStream, type OomCounters, type OomEvent, type OomEventOptions } from '../oom';
import { resolveInnerPath, v2Dir } from '../paths';
import { readV2Stats, type CgroupStats } from '../stats';
import { validateResources } from '../validate';
import type { ManagerDeps, ManagerInit } from '../v1/manager';
import type { V2Context, V2Controller } from './controller';
import { cpuController } from './cpu';
import { cpusetController } from './cpuset';
import { compileDeviceFilter } from './devicefilter';
import { applyDevicesV2 } from './devices';
import { enableControllers, type RequiredController } from './enable';
import { freezeV2, freezerStateV2, thawV2 } from './freezer';
import { hugetlbController } from './hugetlb';
import { ioController } from './io';
import { memoryController } from './memory';
import { pidsController } from './pids';
import { rdmaController } from './rdma';
import { unifiedController, unifiedControllers } from './unified';

/** Controllers stats() reads, delegated even when no setting needs them. */
const STATS_CONTROLLERS = ['cpu', 'io', 'memory', 'pids'];

const BEFORE_DEVICES: readonly V2Controller[] = [pidsController, memoryController, ioController, cpuController];
const AFTER_DEVICES: readonly V2Controller[] = [cpusetController, hugetlbController, rdmaController];
export const V2_CONTROLLERS: readonly V2Controller[] = [...BEFORE_DEVICES, ...AFTER_DEVICES];

interface V2State {
  id: string;
  root: string;
  cgroupsPath: string;
  mountpoint: string;
  dir: string;
  created: string[];
  skipDevices: boolean;
}

export class V2Manager implements CgroupManager {
  readonly mode = 'v2' as const;

  private constructor(
    private readonly st: V2State,
    private readonly d: ManagerDeps,
  ) {}

  static fromOptions(o: ManagerInit, d: ManagerDeps): V2Manager {
    const inner = resolveInnerPath(o.id, o.cgroupsPath, o.systemd, d.host);
    const mount = parseCgroupMounts(d.host.mountinfo()).find((m) => m.fstype === 'cgroup2' && m.mountpoint === o.root);
    if (!mount) throw new FailedPreconditionError(`cgroup: no cgroup2 file system is mounted at ${o.root}`);
    const self = parseSelfCgroup(d.host.selfCgroup());
    return new V2Manager(
      {
        id: o.id,
        root: o.root,
        cgroupsPath: inner.path,
        mountpoint: mount.mountpoint,
        dir: v2Dir(mount, inner, self),
        created: [],
        skipDevices: o.skipDevices,
      },
      d,
    );
  }

  static fromDescription(desc: CgroupDescription, d: ManagerDeps): V2Manager {
    const dir = desc.paths[''];
    if (typeof dir !== 'string') throw new FailedPreconditionError('cgroup: the v2 description has no unified path');
    return new V2Manager(
      {
        id: desc.id,
        root: desc.root,
        cgroupsPath: desc.cgroupsPath,
        mountpoint: desc.mounts?.[''] ?? desc.root,
        dir,
        created: [...(desc.created ?? [])],
        skipDevices: desc.skipDevices ?? false,
      },
      d,
    );
  }

  describe(): CgroupDescription {
    const desc: CgroupDescription = {
      version: 1,
      mode: 'v2',
      id: this.st.id,
      root: this.st.root,
      cgroupsPath: this.st.cgroupsPath,
      paths: { '': this.st.dir },
      mounts: { '': this.st.mountpoint },
      created: [...this.st.created],
    };
    if (this.st.skipDevices) desc.skipDevices = true;
    return desc;
  }

  /** The container's cgroup directory. */
  get path(): string {
    return this.st.dir;
  }

  private ctx(creating: boolean): V2Context {
    return { fs: this.d.fs, warn: this.d.warn, creating };
  }

  private prepare(resources: LinuxResources | undefined, creating: boolean): LinuxResources {
    const r = cloneResources(resources);
    if (this.st.skipDevices) delete r.devices;
    else if (creating && r.devices === undefined) r.devices = [];
    validateResources(r, { mode: 'v2', host: this.d.host, warn: this.d.warn });
    const net = r.network;
    if (net && ((net.classID !== undefined && net.classID !== 0) || (net.priorities ?? []).length > 0)) {
      const field = net.classID ? 'linux.resources.network.classID' : 'linux.resources.network.priorities';
      throw new FailedPreconditionError(`${field}: cannot set network limits: net_cls/net_prio do not exist in cgroup v2`);
    }
    return r;
  }

  private required(r: LinuxResources): RequiredController[] {
    const out: RequiredController[] = [];
    for (const c of V2_CONTROLLERS) if (c.needsToHandle(r)) out.push({ name: c.name, field: c.field(r) });
    for (const name of unifiedControllers(r.unified)) {
      const key = Object.keys(r.unified ?? {}).find((k) => k.startsWith(`${name}.`)) ?? name;
      out.push({ name, field: `linux.resources.unified.${key}` });
    }
    return out;
  }

  private async applyAll(r: LinuxResources, creating: boolean): Promise<void> {
    const ctx = this.ctx(creating);
    const dir = this.st.dir;
    for (const c of V2_CONTROLLERS) if (c.check && c.needsToHandle(r)) await c.check(dir, r, ctx);
    for (const c of BEFORE_DEVICES) if (c.needsToHandle(r)) await c.apply(dir, r, ctx);
    if (r.devices !== undefined) await applyDevicesV2(dir, effectiveDeviceRules(r.devices), this.d.deviceLoader);
    for (const c of AFTER_DEVICES) if (c.needsToHandle(r)) await c.apply(dir, r, ctx);
    if (unifiedController.needsToHandle(r)) await unifiedController.apply(dir, r, ctx);
  }

  private checkDevices(r: LinuxResources): Promise<void> {
    if (r.devices === undefined) return Promise.resolve();
    // Report the missing eBPF loader, and rule sets the program cannot express (holes
    // punched into a wildcard exception), before anything is created.
    if (!this.d.deviceLoader) return applyDevicesV2(this.st.dir, [], undefined);
    compileDeviceFilter(effectiveDeviceRules(r.devices));
    return Promise.resolve();
  }

  async create(resources?: LinuxResources): Promise<void> {
    const r = this.prepare(resources, true);
    await this.checkDevices(r);
    const made: string[] = [];
    try {
      await mkdirBelow(this.d.fs, this.st.mountpoint, this.st.dir, made);
      const req = this.required(r);
      await enableControllers(this.d.fs, this.st.mountpoint, this.st.dir, STATS_CONTROLLERS, req);
      await this.applyAll(r, true);
    } catch (err) {
      await removeCreatedParents(this.d.fs, made);
      throw err;
    }
    for (const d of made) if (!this.st.created.includes(d)) this.st.created.push(d);
  }

  procsFiles(): string[] {
    return [path.join(this.st.dir, 'cgroup.procs')];
  }

  async addProcess(pid: number): Promise<void> {
    checkPid(pid);
    await this.d.fs.write(path.join(this.st.dir, 'cgroup.procs'), String(pid));
  }

  async update(resources: LinuxResources): Promise<void> {
    const r = this.prepare(resources, false);
    await this.checkDevices(r);
    if (!(await this.exists())) throw new NotFoundError(`cgroup: ${this.st.dir} does not exist`);
    await enableControllers(this.d.fs, this.st.mountpoint, this.st.dir, [], this.required(r));
    await this.applyAll(r, false);
  }

  freeze(): Promise<void> {
    return freezeV2(this.d.fs, this.st.dir);
  }

  thaw(): Promise<void> {
    return thawV2(this.d.fs, this.st.dir);
  }

  freezerState(): Promise<FreezerState> {
    return freezerStateV2(this.d.fs, this.st.dir);
  }

  pids(): Promise<number[]> {
    return readPidsRecursive(this.d.fs, this.st.dir);
  }

  stats(): Promise<CgroupStats> {
    return readV2Stats(this.d.fs, this.st.dir, this.d.host.hugePageSizes());
  }

  async killAll(signal: number): Promise<void> {
    checkSignal(signal);
    const killFile = path.join(this.st.dir, 'cgroup.kill');
    if (signal === SIGKILL && (await this.d.fs.exists(killFile))) {
      await this.d.fs.write(killFile, '1');
      return;
    }
    let froze = false;
    try {
      if ((await freezerStateV2(this.d.fs, this.st.dir)) === 'thawed' && (await this.d.fs.exists(path.join(this.st.dir, 'cgroup.freeze')))) {
        await freezeV2(this.d.fs, this.st.dir);
        froze = true;
      }
    } catch (err) {
      this.d.warn(`cgroup: kill all: could not freeze ${this.st.dir}: ${(err as Error).message}`);
    }
    try {
      killPids(await this.pids(), signal);
    } finally {
      if (froze || signal === SIGKILL) await thawV2(this.d.fs, this.st.dir).catch(() => undefined);
    }
  }

  async destroy(): Promise<void> {
    if (await this.d.fs.exists(this.st.dir)) await thawV2(this.d.fs, this.st.dir).catch(() => undefined);
    await removeCgroupDirs(this.d.fs, [this.st.dir]);
    await removeCreatedParents(this.d.fs, createdParents(this.st.created, [this.st.dir]));
    this.st.created = [];
  }

  exists(): Promise<boolean> {
    return this.d.fs.exists(this.st.dir);
  }

  private async readOom(): Promise<OomCounters | undefined> {
    const text = await readOptional(this.d.fs, path.join(this.st.dir, 'memory.events'));
    if (text === undefined) return (await this.exists()) ? { oomKill: 0, oom: 0 } : undefined;
    const kv = parseFlatKeyed(text);
    return { oomKill: kv.get('oom_kill') ?? 0, oom: kv.get('oom') ?? 0 };
  }

  async oomKillCount(): Promise<number> {
    const c = await this.readOom();
    if (c === undefined) throw new NotFoundError(`cgroup: ${this.st.dir} does not exist`);
    return c.oomKill;
  }

  oomEvents(opts?: OomEventOptions): AsyncIterable<OomEvent> {
    return oomEventStream(() => this.readOom(), inotifyOomSource(this.st.dir), opts);
  }
}
