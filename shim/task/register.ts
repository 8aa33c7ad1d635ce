// The one place the task service meets ttrpc: the same handlers under containerd.task.v2.Task
// (every containerd over ttrpc) and containerd.task.v3.Task (identical messages, another
// package name). Errors are thrown as typed errors and mapped by the transport's toStatus.
import { trace, traceEnabled, traceNow } from '../../runtime/trace';
import type { ServiceImpl, TtrpcServer } from '../ttrpc';
import type { TaskService } from './service';

export const TASK_SERVICE_V2 = 'containerd.task.v2.Task';
export const TASK_SERVICE_V3 = 'containerd.task.v3.Task';

export function taskHandlers(svc: TaskService): ServiceImpl<'containerd.task.v2.Task'> {
  const handlers: ServiceImpl<'containerd.task.v2.Task'> = {
    State: (req) => svc.state(req),
    Create: (req) => svc.create(req),
    Start: (req) => svc.start(req),
    Delete: (req) => svc.delete(req),
    Pids: (req) => svc.pids(req),
    Pause: (req) => svc.pause(req),
    Resume: (req) => svc.resume(req),
    Checkpoint: (req) => svc.checkpoint(req),
    Kill: (req) => svc.kill(req),
    Exec: (req) => svc.exec(req),
    ResizePty: (req) => svc.resizePty(req),
    CloseIO: (req) => svc.closeIO(req),
    Update: (req) => svc.update(req),
    Wait: (req, ctx) => svc.wait(req, ctx.signal),
    Stats: (req) => svc.stats(req),
    Connect: (req) => svc.connect(req),
    Shutdown: (req) => svc.shutdown(req),
  };
  return traceEnabled() ? traced(handlers) : handlers;
}

/** VKERNEL_TRACE: a trace line when each call begins and ends, with its duration. */
function traced(handlers: ServiceImpl<'containerd.task.v2.Task'>): ServiceImpl<'containerd.task.v2.Task'> {
  const out: Record<string, unknown> = {};
  for (const [name, h] of Object.entries(handlers) as [string, (req: unknown, ctx: unknown) => Promise<unknown>][]) {
    out[name] = async (req: unknown, ctx: unknown) => {
      const t0 = traceNow();
      trace(`rpc ${name} begin`);
      try {
        return await h(req, ctx);
      } finally {
        trace(`rpc ${name} end (${(traceNow() - t0).toFixed(1)} ms)`);
      }
    };
  }
  return out as unknown as ServiceImpl<'containerd.task.v2.Task'>;
}

/** Registers the task service on a ttrpc server under both names. */
export function registerTaskService(server: TtrpcServer, svc: TaskService): void {
  const handlers = taskHandlers(svc);
  server.registerService(TASK_SERVICE_V2, handlers);
  server.registerService(TASK_SERVICE_V3, handlers as unknown as ServiceImpl<'containerd.task.v3.Task'>);
}
