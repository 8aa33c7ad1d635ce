import { normalizeArgv } from '../../cmd/argv';

describe('normalizeArgv keeps a command\'s own flags away from the CLI', () => {
  it.each([
    [['exec', 'c1', 'sh', '-c', 'x'], ['exec', 'c1', '--', 'sh', '-c', 'x']],
    [['--root', '/r', 'exec', '-e', 'A=1', '--tty', 'c1', 'ls', '-l'], ['--root', '/r', 'exec', '-e', 'A=1', '--tty', 'c1', '--', 'ls', '-l']],
    [['exec', '--cwd=/tmp', 'c1', 'ls'], ['exec', '--cwd=/tmp', 'c1', '--', 'ls']],
    [['exec', 'c1', '--', 'ls'], ['exec', 'c1', '--', 'ls']],
    [['exec', '--process', 'p.json', 'c1'], ['exec', '--process', 'p.json', 'c1']],
    [['ps', 'c1', '-o', 'pid'], ['ps', 'c1', '--', '-o', 'pid']],
    [['kill', 'c1', 'KILL'], ['kill', 'c1', 'KILL']],
    [['--log', 'x', 'list'], ['--log', 'x', 'list']],
  ])('%j', (input, expected) => {
    expect(normalizeArgv(input)).toEqual(expected);
  });
});

describe('usage errors read as runc writes them', () => {
  // Loaded lazily: cmd/vkernel pulls in every command module.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runcStyleUsage } = require('../../cmd/vkernel') as typeof import('../../cmd/vkernel');

  it('an unknown command flag', () => {
    expect(runcStyleUsage('Unknown arguments: no-such-flag, noSuchFlag')).toBe('flag provided but not defined: -no-such-flag');
    expect(runcStyleUsage('Unknown argument: x')).toBe('flag provided but not defined: -x');
  });

  it('other messages pass through', () => {
    expect(runcStyleUsage('Not enough non-option arguments: got 0, need at least 1')).toBe('Not enough non-option arguments: got 0, need at least 1');
  });
});
