// The CLI's logging flags behave as runc's (runtime/log.ts, cmd/context.ts): --log FILE takes
// the log (appended), --log-format json writes one {"level","msg","time"} object a line (what
// containerd's runc shim parses for a failed call's reason), text writes logrus's
// time="..." level=... msg="..." lines, an error is also printed on stderr when the log is a
// file, and --debug adds debug lines. Runs against env RUNTIME, so `RUNTIME=runc` checks
// the test itself.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeIf, makeBundle, requireFixtures, requireRoot, requireRuntime, runRuntime, uniqueId, withLeakCheck } from '../harness';

const ok = requireRoot() && requireFixtures() && requireRuntime();

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;
const TEXT_LINE = /^time="([^"]+)" level=(\w+) msg="((?:[^"\\]|\\.)*)"$/;

interface JsonLine {
  level: string;
  msg: string;
  time: string;
}

function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

function jsonLines(file: string): JsonLine[] {
  return lines(file).map((l) => JSON.parse(l) as JsonLine);
}

describeIf(ok)('CLI --log and --log-format (as runc)', () => {
  let tmp = '';
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-clilog-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('--log-format json: the error is one json line in the log, and its message on stderr', async () => {
    const log = path.join(tmp, 'log.json');
    const r = await runRuntime(['--log', log, '--log-format', 'json', 'state', uniqueId()]);
    expect(r.code).toBe(1);
    const [line, ...more] = jsonLines(log);
    expect(more).toEqual([]);
    expect(line).toEqual({ level: 'error', msg: expect.stringMatching(/\S/), time: expect.stringMatching(TIME) });
    expect(r.stderr).toBe(`${line.msg}\n`);
    expect(r.stdout).toBe('');
  });

  it('--log with the default text format: logrus lines; the file is appended to', async () => {
    const log = path.join(tmp, 'log.txt');
    fs.writeFileSync(log, 'earlier line\n');
    const ids = [uniqueId(), uniqueId()];
    for (const id of ids) expect((await runRuntime(['--log', log, 'delete', id])).code).toBe(1);
    const [first, ...rest] = lines(log);
    expect(first).toBe('earlier line');
    expect(rest).toHaveLength(2);
    for (const l of rest) {
      const m = TEXT_LINE.exec(l);
      expect({ line: l, ok: !!m }).toEqual({ line: l, ok: true });
      expect(m![1]).toMatch(TIME);
      expect(m![2]).toBe('error');
    }
  });

  it('without --log: one text line on stderr (not a terminal) and nothing else', async () => {
    const r = await runRuntime(['state', uniqueId()]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([expect.stringMatching(TEXT_LINE)]);
    expect(TEXT_LINE.exec(r.stderr.trim())![2]).toBe('error');
  });

  it('--debug adds debug lines to the log; without it there are none', () =>
    withLeakCheck(async () => {
      for (const debug of [true, false]) {
        const b = await makeBundle();
        const log = path.join(tmp, `run-${debug}.json`);
        const r = await runRuntime([...(debug ? ['--debug'] : []), '--log', log, '--log-format', 'json', 'run', '--bundle', b.dir, b.id]);
        expect({ debug, code: r.code, stdout: r.stdout }).toEqual({ debug, code: 0, stdout: 'hi\n' });
        const entries = fs.existsSync(log) ? jsonLines(log) : [];
        // runc's debug lines carry more fields (file, func, pid); these three are in every line.
        for (const e of entries) expect(e).toMatchObject({ level: expect.any(String), msg: expect.any(String), time: expect.stringMatching(TIME) });
        expect({ debug, debugLines: entries.some((e) => e.level === 'debug') }).toEqual({ debug, debugLines: debug });
        expect(entries.filter((e) => e.level === 'error')).toEqual([]);
        await b.cleanup();
      }
    }));

  it('a usage error (no container id) also goes to the json log; the file is 0644', async () => {
    const log = path.join(tmp, 'usage.json');
    const r = await runRuntime(['--log', log, '--log-format', 'json', 'state']);
    expect(r.code).not.toBe(0);
    const entries = jsonLines(log);
    expect(entries).toEqual([{ level: 'error', msg: expect.stringMatching(/\S/), time: expect.stringMatching(TIME) }]);
    expect(fs.statSync(log).mode & 0o777).toBe(0o644);
  });

  it('an unknown --log-format is refused', async () => {
    const r = await runRuntime(['--log-format', 'xml', 'state', uniqueId()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/log-format/);
  });
});
