// shim/manager: the host's long-running shim manager (manager.ts), its warm daemon pool
// (pool.ts), the launcher wire format (protocol.ts), and starting it from the cold path.
export { ShimManager, DEFAULT_IDLE_TIMEOUT_MS, type ManagerOptions } from './manager';
export { WarmPool, type WarmPoolOptions } from './pool';
export { ensureManager } from './autostart';
export { watchForUpdates } from './staleness';
export {
  encodeRequest,
  decodeRequest,
  encodeReply,
  decodeReply,
  MessageReader,
  REQUEST_MAGIC,
  REPLY_MAGIC,
  MAX_PAYLOAD,
  type LauncherRequest,
  type LauncherReply,
} from './protocol';
