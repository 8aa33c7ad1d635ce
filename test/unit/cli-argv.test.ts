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
