import type { CgroupStats } from '../cgroups/manager';
import type { RuntimeContext } from '../context';
import { Container } from './container';

export async function stats(ctx: RuntimeContext, id: string): Promise<CgroupStats> {
  const container = Container.load(ctx.store, id, ctx.sys);
  return container.cgroup().stats();
}
