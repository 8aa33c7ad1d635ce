// What the shim daemon does once it has a listening socket (the contract in shim/DESIGN.md):
// become the child subreaper, serve the task API (v2 and v3) on that socket, publish events
// to containerd, and exit after a Shutdown that leaves no container behind, removing the
// socket. A containerd restart only drops connections: the listener stays, new connections
// are served, and the publisher redials.
//
// A socket speaks one protocol, the one `start` negotiated (config.protocol, docs/protocol.md):
//   ttrpc  the ttrpc server; events by ttrpc Forward to TTRPC_ADDRESS. grpc-js is never loaded.
//   grpc   the gRPC server (shim/grpc, loaded here and only here); events by gRPC Publish to
//          GRPC_ADDRESS; and the keep-alive that stops containerd 1.7 from dropping an idle
//          gRPC shim after 30 minutes.
// Both serve the same TaskService through the same handlers (shim/task/register.ts).
import * as fs from 'node:fs';
import { setTraceSink, trace, traceEnabled } from '../../runtime/trace';
import { PRELOAD_GRPC_ENV, protocolFilePath } from '../bootstrap/negotiate';
import { DEFAULT_GRPC_KEEPALIVE_INTERVAL_MS, DEFAULT_IDLE_EXIT_MS } from '../config';
import { EventPublisher } from '../events';
import type * as GrpcModule from '../grpc';
import { ShimLog } from '../log';
import { vkagentPath } from '../../runtime/vkernel/syscalls';
import { PodAgent } from '../pod-agent';
import { sharedReaper } from '../reaper';
import { registerTaskService, TaskService } from '../task';
import { TtrpcServer } from '../ttrpc';

export interface DaemonConfig {
  namespace: string; // containerd namespace
  address: string; // containerd gRPC socket path (-address)
  ttrpcAddress: string; // TTRPC_ADDRESS (events)
  grpcAddress?: string; // GRPC_ADDRESS (1.7+)
  publishBinary: string; // -publish-binary
  socketPath: string; // the group socket this daemon serves (for cleanup)
  debug: boolean;
  groupId: string;
  stateRoot: string; // runtime --root for this daemon's containers: /run/vkernel/shim/<namespace>
  configPath?: string; // TOML config (ConfigPath option or /etc/vkernel/config.toml)
  protocol?: 'ttrpc' | 'grpc'; // the protocol `start` negotiated for this socket (default ttrpc)
  keepAliveIntervalMs?: number; // gRPC mode: keep-alive interval (default 5 min, 0 = off)
  idleExitMs?: number; // exit after this long with no container and no connection (default 2 min, 0 = never)
}

export interface ServeOptions {
  /** Called once the daemon shut down for lack of containers, before the process exits. */
  onIdle?: () => void;
  /** Exit the process after an idle Shutdown (default true; in-process tests say false). */
  exitProcess?: boolean;
  /** Mirror the shim log to this fd (tests: 2). */
  logFd?: number;
}

export interface ShimDaemon {
  /** Stops serving (drains in-flight calls), flushes events, removes the socket. Containers keep running. */
  close(): Promise<void>;
  /** Containers served now. */
  readonly containers: number;
  /** The task service (tests, diagnostics). */
  readonly service: TaskService;
}

