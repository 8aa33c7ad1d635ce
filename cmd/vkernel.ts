#!/usr/bin/env node
// `vkernel`: the runc-compatible CLI. Only argument parsing lives here; the work is in runtime/.
import yargs from 'yargs';
import { VKERNEL_VERSION, OCI_VERSION } from '../runtime/paths';
import { agentCommand } from './commands/agent';
import { checkCommand } from './commands/check';
import { containerdConfigCommand } from './commands/containerd-config';
import { createCommand } from './commands/create';
import { execCommand } from './commands/exec';
import { featuresCommand, specCommand } from './commands/info';
import { deleteCommand, killCommand, listCommand, psCommand, startCommand, stateCommand } from './commands/lifecycle';
import { eventsCommand, pauseCommand, resumeCommand, updateCommand } from './commands/resources';
import { runCommand } from './commands/run';
import { normalizeArgv, unknownGlobalFlag } from './argv';
import { InvalidArgumentError } from '../runtime/errors';
import { reportError, useLogFromArgv } from './context';
import { trace } from '../runtime/trace';

export async function main(argv: string[]): Promise<void> {
  trace('cli modules loaded');
  // A reader that goes away (`vkernel events | head`) ends us quietly, as it does runc.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const unknown = unknownGlobalFlag(argv);
  if (unknown) {
    useLogFromArgv(argv);
    reportError(new InvalidArgumentError(`flag provided but not defined: ${unknown}`, unknown));
    process.exitCode = 1;
    return;
  }
  await yargs(normalizeArgv(argv))
    .scriptName('vkernel')
    .usage('vkernel [global options] <command> [options]')
    .option('root', { type: 'string', default: '/run/vkernel', describe: 'state directory' })
    .option('log', { type: 'string', describe: 'log file (default: stderr)' })
    .option('log-format', { type: 'string', default: 'text', choices: ['text', 'json'] })
    .option('debug', { type: 'boolean', describe: 'debug logging' })
    .option('systemd-cgroup', { type: 'boolean', describe: 'manage cgroups through systemd' })
    .option('criu', { type: 'string', hidden: true })
    .command(createCommand)
    .command(startCommand)
    .command(runCommand)
    .command(stateCommand)
    .command(killCommand)
    .command(deleteCommand)
    .command(listCommand)
    .command(psCommand)
    .command(execCommand)
    .command(pauseCommand)
    .command(resumeCommand)
    .command(updateCommand)
    .command(eventsCommand)
    .command(featuresCommand)
    .command(specCommand)
    .command(agentCommand)
    .command(checkCommand)
    .command(containerdConfigCommand)
    .version(`vkernel version ${VKERNEL_VERSION}\nspec: ${OCI_VERSION}`)
    .parserConfiguration({ 'boolean-negation': false })
    .demandCommand(1, 'a command is required')
    .strict()
    .fail((msg, err) => {
      useLogFromArgv(argv);
      reportError(err ?? new Error(runcStyleUsage(msg)));
      process.exit(1);
    })
    .help()
    .parseAsync();
}

/** yargs' "Unknown arguments: no-such-flag, noSuchFlag" said as runc (urfave/cli) says it. */
export function runcStyleUsage(msg: string): string {
  const unknown = /^Unknown arguments?: ([^,]+)/.exec(msg);
  return unknown ? `flag provided but not defined: -${unknown[1].trim()}` : msg;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    reportError(err);
    process.exitCode = 1;
  });
}
