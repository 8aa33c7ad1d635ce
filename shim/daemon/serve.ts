// What the shim daemon does once it has a listening socket (the contract in shim/DESIGN.md):
// become the child subreaper, serve the task API (v2 and v3) over ttrpc on that socket,
// publish events to containerd, and exit after a Shutdown that leaves no container behind,
// removing the socket. A containerd restart only drops connections: the listener stays, new
// connections are served, and the publisher redials.
import * as fs from 'node:fs';
import { EventPublisher } from '../events';
import { ShimLog } from '../log';
import { Reaper } from '../reaper';
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

export async function serveTasks(config: DaemonConfig, listenFd: number, opts: ServeOptions = {}): Promise<ShimDaemon> {
  const log = new ShimLog({ debug: config.debug, mirrorFd: opts.logFd, fields: { namespace: config.namespace } });
  const reaper = new Reaper({ log: (m) => log.debug(m) });
  const events = new EventPublisher({
    address: config.ttrpcAddress,
    namespace: config.namespace,
    log: (level, m) => (level === 'warn' ? log.warn(m) : log.debug(m)),
  });
  const server = new TtrpcServer({ logger: log });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      for (const c of service.containers.values()) c.stopWatching();
      await server.close({ timeoutMs: 3000 });
      await events.close(3000);
      reaper.close();
      fs.rmSync(config.socketPath, { force: true });
      log.close();
    })());

  const service = new TaskService({
    namespace: config.namespace,
    stateRoot: config.stateRoot,
    configPath: config.configPath,
    events,
    reaper,
    log,
    debug: config.debug,
    onShutdown: () => {
      log.info('shutdown: no container left, exiting');
      void close().then(() => {
        opts.onIdle?.();
        if (opts.exitProcess !== false) process.exit(0);
      });
    },
  });
  registerTaskService(server, service);
  await server.listen({ fd: listenFd });
  log.debug(`serving tasks on ${config.socketPath} (group ${config.groupId}, pid ${process.pid})`);
  return {
    close,
    get containers() {
      return service.containers.size;
    },
    service,
  };
}
