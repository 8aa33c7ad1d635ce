// A container as the runtime library sees it: our state record plus what the kernel says now.
import * as fs from 'node:fs';
import { loadCgroupManager, type CgroupManager } from '../cgroups/manager';
import { OCI_VERSION } from '../paths';
import type { OciState, Spec } from '../spec/types';
import type { ContainerRecord, StateStore } from '../state/store';
import { isSameLiveProcess, realSys, type Sys } from '../sys';
import { requireVerb, type Status, type Verb } from './status';

export class Container {
  #cgroup?: CgroupManager;

  constructor(
    readonly store: StateStore,
    readonly record: ContainerRecord,
    readonly sys: Sys = realSys,
  ) {}

  static load(store: StateStore, id: string, sys: Sys = realSys): Container {
    return new Container(store, store.load(id), sys);
  }

  get id(): string {
    return this.record.id;
  }

  spec(): Spec {
    return this.store.loadSpec(this.id);
  }

  cgroup(): CgroupManager {
    this.#cgroup ??= loadCgroupManager(this.record.cgroup);
    return this.#cgroup;
  }

  initAlive(): boolean {
    return isSameLiveProcess(this.sys, this.record.pid, this.record.pidStartTime);
  }

  /** Status from the live process, never from what we last wrote. */
  async status(): Promise<Status> {
    if (!this.initAlive()) return 'stopped';
    // The freezer first: a created container can be paused too (as in runc), and then reads
    // `paused` until resume gives it back its `created`.
    try {
      if ((await this.cgroup().freezerState()) !== 'thawed') return 'paused';
    } catch {
      /* no freezer: cannot be paused */
    }
    if (fs.existsSync(this.store.execFifo(this.id))) return 'created';
    return 'running';
  }

  async require(verb: Verb): Promise<Status> {
    const status = await this.status();
    requireVerb(this.id, status, verb);
    return status;
  }

  requireStatus(status: Status, verb: Verb): void {
    requireVerb(this.id, status, verb);
  }

  /** The OCI state document as hooks receive it. */
  ociState(status: OciState['status']): OciState {
    return {
      ociVersion: OCI_VERSION,
      id: this.id,
      status,
      pid: status === 'stopped' ? undefined : this.record.pid,
      bundle: this.record.bundle,
      annotations: this.record.annotations,
    };
  }

  /** `vkernel state` output, shaped like runc's. */
  async stateOutput(): Promise<Record<string, unknown>> {
    const status = await this.status();
    const out: Record<string, unknown> = {
      ociVersion: OCI_VERSION,
      id: this.id,
      pid: status === 'stopped' ? 0 : this.record.pid,
      status,
      bundle: this.record.bundle,
      rootfs: this.record.rootfs,
      created: this.record.created,
      owner: this.record.owner,
    };
    if (Object.keys(this.record.annotations).length > 0) out.annotations = this.record.annotations;
    return out;
  }
}
