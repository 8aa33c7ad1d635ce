// update: change the resource limits of a live container. The new values are merged into
// the stored spec so later readers (exec, the vkernel view) see the limits in force.
import type { RuntimeContext } from '../context';
import type { LinuxResources } from '../spec/types';
import { writeFileAtomic } from '../state/atomic';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { InvalidArgumentError } from '../errors';
import { ANNOTATION_PREFIX, ANNOTATIONS, parseViewPolicy, unknownVkernelAnnotations, type ViewPolicy } from '../vkernel/policy';
import { updateView, viewStatus } from '../vkernel/view';
import { PRELOAD_DEST } from '../vkernel/syscalls';
import { Container } from './container';
import { viewDir } from './view-dir';

export async function update(ctx: RuntimeContext, id: string, resources: LinuxResources): Promise<void> {
  const container = Container.load(ctx.store, id, ctx.sys);
  await container.require('update');
  const spec = container.spec();
  await container.cgroup().update(withStoredChecks(spec.linux?.resources ?? {}, resources));
  spec.linux ??= {};
  spec.linux.resources = mergeResources(spec.linux.resources ?? {}, resources);
  writeFileAtomic(path.join(ctx.store.dir(id), 'config.json'), JSON.stringify(spec));
  // FUSE views read the cgroup live; snapshot files are rewritten here.
  if (fs.existsSync(viewDir(ctx.store, id))) await updateView(viewDir(ctx.store, id));
}

export interface AnnotationUpdate {
  /** The policy now stored (and, where the container has a view, in force). */
  policy: ViewPolicy;
  /** Parts of the change that only a restart applies (the caller prints or logs them). */
  deferred: string[];
}

/**
 * vkernel extension of update: changes `io.vkernel.*` annotations of a live container. The
 * merged annotations are validated as create does (a bad value names the annotation and the
 * value), stored in config.json (atomically) and the new policy is applied from the next
 * read or call: the view's files and the syscall agent read the same vkfs.conf. An empty
 * value removes the annotation (its default applies). Other annotations are refused.
 */
export async function updateAnnotations(
  ctx: RuntimeContext,
  id: string,
  change: Record<string, string>,
  opts: {
    /** Runs after the change is validated and before anything of it is written (a resources update: if it fails, the policy stays as it was). */
    beforeApply?: () => Promise<void>;
  } = {},
): Promise<AnnotationUpdate> {
  for (const key of Object.keys(change)) {
    if (!key.startsWith(ANNOTATION_PREFIX)) {
      throw new InvalidArgumentError(`--annotation ${key}: only ${ANNOTATION_PREFIX}* annotations can be changed on a live container`, 'annotation');
    }
  }
  const typos = unknownVkernelAnnotations(change);
  if (typos.length) {
    throw new InvalidArgumentError(`--annotation ${typos[0]}: unknown vkernel annotation; known: ${Object.values(ANNOTATIONS).join(', ')}`, 'annotation');
  }
  const merged = (from: Record<string, string> | undefined): Record<string, string> => {
    const out: Record<string, string> = { ...(from ?? {}) };
    for (const [k, v] of Object.entries(change)) {
      if (v === '') delete out[k];
      else out[k] = v;
    }
    return out;
  };
  const container = Container.load(ctx.store, id, ctx.sys);
  await container.require('update');
  parseViewPolicy(merged(container.spec().annotations)); // throws before anything is written
  // Read again after beforeApply: an update rewrote config.json with the new resources.
  let spec = container.spec();
  if (opts.beforeApply) {
    await opts.beforeApply();
    spec = Container.load(ctx.store, id, ctx.sys).spec();
  }
  const before = parseViewPolicy(spec.annotations);
  spec.annotations = merged(spec.annotations);
  const policy = parseViewPolicy(spec.annotations);
  writeFileAtomic(path.join(ctx.store.dir(id), 'config.json'), JSON.stringify(spec));
  const deferred: string[] = [];
  const dir = viewDir(ctx.store, id);
  const mode = fs.existsSync(dir) ? viewStatus(dir).mode : 'stopped';
  const live = mode !== 'stopped' && mode !== 'off';
  if (fs.existsSync(dir)) await updateView(dir, { policy });
  if (!live && policy.view) deferred.push(`${ANNOTATIONS.view}=on: the container was created without a view; it applies at the next create`);
  if (policy.mode !== before.mode) deferred.push(`${ANNOTATIONS.mode}: the syscall mechanism is chosen at create; it applies at the next create`);
  if (policy.syscalls.join() !== before.syscalls.join() && preloaded(container.record.pid)) {
    deferred.push(`${ANNOTATIONS.syscalls}: this container's syscalls are virtualized by the preload library, which reads the setting when a process starts; running processes keep theirs`);
  }
  if (before.syscalls.length === 0 && policy.syscalls.length > 0) {
    deferred.push(`${ANNOTATIONS.syscalls}: the container was created with none (no filter); it applies at the next create`);
  }
  return { policy, deferred };
}

/** Field-wise merge, one level deep per controller, as runc's update does. */
export function mergeResources(base: LinuxResources, change: LinuxResources): LinuxResources {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) continue;
    const old = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && old && typeof old === 'object' && !Array.isArray(old) ? { ...old, ...v } : v;
  }
  return out as LinuxResources;
}

/**
 * The change, with what runc's update would also apply from the stored resources (runc sets
 * the whole of them; our driver only sees the fields that change):
 * - memory.checkBeforeUpdate of the config, so a check set at create still guards `update --memory`;
 * - the stored memory+swap limit when only the memory limit changes, because cgroup v2 keeps
 *   swap alone (memory.swap.max = swap - limit) and would otherwise drift from the total.
 */
export function withStoredChecks(stored: LinuxResources, change: LinuxResources): LinuxResources {
  if (!change.memory) return change;
  const memory = { ...change.memory };
  const check = stored.memory?.checkBeforeUpdate;
  if (check !== undefined && memory.checkBeforeUpdate === undefined) memory.checkBeforeUpdate = check;
  // Only a total that still holds the new limit (or unlimited): a higher limit than the old
  // total leaves swap alone, as runc 1.1 does, instead of a refusal (swap < limit).
  const swap = stored.memory?.swap;
  const limit = memory.limit;
  if (swap !== undefined && limit !== undefined && memory.swap === undefined && (swap === -1 || limit === -1 || swap >= limit)) memory.swap = swap;
  return { ...change, memory };
}

/** Whether the container's init runs with the vkernel preload library (the LD_PRELOAD mechanism). */
function preloaded(initPid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${initPid}/environ`, 'utf8').split('\0').some((e) => e.startsWith('LD_PRELOAD=') && e.includes(PRELOAD_DEST));
  } catch {
    return false;
  }
}
