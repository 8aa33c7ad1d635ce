// pause, resume, update and events: the resource verbs.
import * as fs from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { REMOVAL_NOTICE_WAIT_MS } from '../../runtime/cgroups/oom';
import { Container } from '../../runtime/container/container';
import { pause, resume } from '../../runtime/container/pause';
import { stats } from '../../runtime/container/stats';
import { update, updateAnnotations } from '../../runtime/container/update';
import { InvalidArgumentError } from '../../runtime/errors';
import type { LinuxResources } from '../../runtime/spec/types';
import { action, contextFrom, type GlobalArgs } from '../context';

type IdArgs = GlobalArgs & { id: string };

export const pauseCommand: CommandModule<GlobalArgs, IdArgs> = {
  command: 'pause <id>',
  describe: 'suspend all processes in the container',
  builder: (y) => y.positional('id', { type: 'string' }) as Argv<IdArgs>,
  handler: action(async (argv: IdArgs) => {
    await pause(contextFrom(argv), argv.id);
  }),
};

export const resumeCommand: CommandModule<GlobalArgs, IdArgs> = {
  command: 'resume <id>',
  describe: 'resume all processes of a paused container',
  builder: (y) => y.positional('id', { type: 'string' }) as Argv<IdArgs>,
  handler: action(async (argv: IdArgs) => {
    await resume(contextFrom(argv), argv.id);
  }),
};

const UPDATE_FLAGS = {
  'memory': 'memory limit in bytes (k, m, g suffixes; -1 for unlimited)',
  'memory-reservation': 'memory soft limit',
  'memory-swap': 'memory plus swap limit (-1 for unlimited)',
  'kernel-memory': 'ignored, as by runc on current kernels',
  'kernel-memory-tcp': 'ignored',
  'cpu-shares': 'relative CPU weight',
  'cpu-quota': 'CFS quota in microseconds per period',
  'cpu-period': 'CFS period in microseconds',
  'cpu-rt-runtime': 'realtime runtime in microseconds',
  'cpu-rt-period': 'realtime period in microseconds',
  'cpuset-cpus': 'CPUs the container may use (e.g. 0-1)',
  'cpuset-mems': 'memory nodes the container may use',
  'pids-limit': 'maximum number of tasks',
  'blkio-weight': 'block IO weight (10-1000)',
} as const;

type UpdateArgs = IdArgs & { resources?: string; annotation?: string[] } & Partial<Record<keyof typeof UPDATE_FLAGS, string>>;

/** runc 1.1 spells it --cpu-share; both are accepted. */
const UPDATE_ALIASES: Partial<Record<keyof typeof UPDATE_FLAGS, string>> = { 'cpu-shares': 'cpu-share' };

export const updateCommand: CommandModule<GlobalArgs, UpdateArgs> = {
  command: 'update <id>',
  describe: 'update the resource limits of a container',
  builder: (y) => {
    let b = y.positional('id', { type: 'string' }).option('resources', {
      alias: 'r',
      type: 'string',
      // nargs 1: otherwise the parser refuses "-" as the value of the long form
      // (`--resources - <id>` would take "-" as the id).
      nargs: 1,
      describe: 'a LinuxResources JSON file, or - for stdin',
    }).option('annotation', {
      type: 'string',
      array: true,
      // one value per flag: `--annotation a=b <id>` must leave the id alone
      nargs: 1,
      describe: 'vkernel extension: set an io.vkernel.* annotation (KEY=VALUE, repeatable; KEY= removes it); the policy applies live',
    });
    for (const [name, describe] of Object.entries(UPDATE_FLAGS)) {
      const alias = UPDATE_ALIASES[name as keyof typeof UPDATE_FLAGS];
      b = b.option(name, { type: 'string', describe, ...(alias ? { alias } : {}) });
    }
    return b as Argv<UpdateArgs>;
  },
  handler: action(async (argv: UpdateArgs) => {
    const ctx = contextFrom(argv);
    const annotations = annotationsFromArgs(argv.annotation);
    const resources = resourcesFromArgs(argv);
    if (!annotations) return update(ctx, argv.id, resources);
    // The annotations are checked first and written last: a bad value leaves the limits
    // alone, and a refused limit leaves the policy alone.
    const withLimits = Object.keys(resources).length > 0 ? () => update(ctx, argv.id, resources) : undefined;
    const { deferred } = await updateAnnotations(ctx, argv.id, annotations, { beforeApply: withLimits });
    for (const d of deferred) process.stderr.write(`vkernel update: ${d}\n`);
  }),
};

