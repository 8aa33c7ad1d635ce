// `delete`: a stopped (or created) container is removed; a running or paused one only with
// `force`, which kills everything in it first. Poststop hooks run once the init is gone.
import type { RuntimeContext } from '../context';
import { settled } from '../settled';
import { trace } from '../trace';
import { runHooksWarnOnly } from '../hooks';
import * as path from 'node:path';
import { stopView } from '../vkernel/view';
import { stopAgent } from '../vkernel/syscalls';
import { Container } from './container';
import { viewDir } from './view-dir';
import { waitGone } from './wait';

export async function deleteContainer(ctx: RuntimeContext, id: string, force = false): Promise<void> {
  const container = Container.load(ctx.store, id, ctx.sys);
  const status = await container.status();
  if (!force) container.requireStatus(status, 'delete');
  await destroy(ctx, container, status);
}

/** Kills what remains, runs poststop hooks, removes the cgroup and the state dir. */
export async function destroy(ctx: RuntimeContext, container: Container, status?: string): Promise<void> {
  const cgroup = container.cgroup();
  const rec = container.record;
  if ((status ?? (await container.status())) !== 'stopped' || (await cgroup.exists())) {
    // Thaw first: a frozen task cannot die.
    await cgroup.thaw().catch(() => undefined);
    await cgroup.killAll(9).catch(() => undefined);
    if (rec.pid) ctx.sys.kill(rec.pid, 9);
    await waitGone(ctx.sys, rec.pid, rec.pidStartTime, 10000);
    trace('processes gone');
  }
  let spec;
  try {
    spec = container.spec();
  } catch {
    spec = undefined;
  }
  await runHooksWarnOnly(spec?.hooks, 'poststop', container.ociState('stopped'), (m) => ctx.log.warn(m));
  // Independent of each other once the container's processes are gone (the view's and the
  // agent's processes live outside its cgroup), so side by side. All before the state dir
  // goes: rm -rf must never walk into a live FUSE mount.
  await settled([
    stopView(viewDir(ctx.store, container.id)).then(() => trace('view stopped')),
    stopAgent(path.join(ctx.store.dir(container.id), 'agent')).then(() => trace('vkernel agent stopped')),
    cgroup.destroy().then(() => trace('cgroup removed')),
  ] as const);
  ctx.store.remove(container.id);
}
