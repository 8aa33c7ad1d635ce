import type { Argv, CommandModule } from 'yargs';
import { create } from '../../runtime/container/create';
import { action, contextFrom, type GlobalArgs } from '../context';

export interface CreateFlags extends GlobalArgs {
  id: string;
  bundle: string;
  'pid-file'?: string;
  'console-socket'?: string;
  'no-pivot'?: boolean;
  'no-new-keyring'?: boolean;
  'preserve-fds'?: number;
}

export function createFlags<T>(y: Argv<T>): Argv<T> {
  return y
    .positional('id', { type: 'string', describe: 'container id' })
    .option('bundle', { alias: 'b', type: 'string', default: '.', describe: 'path to the bundle directory' })
    .option('pid-file', { type: 'string', describe: 'file to write the init pid to' })
    .option('console-socket', { type: 'string', describe: 'AF_UNIX socket that receives the pty master' })
    .option('no-pivot', { type: 'boolean', describe: 'do not use pivot_root (for ramdisk roots)' })
    .option('no-new-keyring', { type: 'boolean', describe: 'do not create a new session keyring' })
    .option('preserve-fds', { type: 'number', default: 0, describe: 'pass N extra fds (3..3+N-1) to the container' });
}

export const createCommand: CommandModule<GlobalArgs, CreateFlags> = {
  command: 'create <id>',
  describe: 'create a container',
  builder: (y) => createFlags(y) as Argv<CreateFlags>,
  handler: action(async (argv: CreateFlags) => {
    await create(contextFrom(argv), {
      id: argv.id,
      bundle: argv.bundle,
      pidFile: argv['pid-file'],
      consoleSocket: argv['console-socket'],
      noPivot: argv['no-pivot'],
      noNewKeyring: argv['no-new-keyring'],
      preserveFds: argv['preserve-fds'],
    });
  }),
};
