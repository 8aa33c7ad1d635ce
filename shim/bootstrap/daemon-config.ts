// The daemon contract from shim/DESIGN.md, as the bootstrap side builds it. shim/daemon/serve.ts
// (the task service's entry) declares the same DaemonConfig; this copy keeps bootstrap free of
// the task service's imports, and the two are structurally identical.

export interface DaemonConfig {
  /** containerd namespace */
  namespace: string;
  /** containerd gRPC socket path (-address) */
  address: string;
  /** TTRPC_ADDRESS (events) */
  ttrpcAddress: string;
  /** GRPC_ADDRESS (1.7+) */
  grpcAddress?: string;
  /** -publish-binary */
  publishBinary: string;
  /** the group socket this daemon serves (for cleanup) */
  socketPath: string;
  debug: boolean;
  groupId: string;
  /** runtime --root for this daemon's containers: /run/vkernel/shim/<namespace> */
  stateRoot: string;
  /** TOML config (the ConfigPath runtime option) */
  configPath?: string;
  /** The protocol the daemon serves on its socket, as `start` negotiated it (docs/protocol.md); default ttrpc. */
  protocol?: 'ttrpc' | 'grpc';
  /** gRPC mode: keep-alive interval (ms) from [shim] grpc_keepalive_interval_ms; default 5 min, 0 = off. */
  keepAliveIntervalMs?: number;
  /** Exit after this long with no container and no connection (ms, [shim] idle_exit_ms); default 2 min, 0 = never. */
  idleExitMs?: number;
}

/**
 * How a daemon comes to life, either way: the config travels as JSON (env VKERNEL_SHIM_CONFIG
 * for a direct daemon, the adopt line for a warm one) with `bundle` added: the bundle of the
 * container that started the group, where the daemon reports a failure to boot (`<bundle>/log`).
 */
export interface DaemonLaunchConfig extends DaemonConfig {
  bundle: string;
}

export interface DaemonLaunch {
  config: DaemonLaunchConfig;
  /** The listening group socket; the launcher passes it on and the caller closes its copy. */
  listenFd: number;
  /** containerd's pid (the shim binary's parent), for oom_score_adj = containerd's + 1. */
  containerdPid: number;
}

/** Starts (or hands out) the daemon for a new group; resolves with its pid once it owns the socket. */
export interface DaemonLauncher {
  launch(l: DaemonLaunch): Promise<number>;
}
