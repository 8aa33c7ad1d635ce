// runc (urfave/cli) stops reading flags at a command's first positional argument, so
// `exec ID sh -c 'x'` passes `-c` to sh. yargs would read it as --cap: insert `--`
// after the container id of exec and ps so everything after it stays the command's.

/** Flags that take a value, per verb, in both spellings (global ones apply everywhere). */
const VALUE_FLAGS: Record<string, string[]> = {
  '': ['--root', '--log', '--log-format', '--criu'],
  exec: ['--process', '-p', '--pid-file', '--console-socket', '--cwd', '--env', '-e', '--user', '-u', '--cap', '-c',
    '--preserve-fds', '--apparmor', '--process-label', '--cgroup'],
  ps: ['--format', '-f'],
};

const GLOBAL_BOOLEANS = ['--debug', '--systemd-cgroup', '--help', '-h', '--version', '-v'];

/**
 * An unknown flag before the verb would otherwise swallow the verb as its value and
 * read as "a command is required": name it instead, as runc does.
 */
export function unknownGlobalFlag(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--' || !a.startsWith('-') || a === '-') return undefined;
    const name = a.split('=', 1)[0];
    if (VALUE_FLAGS[''].includes(name)) {
      if (!a.includes('=')) i++;
    } else if (!GLOBAL_BOOLEANS.includes(name) && name !== '--rootless') {
      return name;
    }
  }
  return undefined;
}

export function normalizeArgv(argv: string[]): string[] {
  const verbAt = firstPositional(argv, 0, VALUE_FLAGS['']);
  if (verbAt < 0) return argv;
  const verb = argv[verbAt];
  if (!(verb in VALUE_FLAGS) || verb === '') return argv;
  const idAt = firstPositional(argv, verbAt + 1, [...VALUE_FLAGS[''], ...VALUE_FLAGS[verb]]);
  if (idAt < 0 || idAt + 1 >= argv.length || argv[idAt + 1] === '--') return argv;
  return [...argv.slice(0, idAt + 1), '--', ...argv.slice(idAt + 1)];
}

function firstPositional(argv: string[], from: number, valueFlags: string[]): number {
  for (let i = from; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (!a.startsWith('-') || a === '-') return i;
    if (!a.includes('=') && valueFlags.includes(a)) i++;
  }
  return -1;
}

/** What yargs left in `_` after the verb: the arguments that followed `--`. */
export function afterDoubleDash(argv: object): string[] {
  const rest = (argv as { _?: (string | number)[] })._ ?? [];
  return rest.slice(1).map(String);
}
