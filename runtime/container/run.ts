// `run` = create + start (+ wait and delete unless detached), as `runc run`.
import type { RuntimeContext } from '../context';
import { create, type CreateOptions } from './create';
import { destroy } from './delete';
import { start } from './start';
import { trace } from '../trace';

export interface RunOptions extends CreateOptions {
  detach?: boolean;
  /** Called with the init pid once it runs, so a CLI can forward signals to it. */
  onStarted?: (pid: number) => void;
}

/** Returns the workload's exit code (128+N for death by signal N); 0 when detached. */
export async function run(ctx: RuntimeContext, opts: RunOptions): Promise<number> {
  const detach = !!opts.detach;
  const { container, init } = await create(ctx, { ...opts, wait: !detach });
  try {
    await start(ctx, opts.id);
  } catch (err) {
    await destroy(ctx, container).catch(() => undefined);
    throw err;
  }
  if (detach) return 0;
  opts.onStarted?.(container.record.pid);
  const code = await init.waitExit();
  trace('workload exited');
  await destroy(ctx, container);
  return code;
}
