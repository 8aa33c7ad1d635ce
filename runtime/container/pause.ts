// pause / resume: freeze and thaw every process in the container's cgroup.
import type { RuntimeContext } from '../context';
import { Container } from './container';

export async function pause(ctx: RuntimeContext, id: string): Promise<Container> {
  const container = Container.load(ctx.store, id, ctx.sys);
  await container.require('pause');
  await container.cgroup().freeze();
  return container;
}

export async function resume(ctx: RuntimeContext, id: string): Promise<Container> {
  const container = Container.load(ctx.store, id, ctx.sys);
  await container.require('resume');
  await container.cgroup().thaw();
  return container;
}
