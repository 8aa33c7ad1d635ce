// The task service on gRPC: the same handlers as on ttrpc (shim/task/register.ts taskHandlers),
// under containerd.task.v3.Task (what containerd 1.7 and 2.x call over gRPC) and
// containerd.task.v2.Task (identical messages; nobody calls it over gRPC, kept for symmetry).
import type { ServiceImpl } from '../ttrpc/server';
import { taskHandlers, TASK_SERVICE_V2, TASK_SERVICE_V3 } from '../task/register';
import type { TaskService } from '../task/service';
import type { GrpcServer } from './server';

export function registerTaskServiceGrpc(server: GrpcServer, svc: TaskService): void {
  const handlers = taskHandlers(svc);
  server.registerService(TASK_SERVICE_V3, handlers as unknown as ServiceImpl<'containerd.task.v3.Task'>);
  server.registerService(TASK_SERVICE_V2, handlers);
}
