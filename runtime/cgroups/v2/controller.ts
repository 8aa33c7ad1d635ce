// The shape of one cgroup v2 controller module. `name` is the controller as listed in
// cgroup.controllers (it must be enabled in the parent's cgroup.subtree_control), or ""
// for files every cgroup has.

import * as path from 'node:path';
import type { LinuxResources } from '../../spec/types';
import type { CgroupFs } from '../fs';

export interface V2Context {
  fs: CgroupFs;
  warn(message: string): void;
  creating: boolean;
}

export interface V2Controller {
  readonly name: string;
  needsToHandle(r: LinuxResources): boolean;
  field(r: LinuxResources): string;
  /** As V1Controller.check: called for every controller before any apply. */
  check?(dir: string, r: LinuxResources, ctx: V2Context): Promise<void>;
  apply(dir: string, r: LinuxResources, ctx: V2Context): Promise<void>;
}

export function writeTo(ctx: V2Context, dir: string, file: string, value: string, field: string): Promise<void> {
  return ctx.fs.write(path.join(dir, file), value, field);
}

export function isSet(v: number | undefined): v is number {
  return v !== undefined && v !== 0;
}

/** runc numToStr: 0 → "" (unset), -1 → "max". */
export function numToStr(v: number): string {
  if (v === 0) return '';
  if (v === -1) return 'max';
  return String(v);
}