/** --annotation KEY=VALUE (repeatable) as a map; undefined without the flag. */
export function annotationsFromArgs(list: string[] | string | undefined): Record<string, string> | undefined {
  if (list === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const item of Array.isArray(list) ? list : [list]) {
    const eq = String(item).indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--annotation: expected KEY=VALUE (got ${JSON.stringify(item)})`, 'annotation');
    out[String(item).slice(0, eq).trim()] = String(item).slice(eq + 1).trim();
  }
  return out;
}

/** --resources gives the whole object; the flags then override single fields, as runc does. */
export function resourcesFromArgs(argv: UpdateArgs): LinuxResources {
  let r: LinuxResources = {};
  if (argv.resources) {
    let text: string;
    try {
      text = fs.readFileSync(argv.resources === '-' ? 0 : argv.resources, 'utf8');
    } catch (err) {
      const from = argv.resources === '-' ? 'stdin' : argv.resources;
      throw new InvalidArgumentError(`--resources: cannot read ${from}: ${(err as Error).message}`, 'resources');
    }
    try {
      r = JSON.parse(text) as LinuxResources;
    } catch (err) {
      throw new InvalidArgumentError(`--resources: invalid json: ${(err as Error).message}`, 'resources');
    }
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new InvalidArgumentError('--resources: must be a JSON object', 'resources');
  }
  const mem = (r.memory ??= {});
  const cpu = (r.cpu ??= {});
  if (argv.memory !== undefined) mem.limit = parseBytes('memory', argv.memory);
  if (argv['memory-reservation'] !== undefined) mem.reservation = parseBytes('memory-reservation', argv['memory-reservation']);
  if (argv['memory-swap'] !== undefined) mem.swap = parseBytes('memory-swap', argv['memory-swap']);
  if (argv['cpu-shares'] !== undefined) cpu.shares = parseInteger('cpu-shares', argv['cpu-shares']);
  if (argv['cpu-quota'] !== undefined) cpu.quota = parseInteger('cpu-quota', argv['cpu-quota']);
  if (argv['cpu-period'] !== undefined) cpu.period = parseInteger('cpu-period', argv['cpu-period']);
  if (argv['cpu-rt-runtime'] !== undefined) cpu.realtimeRuntime = parseInteger('cpu-rt-runtime', argv['cpu-rt-runtime']);
  if (argv['cpu-rt-period'] !== undefined) cpu.realtimePeriod = parseInteger('cpu-rt-period', argv['cpu-rt-period']);
  if (argv['cpuset-cpus'] !== undefined) cpu.cpus = argv['cpuset-cpus'];
  if (argv['cpuset-mems'] !== undefined) cpu.mems = argv['cpuset-mems'];
  if (argv['pids-limit'] !== undefined) r.pids = { limit: parseInteger('pids-limit', argv['pids-limit']) };
  if (argv['blkio-weight'] !== undefined) r.blockIO = { ...r.blockIO, weight: parseInteger('blkio-weight', argv['blkio-weight']) };
  if (Object.keys(mem).length === 0) delete r.memory;
  if (Object.keys(cpu).length === 0) delete r.cpu;
  return r;
}

function parseInteger(flag: string, text: string): number {
  if (!/^-?\d+$/.test(text.trim())) throw new InvalidArgumentError(`--${flag}: not an integer: ${JSON.stringify(text)}`, flag);
  return Number(text);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function parseBytes(flag: string, text: string): number {
  const m = /^(-1|\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`--${flag}: not a size: ${JSON.stringify(text)} (use e.g. 268435456, 256m, 1g)`, flag);
  if (m[1] === '-1') return -1;
  return Math.round(Number(m[1]) * UNITS[m[2].toLowerCase()]);
}

type EventsArgs = IdArgs & { stats?: boolean; interval: string };

/** OOM counter poll interval of `events`, used only where no OOM event source can be set up. */
const OOM_POLL_MS = 10;

export const eventsCommand: CommandModule<GlobalArgs, EventsArgs> = {
  command: 'events <id>',
  describe: 'print container stats (--stats once) or stream stats and OOM events',
  builder: (y) =>
    y
      .positional('id', { type: 'string' })
      .option('stats', { type: 'boolean', describe: 'print stats once and exit' })
      .option('interval', { type: 'string', default: '5s', describe: 'stats interval (e.g. 1s, 500ms)' }) as Argv<EventsArgs>,
  handler: action(async (argv: EventsArgs) => {
    const ctx = contextFrom(argv);
    const print = (type: string, data?: unknown) =>
      process.stdout.write(JSON.stringify(data === undefined ? { type, id: argv.id } : { type, id: argv.id, data }) + '\n');
    if (argv.stats) {
      print('stats', await stats(ctx, argv.id));
      return;
    }
    const intervalMs = parseDuration(argv.interval);
    const container = Container.load(ctx.store, argv.id, ctx.sys);
    const cgroup = container.cgroup();
    const stop = new AbortController();
    // OOM notifications come from the kernel (v1 eventfd on memory.oom_control, v2 inotify
    // on memory.events; see runtime/cgroups/oom.ts), polled often only where neither can
    // be set up, because a container whose cgroup is removed right after the kill (a
    // foreground `run` does so within tens of ms) takes its counter with it. `kills` is
    // what has been reported; a last look at the end catches a kill the stream missed.
    let kills = await cgroup.oomKillCount().catch(() => 0);
    // The first stats line says the OOM watch is in place (a caller may wait for it before
    // loading the container): it is printed once the stream has read its baseline.
    let watching!: () => void;
    const watched = new Promise<void>((resolve) => (watching = resolve));
    const oom = (async () => {
      for await (const ev of cgroup.oomEvents({ signal: stop.signal, intervalMs: OOM_POLL_MS, onWatching: watching })) {
        if (ev.kind === 'oom_kill') kills = ev.count;
        print(ev.kind === 'oom_kill' ? 'oom' : ev.kind);
      }
    })()
      .catch(() => undefined)
      .finally(() => watching()); // a stream that could not start: stats go on without it
    await watched;
    while ((await container.status()) !== 'stopped') {
      print('stats', await container.cgroup().stats());
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    // Let a final OOM notification out before we go. A cgroup already removed (a foreground
    // `run` deletes it right after the kill) ends the stream by itself once the kernel's
    // removal notice tells an OOM from a plain removal: wait for that rather than cut it off.
    await new Promise((r) => setTimeout(r, 300));
    if (!(await cgroup.exists().catch(() => false))) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([oom, new Promise((r) => (timer = setTimeout(r, REMOVAL_NOTICE_WAIT_MS + 500)))]);
      clearTimeout(timer); // the process exits when its loop is empty: no timer may outlive the stream
    }
    stop.abort();
    await oom;
    const final = await cgroup.oomKillCount().catch(() => undefined);
    if (final !== undefined && final > kills) print('oom');
  }),
};

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new InvalidArgumentError(`--interval: not a duration: ${JSON.stringify(text)} (use e.g. 5s, 500ms)`, 'interval');
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60000 : 1000);
}
