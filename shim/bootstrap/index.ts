// shim/bootstrap: the shim binary's actions (start, delete, -v, -info), socket naming and
// grouping, and the daemon contract's bootstrap side. Used by the cold path
// (cmd/containerd-shim-vkernel-v2.ts) and the manager (shim/manager).
export { runShim, type ShimRequest, type ShimReply, type ShimDeps } from './run';
export { parseFlags, resolveInvocation, pickShimEnv, ShimUsageError, SHIM_ENV_NAMES, USAGE } from './flags';
export type { ShimFlags, ShimInvocation, ShimAction, ShimEnv, ShimEnvName } from './flags';
export { startShim, startOutput, type StartContext, type StartResult } from './start';
export { deleteShim, encodeDeleteResponse, unmountAll, mountsUnder, DELETED_EXIT_STATUS, type DeleteResult, type DeleteOptions } from './delete';
export { runtimeInfo, FEATURES_TYPE_URL } from './info';
export { versionText, shimRevision } from './version';
export { decodeStartInput, protoFieldNumbers, configPathOf, inputOptions, RUNTIME_OPTIONS_TYPE, type StartInput, type BootstrapParams } from './stdin';
export {
  GROUP_ANNOTATIONS,
  groupIdFor,
  groupSocketPath,
  socketAddress,
  claimSocket,
  canConnect,
  goJoin,
  readBundleAnnotations,
  writeAddressFile,
  type SocketClaim,
} from './socket';
export { spawnDirectDaemon, directLauncher, adjustOomScore, daemonArgs } from './spawn';
export {
  describeProtocolChoice,
  negotiateProtocol,
  decideProtocol,
  parseContainerdVersion,
  lookupContainerdVersion,
  encodeStartAnswer,
  addressFileText,
  PROTOCOL_ANNOTATION,
  PROTOCOL_ENV,
  type ProtocolChoice,
  type ProtocolDescription,
  type ShimProtocol,
} from './negotiate';
export type { DaemonConfig, DaemonLaunchConfig, DaemonLaunch, DaemonLauncher } from './daemon-config';
export * from './paths';
