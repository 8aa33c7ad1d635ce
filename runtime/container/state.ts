import type { RuntimeContext } from '../context';
import { Container } from './container';

export async function state(ctx: RuntimeContext, id: string): Promise<Record<string, unknown>> {
  return Container.load(ctx.store, id, ctx.sys).stateOutput();
}
