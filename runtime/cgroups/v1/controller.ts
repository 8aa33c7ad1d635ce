// The shape of one cgroup v1 controller module. The manager calls, for each mounted
// hierarchy in runc's subsystem order: initDir (create only, every directory from the
// mountpoint down to the leaf), then apply with the whole linux.resources.

import * as path from 'node:path';
import type { LinuxResources } from '../../spec/types';
import type { CgroupFs } from '../fs';

export interface V1Context {
  fs: CgroupFs;
  warn(message: string): void;
  /** True inside create(), false inside update(). */
  creating: boolean;
}

export interface V1Controller {
  /** Subsystem name as mountinfo shows it ("memory", "net_cls", …). */
  readonly name: string;
  /** Whether `r` sets anything this controller must write. */
  needsToHandle(r: LinuxResources): boolean;
  /** The linux.resources field to name when the controller is needed but not mounted. */
  field(r: LinuxResources): string;
  /**
   * Refusals that depend on the cgroup's current state (memory.checkBeforeUpdate). The
   * manager calls every controller's check before any apply, so a refusal writes nothing.
   */
  check?(dir: string, r: LinuxResources, ctx: V1Context): Promise<void>;
  /** Write the settings into the cgroup directory `dir`. Only called when needsToHandle. */
  apply(dir: string, r: LinuxResources, ctx: V1Context): Promise<void>;
  /**
   * create(): prepare each directory below the mountpoint, top-down — the ancestors right
   * after mkdir, the leaf after apply (so the user's values win over inherited ones).
   */
  initDir?(dir: string, parent: string, ctx: V1Context): Promise<void>;
}

export function writeTo(ctx: V1Context, dir: string, file: string, value: string, field: string): Promise<void> {
  return ctx.fs.write(path.join(dir, file), value, field);
}

/** "set" in runc's sense: present and not 0. */
export function isSet(v: number | undefined): v is number {
  return v !== undefined && v !== 0;
}
