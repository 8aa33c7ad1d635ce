// features and spec.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { AlreadyExistsError } from '../../runtime/errors';
import { features } from '../../runtime/features';
import { CAPABILITIES } from '../../runtime/spec/capabilities';
import { defaultSpec } from '../../runtime/spec/defaults';
import { action, type GlobalArgs } from '../context';

export const featuresCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'features',
  describe: 'show the OCI features this runtime supports (and the vkernel layer on this host)',
  handler: action(async () => {
    process.stdout.write(JSON.stringify(features(Object.keys(CAPABILITIES)), null, '    ') + '\n');
  }),
};

type SpecArgs = GlobalArgs & { bundle: string; rootless?: boolean };
export const specCommand: CommandModule<GlobalArgs, SpecArgs> = {
  command: 'spec',
  describe: 'write a default config.json into the bundle',
  builder: (y) =>
    y
      .option('bundle', { alias: 'b', type: 'string', default: '.' })
      .option('rootless', { type: 'boolean', describe: 'a spec for a rootless container', hidden: false }) as Argv<SpecArgs>,
  handler: action(async (argv: SpecArgs) => {
    const file = path.join(argv.bundle, 'config.json');
    if (fs.existsSync(file)) throw new AlreadyExistsError('File config.json exists. Remove it first.');
    fs.writeFileSync(file, JSON.stringify(defaultSpec({ rootless: argv.rootless }), null, '\t'), { mode: 0o666 });
  }),
};