/** The gRPC side, loaded only for a daemon in gRPC mode. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const grpcModule = (): typeof GrpcModule => require('../grpc') as typeof GrpcModule;

// A daemon spawned after `start` answered gRPC loads it now, while it boots (a warm daemon
// before it reports ready), instead of after containerd connected (bootstrap/negotiate.ts).
if (process.env[PRELOAD_GRPC_ENV] === '1') grpcModule().preloadGrpc();

export async function serveTasks(config: DaemonConfig, listenFd: number, opts: ServeOptions = {}): Promise<ShimDaemon> {
  const log = new ShimLog({ debug: config.debug, mirrorFd: opts.logFd, fields: { namespace: config.namespace } });
  if (traceEnabled()) setTraceSink(traceSink(log));
  trace('daemon: serve begins');
  // The process's one reaper: it outlives this group when the daemon goes back to the pool.
  const reaper = sharedReaper((m) => log.debug(m));
  const grpc = config.protocol === 'grpc' ? grpcModule() : undefined;
  const grpcAddress = config.grpcAddress || config.address;
  const events = new EventPublisher({
    address: config.ttrpcAddress,
    transport: grpc ? new grpc.GrpcEventTransport(grpcAddress) : undefined,
    namespace: config.namespace,
    log: (level, m) => (level === 'warn' ? log.warn(m) : log.debug(m)),
  });
  const server = grpc ? new grpc.GrpcServer({ logger: log, traceCalls: log.debugEnabled, defaultNamespace: config.namespace }) : new TtrpcServer({ logger: log });
  const containerd = grpc ? new grpc.ContainerdGrpcClient(config.address, config.namespace) : undefined;
  const keepAlive =
    grpc && containerd
      ? new grpc.KeepAlive({
          client: containerd,
          intervalMs: config.keepAliveIntervalMs ?? DEFAULT_GRPC_KEEPALIVE_INTERVAL_MS,
          tasks: () => service.containers.keys(),
          log,
        })
      : undefined;

  const ourSocket = fileIdentity(config.socketPath);
  const ourProtocolFile = fileIdentity(protocolFilePath(config.socketPath));
  let closing: Promise<void> | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      clearInterval(idleTimer);
      keepAlive?.stop();
      for (const c of service.containers.values()) c.stopWatching();
      await server.close({ timeoutMs: 3000 });
      // Right away, and only if the path is still ours: once nobody accepts on it, a new
      // `start` of the same group may claim the path for another daemon (shim/bootstrap/socket.ts).
      removeIfOurs(config.socketPath, ourSocket);
      removeIfOurs(protocolFilePath(config.socketPath), ourProtocolFile);
      await events.close(3000);
      containerd?.close();
      await podAgent.close().catch((err: Error) => log.warn(`stop the pod's vkernel agent: ${err.message}`));
      reaper.setLog(() => undefined); // the log closes below; the reaper goes on sweeping
      log.close();
    })());

  const exitIdle = (why: string): void => {
    log.info(why);
    void close().then(() => {
      opts.onIdle?.();
      if (opts.exitProcess !== false) process.exit(0);
    });
  };
  const podAgent = new PodAgent(config.stateRoot, config.groupId, log);
  const service = new TaskService({
    namespace: config.namespace,
    stateRoot: config.stateRoot,
    configPath: config.configPath,
    events,
    reaper,
    log,
    debug: config.debug,
    vkernelAgent: podAgent.socket,
    onShutdown: () => exitIdle('shutdown: no container left, exiting'),
  });
  if (server instanceof TtrpcServer) registerTaskService(server, service);
  else grpc!.registerTaskServiceGrpc(server, service);
  await server.listen({ fd: listenFd });
  trace('daemon: listening');
  // The pod's syscall agent boots while containerd gets from `start`'s answer to Create
  // (~15 ms), not inside the first Create. A pod whose containers turn the view off keeps
  // an idle agent (~1 MiB) until the daemon exits; without vkagent nothing starts.
  if (fs.existsSync(vkagentPath())) podAgent.socket().catch((err: Error) => log.debug(`pod agent prestart: ${err.message}`));
  keepAlive?.start();
  const idleMs = config.idleExitMs ?? DEFAULT_IDLE_EXIT_MS;
  if (idleMs > 0) {
    const idle = (): boolean => service.size === 0 && server.connections === 0; // size: also containers being created
    idleTimer = watchIdle(idleMs, idle, () => exitIdle(`no container and no connection for ${idleMs} ms (orphaned by containerd?), exiting`));
  }
  log.debug(
    `serving tasks over ${grpc ? 'gRPC' : 'ttrpc'} on ${config.socketPath} (group ${config.groupId}, pid ${process.pid}; events by ${events.transport}` +
      `${keepAlive ? `; ${grpc!.KeepAlive.describe(keepAlive.intervalMs, config.address)}` : ''})`,
  );
  return {
    close,
    get containers() {
      return service.containers.size;
    },
    service,
  };
}

/** Device, inode and change time of a path (undefined when it does not exist). */
function fileIdentity(file: string): string | undefined {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/** Removes `file` if it is still the one we saw (`identity`), not a newer one at the same path. */
function removeIfOurs(file: string, identity: string | undefined): void {
  if (identity !== undefined && fileIdentity(file) === identity) fs.rmSync(file, { force: true });
}

/**
 * VKERNEL_TRACE: our stderr is /dev/null, so the phase lines go to the shim log (containerd
 * copies it into its own), or, when VKERNEL_TRACE names a file (an absolute path), are
 * appended there with a wall-clock time and our pid (lines outside any container's life,
 * e.g. the end of Delete, have no bundle log to go to).
 */
let traceFd: number | undefined;

function traceSink(log: ShimLog): (line: string) => void {
  const file = process.env.VKERNEL_TRACE ?? '';
  if (!file.startsWith('/')) return (line) => log.info(line);
  try {
    traceFd ??= fs.openSync(file, 'a', 0o644); // once: a reused daemon serves again
  } catch {
    return (line) => log.info(line);
  }
  const fd = traceFd;
  return (line) => {
    try {
      fs.writeSync(fd, `${new Date().toISOString()} shim[${process.pid}] ${line}\n`);
    } catch {
      // a trace line is never worth failing for
    }
  };
}

/**
 * Calls `onIdle` once `isIdle()` has held at every check for `idleMs` (checked every quarter
 * of it, so within 1.25 × idleMs). A connection or a container resets the clock: containerd
 * connects right after `start` and keeps a connection while it manages a task.
 */
export function watchIdle(idleMs: number, isIdle: () => boolean, onIdle: () => void): NodeJS.Timeout {
  let since: number | undefined;
  const timer = setInterval(() => {
    if (!isIdle()) {
      since = undefined;
      return;
    }
    since ??= Date.now();
    if (Date.now() - since >= idleMs) {
      clearInterval(timer);
      onIdle();
    }
  }, Math.max(10, Math.floor(idleMs / 4)));
  // Never the reason the process stays up.
  timer.unref();
  return timer;
}
