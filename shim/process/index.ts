export { AsyncMutex } from './mutex';
export {
  ProcessStateMachine,
  INIT_TRANSITIONS,
  EXEC_TRANSITIONS,
  transitionsOf,
  refusal,
  taskStatus,
  type ProcessState,
  type ProcessKind,
  type ProcessOp,
} from './state';
export { ShimProcess, type ProcessEnv, type StdioPaths, type ExitInfo } from './process';
export { InitProcess, type InitCreateOptions } from './init';
export { ExecProcess } from './exec';
export { realRuntime, type RuntimeOps } from './runtime-ops';
