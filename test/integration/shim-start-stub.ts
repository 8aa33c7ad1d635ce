// A stand-in for shim/daemon/serve.ts in the shim bootstrap tests (VKERNEL_SHIM_SERVE_MODULE):
// serves containerd.task.v2.Task on the handed-over socket with just Connect and Shutdown.
// Connect answers shim_pid = this process and `version` = the DaemonConfig it was given (JSON),
// so tests can see which daemon serves a socket and with what config. Shutdown removes the
// socket and exits, like the real daemon with no containers. Everything else: Unimplemented.
import * as fs from 'fs';
import { TtrpcServer } from '../../shim/ttrpc';

export async function serveTasks(config: { socketPath: string }, listenFd: number): Promise<{ close(): Promise<void>; containers: number }> {
  const server = new TtrpcServer();
  const exit = (): void => {
    fs.rmSync(config.socketPath, { force: true });
    process.exit(0);
  };
  server.registerService('containerd.task.v2.Task', {
    Connect: () => ({ shim_pid: process.pid, task_pid: 0, version: JSON.stringify(config) }),
    Shutdown: () => {
      setTimeout(exit, 10);
      return {};
    },
  });
  await server.listen({ fd: listenFd });
  process.on('SIGTERM', exit);
  return { close: () => server.close(), containers: 0 };
}
