// gRPC for the shim (docs/protocol.md): the task service served over gRPC (@grpc/grpc-js,
// loaded only by a daemon in gRPC mode), the containerd client it needs (events, keep-alive),
// and the grpc-js-free unary call `start` uses to learn containerd's version.
export { GrpcServer, GRPC_NAMESPACE_KEY, DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH, type GrpcServerOptions } from './server';
export { registerTaskServiceGrpc } from './task';
export { ContainerdGrpcClient, type GrpcCallOptions } from './client';
export { GrpcEventTransport, GRPC_EVENTS_SERVICE } from './events';
export { KeepAlive, TASKS_SERVICE, MIN_INTERVAL_MS, type KeepAliveOptions } from './keepalive';
export { h2Unary, grpcFrame, protoStrings, unixPath, type H2UnaryOptions } from './h2-unary';

/** Loads @grpc/grpc-js and the task service descriptors now (a daemon that will serve gRPC, while it boots). */
export function preloadGrpc(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('@grpc/grpc-js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('../proto') as typeof import('../proto')).methodTypes('containerd.task.v3.Task', 'State');
}
