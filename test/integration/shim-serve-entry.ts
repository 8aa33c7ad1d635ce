// A shim daemon for the integration tests: listens on the socket named in the config (env
// VKERNEL_TEST_DAEMON, a DaemonConfig as JSON), serves tasks, prints "ready" on stdout, and
// mirrors the shim log to stderr. Started as `node dist/test/integration/shim-serve-entry.js`.
import { native } from '../../runtime/native';
import { serveTasks, type DaemonConfig } from '../../shim/daemon/serve';

const config = JSON.parse(process.env.VKERNEL_TEST_DAEMON ?? '{}') as DaemonConfig;
const fd = native().listenUnix(config.socketPath);
serveTasks(config, fd, { logFd: 2 }).then(
  () => process.stdout.write('ready\n'),
  (err: Error) => {
    process.stderr.write(`serveTasks failed: ${err.stack}\n`);
    process.exit(1);
  },
);
