// `vkernel containerd-config`: the containerd config snippet for the local containerd (or
// --version X.Y), or with --shim-config an example /etc/vkernel/config.toml.
import type { Argv, CommandModule } from 'yargs';
import { InvalidArgumentError } from '../../runtime/errors';
import { DEFAULT_ADDRESS, DEFAULT_VKERNEL_CONFIG, localSnippet, shimConfigExample } from '../../runtime/check';
import { parseProtocolSetting } from '../../shim/bootstrap/negotiate';
import { action, type GlobalArgs } from '../context';

type ConfigArgs = GlobalArgs & {
  version?: string;
  address: string;
  'config-path': string;
  'containerd-config'?: string;
  protocol?: string;
  'shim-config'?: boolean;
};

export const containerdConfigCommand: CommandModule<GlobalArgs, ConfigArgs> = {
  command: 'containerd-config',
  describe: "print containerd's config snippet for the vkernel runtime",
  builder: (y) =>
    y
      // `--version` here is containerd's version, not ours.
      .version(false)
      .option('version', { type: 'string', describe: 'containerd version (MAJOR.MINOR; default: ask the local containerd)' })
      .option('address', { type: 'string', default: DEFAULT_ADDRESS, describe: "containerd's socket" })
      .option('config-path', { type: 'string', default: DEFAULT_VKERNEL_CONFIG, describe: 'the shim config file (runtime option ConfigPath)' })
      .option('containerd-config', { type: 'string', describe: "containerd's config file the snippet goes into (default: the running containerd's)" })
      .option('protocol', { type: 'string', describe: 'force the shim protocol: auto, grpc or ttrpc (shim config [shim] protocol)' })
      .option('shim-config', { type: 'boolean', describe: `print an example ${DEFAULT_VKERNEL_CONFIG} instead` }) as Argv<ConfigArgs>,
  handler: action(async (argv: ConfigArgs) => {
    const protocol = argv.protocol === undefined ? undefined : parseProtocolSetting(argv.protocol);
    if (argv.protocol !== undefined && !protocol) {
      throw new InvalidArgumentError(`--protocol: must be auto, grpc or ttrpc (got ${JSON.stringify(argv.protocol)})`, 'protocol');
    }
    if (argv['shim-config']) {
      process.stdout.write(shimConfigExample(protocol));
      return;
    }
    const snippet = await localSnippet({
      version: argv.version,
      address: argv.address,
      configPath: argv['config-path'],
      containerdConfig: argv['containerd-config'],
      protocol,
    });
    process.stdout.write(snippet);
  }),
};
