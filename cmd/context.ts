// Global flags → RuntimeContext, and the one place CLI errors become output and exit codes.
import { makeContext, type RuntimeContext } from '../runtime/context';
import { VkernelError } from '../runtime/errors';
import { Logger, type LogFormat } from '../runtime/log';
import { DEFAULT_ROOT } from '../runtime/paths';

export interface GlobalArgs {
  root?: string;
  log?: string;
  'log-format'?: string;
  debug?: boolean;
  'systemd-cgroup'?: boolean;
}

let logger: Logger | undefined;

export function contextFrom(argv: GlobalArgs): RuntimeContext {
  const format = (argv['log-format'] ?? 'text') as LogFormat;
  logger = new Logger({ file: argv.log || undefined, format, debug: argv.debug });
  return makeContext({ root: argv.root || DEFAULT_ROOT, log: logger, systemdCgroup: !!argv['systemd-cgroup'] });
}

/**
 * Before a command runs (a usage error from the parser) no context exists yet: take --log and
 * --log-format from the raw arguments, so the error lands where runc would put it (a shim
 * reading a json log file finds it there).
 */
export function useLogFromArgv(argv: readonly string[]): void {
  if (logger) return;
  const value = (name: string): string | undefined => {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (a === '--') break;
      if (a === `--${name}` || a === `-${name}`) return argv[i + 1];
      if (a.startsWith(`--${name}=`) || a.startsWith(`-${name}=`)) return a.slice(a.indexOf('=') + 1);
    }
    return undefined;
  };
  const format = value('log-format') === 'json' ? 'json' : 'text';
  try {
    logger = new Logger({ file: value('log') || undefined, format });
  } catch {
    // an unusable --log: stderr
  }
}

/** runc prints one error line: to the log (json for shims), and to stderr when the log is a file. */
export function reportError(err: unknown): void {
  const msg = err instanceof VkernelError ? err.message : err instanceof Error ? err.message : String(err);
  const log = logger ?? new Logger();
  log.error(msg);
  if (log.toFile) process.stderr.write(`${msg}\n`);
  if (!(err instanceof VkernelError) && process.env.VKERNEL_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
}

/** Wraps a command handler: errors → one line + exit 1; a number result is the exit code. */
export function action<A>(fn: (argv: A) => Promise<number | void>, errorCode = 1): (argv: A) => Promise<void> {
  return async (argv) => {
    try {
      const code = await fn(argv);
      process.exitCode = typeof code === 'number' ? code : 0;
    } catch (err) {
      reportError(err);
      process.exitCode = errorCode;
    }
  };
}
