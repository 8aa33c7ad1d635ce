// `vkernel check`: host preflight (runtime/check, docs/containerd.md). Exit 0 when no row
// failed, 1 otherwise.
import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../runtime/errors';
import { DEFAULT_ADDRESS, exitCode, formatReport, runChecks } from '../../runtime/check';
import { action, type GlobalArgs } from '../context';

type CheckArgs = GlobalArgs & { address: string; format: string };

export const checkCommand: CommandModule<GlobalArgs, CheckArgs> = {
  command: 'check',
  describe: 'check that this host can run vkernel containers (exit 1 when a check fails)',
  builder: (y) =>
    y
      .option('address', { type: 'string', default: DEFAULT_ADDRESS, describe: "containerd's socket" })
      .option('format', { alias: 'f', type: 'string', default: 'table', describe: 'table or json' }) as Argv<CheckArgs>,
  handler: action(async (argv: CheckArgs) => {
    if (argv.format !== 'table' && argv.format !== 'json') {
      throw new InvalidArgumentError(`--format: must be table or json (got ${JSON.stringify(argv.format)})`, 'format');
    }
    const r = await runChecks({ address: argv.address });
    process.stdout.write(argv.format === 'json' ? JSON.stringify(r, null, 2) + '\n' : formatReport(r));
    return exitCode(r);
  }),
};
