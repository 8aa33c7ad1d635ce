export { TaskService, type TaskServiceOptions } from './service';
export { registerTaskService, taskHandlers, TASK_SERVICE_V2, TASK_SERVICE_V3 } from './register';
export { ShimContainer, EXEC_EXIT_GRACE_MS, type ContainerCreateRequest } from './container';
export { metricsAny, v1Metrics, v2Metrics } from './metrics';
export { decodeProcess, decodeResources, PROCESS_TYPE_URL, RESOURCES_TYPE_URL } from './decode';
