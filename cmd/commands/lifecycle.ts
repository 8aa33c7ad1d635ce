// The small verbs: start, state, kill, delete, list, ps.
import type { Argv, CommandModule } from 'yargs';
import { deleteContainer } from '../../runtime/container/delete';
import { kill } from '../../runtime/container/kill';
import { formatTable, list } from '../../runtime/container/list';
import { containerPids, psTable } from '../../runtime/container/ps';
import { start } from '../../runtime/container/start';
import { state } from '../../runtime/container/state';
import { InvalidArgumentError, NotFoundError } from '../../runtime/errors';
import { validateContainerId } from '../../runtime/spec/validate';
import { parseSignal } from '../../runtime/signals';
import { afterDoubleDash } from '../argv';
import { action, contextFrom, type GlobalArgs } from '../context';

type IdArgs = GlobalArgs & { id: string };

export const startCommand: CommandModule<GlobalArgs, IdArgs> = {
  command: 'start <id>',
  describe: 'start a created container',
  builder: (y) => y.positional('id', { type: 'string' }) as Argv<IdArgs>,
  handler: action(async (argv: IdArgs) => {
    await start(contextFrom(argv), argv.id);
  }),
};

export const stateCommand: CommandModule<GlobalArgs, IdArgs> = {
  command: 'state <id>',
  describe: 'output the state of a container',
  builder: (y) => y.positional('id', { type: 'string' }) as Argv<IdArgs>,
  handler: action(async (argv: IdArgs) => {
    process.stdout.write(JSON.stringify(await state(contextFrom(argv), argv.id), null, '  ') + '\n');
  }),
};

type KillArgs = IdArgs & { signal: string; all?: boolean };
export const killCommand: CommandModule<GlobalArgs, KillArgs> = {
  command: 'kill <id> [signal]',
  describe: 'send a signal (default SIGTERM) to the container init',
  builder: (y) =>
    y
      .positional('id', { type: 'string' })
      .positional('signal', { type: 'string', default: 'SIGTERM' })
      .option('all', { alias: 'a', type: 'boolean', describe: 'send to every process in the container' }) as Argv<KillArgs>,
  handler: action(async (argv: KillArgs) => {
    await kill(contextFrom(argv), argv.id, parseSignal(String(argv.signal)), argv.all);
  }),
};

type DeleteArgs = IdArgs & { force?: boolean };
export const deleteCommand: CommandModule<GlobalArgs, DeleteArgs> = {
  command: 'delete <id>',
  describe: 'delete a stopped container (--force: also a running one)',
  builder: (y) =>
    y.positional('id', { type: 'string' }).option('force', { alias: 'f', type: 'boolean' }) as Argv<DeleteArgs>,
  handler: action(async (argv: DeleteArgs) => {
    const ctx = contextFrom(argv);
    try {
      await deleteContainer(ctx, argv.id, argv.force);
    } catch (err) {
      // As runc: `delete --force` of a container that does not exist succeeds silently
      // (conmon/podman call it to clean up after a failed create). Bad ids still fail.
      if (argv.force && err instanceof NotFoundError) {
        validateContainerId(argv.id);
        if (!ctx.store.exists(argv.id)) return;
      }
      throw err;
    }
  }),
};

type ListArgs = GlobalArgs & { format: string; quiet?: boolean };
export const listCommand: CommandModule<GlobalArgs, ListArgs> = {
  command: 'list',
  describe: 'list containers',
  builder: (y) =>
    y
      .option('format', { alias: 'f', type: 'string', default: 'table', choices: ['table', 'json'] })
      .option('quiet', { alias: 'q', type: 'boolean' }) as Argv<ListArgs>,
  handler: action(async (argv: ListArgs) => {
    const entries = await list(contextFrom(argv));
    if (argv.quiet) process.stdout.write(entries.map((e) => e.id + '\n').join(''));
    else if (argv.format === 'json') process.stdout.write(JSON.stringify(entries) + '\n');
    else {
      const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']];
      for (const e of entries) rows.push([e.id, String(e.pid), e.status, e.bundle, e.created, e.owner]);
      process.stdout.write(formatTable(rows));
    }
  }),
};

type PsArgs = IdArgs & { format: string; psArgs?: string[] };
export const psCommand: CommandModule<GlobalArgs, PsArgs> = {
  command: 'ps <id> [psArgs..]',
  describe: 'list the processes in a container',
  builder: (y) =>
    y
      .positional('id', { type: 'string' })
      .positional('psArgs', { type: 'string', array: true })
      .option('format', { alias: 'f', type: 'string', default: 'table', choices: ['table', 'json'] }) as Argv<PsArgs>,
  handler: action(async (argv: PsArgs) => {
    const psArgs = [...(argv.psArgs ?? []), ...afterDoubleDash(argv)].map(String);
    const pids = await containerPids(contextFrom(argv), argv.id);
    if (argv.format === 'json') {
      if (psArgs.length) throw new InvalidArgumentError('ps: ps options cannot be used with --format json', 'format');
      process.stdout.write(JSON.stringify(pids) + '\n');
    } else process.stdout.write(psTable(pids, psArgs));
  }),
};
