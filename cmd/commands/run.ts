import type { Argv, CommandModule } from 'yargs';
import { run } from '../../runtime/container/run';
import { action, contextFrom, type GlobalArgs } from '../context';
import { createFlags, type CreateFlags } from './create';
import { forwardSignals } from './signals';

interface RunFlags extends CreateFlags {
  detach?: boolean;
}

export const runCommand: CommandModule<GlobalArgs, RunFlags> = {
  command: 'run <id>',
  describe: 'create and start a container, wait for it and delete it (unless --detach)',
  builder: (y) => createFlags(y as Argv<GlobalArgs>).option('detach', { alias: 'd', type: 'boolean', describe: 'detach from the container' }) as Argv<RunFlags>,
  handler: action(async (argv: RunFlags) => {
    const stop = forwardSignals();
    try {
      return await run(contextFrom(argv), {
        id: argv.id,
        bundle: argv.bundle,
        pidFile: argv['pid-file'],
        consoleSocket: argv['console-socket'],
        noPivot: argv['no-pivot'],
        noNewKeyring: argv['no-new-keyring'],
        preserveFds: argv['preserve-fds'],
        detach: argv.detach,
        onStarted: (pid) => stop.target(pid),
      });
    } finally {
      stop.dispose();
    }
  }),
};
