import type { Argv, CommandModule } from 'yargs';
import { exec } from '../../runtime/container/exec';
import { InvalidArgumentError } from '../../runtime/errors';
import { action, contextFrom, type GlobalArgs } from '../context';
import { forwardSignals } from './signals';
import { afterDoubleDash } from '../argv';

type ExecArgs = GlobalArgs & {
  id: string;
  command?: string[];
  process?: string;
  tty?: boolean;
  detach?: boolean;
  'pid-file'?: string;
  'console-socket'?: string;
  cwd?: string;
  env?: string[];
  user?: string;
  cap?: string[];
  'no-new-privs'?: boolean;
  apparmor?: string;
  'process-label'?: string;
  'preserve-fds'?: number;
};

export const execCommand: CommandModule<GlobalArgs, ExecArgs> = {
  command: 'exec <id> [command..]',
  describe: 'run a new process inside a container',
  builder: (y) =>
    y
      .positional('id', { type: 'string' })
      .positional('command', { type: 'string', array: true })
      .option('process', { alias: 'p', type: 'string', describe: 'path to a process.json' })
      .option('tty', { alias: 't', type: 'boolean' })
      .option('detach', { alias: 'd', type: 'boolean' })
      .option('pid-file', { type: 'string' })
      .option('console-socket', { type: 'string' })
      .option('cwd', { type: 'string' })
      .option('env', { alias: 'e', type: 'string', array: true, nargs: 1 })
      .option('user', { alias: 'u', type: 'string', describe: 'UID[:GID]' })
      .option('cap', { alias: 'c', type: 'string', array: true, nargs: 1 })
      .option('no-new-privs', { type: 'boolean' })
      .option('apparmor', { type: 'string', describe: 'AppArmor profile for the process' })
      .option('process-label', { type: 'string', describe: 'SELinux label for the process' })
      .option('preserve-fds', { type: 'number', default: 0 }) as Argv<ExecArgs>,
  // runc exits 255 when the exec itself fails (not the process): callers tell the two apart.
  handler: action(async (argv: ExecArgs) => {
    // Checked here, as `create` does, so the error names the flag (not the init plan).
    const preserveFds = argv['preserve-fds'] ?? 0;
    if (!Number.isInteger(preserveFds) || preserveFds < 0) {
      throw new InvalidArgumentError(`--preserve-fds: must be a non-negative integer (got ${preserveFds})`, 'preserve-fds');
    }
    const stop = forwardSignals();
    try {
      return await exec(contextFrom(argv), {
        id: argv.id,
        processFile: argv.process,
        args: [...(argv.command ?? []), ...afterDoubleDash(argv)].map(String),
        tty: argv.tty,
        cwd: argv.cwd,
        env: argv.env,
        user: argv.user,
        caps: argv.cap,
        noNewPrivs: argv['no-new-privs'],
        apparmor: argv.apparmor,
        processLabel: argv['process-label'],
        detach: argv.detach,
        pidFile: argv['pid-file'],
        consoleSocket: argv['console-socket'],
        preserveFds: argv['preserve-fds'],
        onStarted: (pid) => stop.target(pid),
      });
    } finally {
      stop.dispose();
    }
  }, 255),
};
