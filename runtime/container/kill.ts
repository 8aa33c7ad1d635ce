// `kill`: signal the init, or with `all` every process in the container's cgroup.
import type { RuntimeContext } from '../context';
import { Container } from './container';

export async function kill(ctx: RuntimeContext, id: string, signal: number, all = false): Promise<void> {
  const container = Container.load(ctx.store, id, ctx.sys);
  if (all) {
    // runc allows --all on a stopped container whose cgroup still holds processes.
    const status = await container.status();
    if (status === 'stopped' && !(await container.cgroup().exists())) await container.require('kill');
    await container.cgroup().killAll(signal);
    return;
  }
  await container.require('kill');
  ctx.sys.kill(container.record.pid, signal);
}
