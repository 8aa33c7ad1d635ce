// shim/log.ts: the shim daemon's log lines (logrus text format, as containerd's own log and
// runc's shim write them: time="RFC 3339" level=… msg="…" key=value), the levels (warn is
// written as logrus's "warning"; debug lines only with debug on), where lines go (a
// container's bundle log, else the oldest attached bundle log, plus a mirror fd), the FIFO
// containerd creates (non-blocking; no reader is not an error), and RuntimeLogBridge, which
// forwards the runtime library's Logger into the shim log.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatLine, RuntimeLogBridge, ShimLog, type LogSink } from '../../shim/log';

/** A logrus text line → its fields, as logrus's own parsers read it (bare or Go-quoted values). */
function parseLogrus(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([\w.-]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?: |$)/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(line)) !== null && m[0] !== '') {
    out[m[1]] = m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2];
    end = re.lastIndex;
  }
  expect(end).toBe(line.length); // nothing left unparsed
  return out;
}

const lines = (file: string): string[] => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);

let tmp = '';
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-shimlog-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A bundle directory with an empty `log` file (a test stand-in for containerd's FIFO). */
function bundle(name: string): { dir: string; log: string } {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'log'), '');
  return { dir, log: path.join(dir, 'log') };
}

describe('formatLine', () => {
  const at = new Date('2026-01-02T03:04:05.678Z');

  it('time, level, msg, the fields, then runtime=io.containerd.vkernel.v2, one line ending in \\n', () => {
    expect(formatLine('info', 'shim started', { namespace: 'k8s.io' }, at)).toBe(
      'time="2026-01-02T03:04:05.678Z" level=info msg="shim started" namespace=k8s.io runtime=io.containerd.vkernel.v2\n',
    );
  });

  it('quotes msg always and a field value when it needs it; newlines and quotes stay on one line', () => {
    const line = formatLine('error', 'exec "sh": failed\nsecond line', { id: 'c-1', path: '/run/a b', empty: '' }, at);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(line).toContain(' id=c-1 ');
    expect(parseLogrus(line.slice(0, -1))).toEqual({
      time: '2026-01-02T03:04:05.678Z',
      level: 'error',
      msg: 'exec "sh": failed\nsecond line',
      id: 'c-1',
      path: '/run/a b',
      empty: '',
      runtime: 'io.containerd.vkernel.v2',
    });
  });

  it('the time is RFC 3339 in UTC (what logrus and containerd write)', () => {
    const t = parseLogrus(formatLine('info', 'x').trimEnd()).time;
    expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(Math.abs(Date.parse(t) - Date.now())).toBeLessThan(60_000);
  });
});

describe('ShimLog', () => {
  const all = (sink: LogSink): void => {
    sink.debug('d');
    sink.info('i');
    sink.warn('w');
    sink.error('e');
  };

  it('debug off (the default): info, warning, error; no debug line', () => {
    const b = bundle('b1');
    const log = new ShimLog();
    log.attach(b.dir);
    all(log);
    log.close();
    expect(log.debugEnabled).toBe(false);
    expect(lines(b.log).map((l) => [parseLogrus(l).level, parseLogrus(l).msg])).toEqual([
      ['info', 'i'],
      ['warning', 'w'],
      ['error', 'e'],
    ]);
  });

  it('debug on (-debug): the debug lines too; fields on every line', () => {
    const b = bundle('b1');
    const log = new ShimLog({ debug: true, fields: { namespace: 'default' } });
    log.attach(b.dir);
    all(log);
    log.close();
    expect(log.debugEnabled).toBe(true);
    const parsed = lines(b.log).map(parseLogrus);
    expect(parsed.map((p) => p.level)).toEqual(['debug', 'info', 'warning', 'error']);
    for (const p of parsed) expect(p).toMatchObject({ namespace: 'default', runtime: 'io.containerd.vkernel.v2' });
  });

  it("a container's lines carry id= and go to its bundle's log; daemon-wide lines to the oldest bundle log", () => {
    const [a, b] = [bundle('a'), bundle('b')];
    const log = new ShimLog();
    log.attach(a.dir);
    log.attach(b.dir);
    log.attach(a.dir); // a second attach neither reopens nor reorders
    log.forContainer('ctr-b', b.dir).info('to b');
    log.forContainer('ctr-gone', path.join(tmp, 'not-attached')).warn('to the oldest');
    log.info('daemon-wide');
    log.detach(a.dir);
    log.info('after a went');
    log.close();
    expect(lines(a.log).map(parseLogrus).map((p) => [p.msg, p.id])).toEqual([
      ['to the oldest', 'ctr-gone'],
      ['daemon-wide', undefined],
    ]);
    expect(lines(b.log).map(parseLogrus).map((p) => [p.msg, p.id])).toEqual([
      ['to b', 'ctr-b'],
      ['after a went', undefined],
    ]);
  });

  it('forContainer: debug only with debug on; warn is level=warning', () => {
    const b = bundle('b');
    for (const debug of [false, true]) {
      const log = new ShimLog({ debug });
      log.attach(b.dir);
      all(log.forContainer('c', b.dir));
      log.close();
    }
    expect(lines(b.log).map((l) => parseLogrus(l).level)).toEqual(['info', 'warning', 'error', 'debug', 'info', 'warning', 'error']);
  });

  it('mirrorFd gets every line as well; with no log attached, only the mirror', () => {
    const mirror = path.join(tmp, 'mirror');
    const fd = fs.openSync(mirror, 'a');
    try {
      const log = new ShimLog({ mirrorFd: fd });
      log.info('no bundle yet');
      const b = bundle('b');
      log.attach(b.dir);
      log.error('both');
      log.close();
      expect(lines(mirror).map((l) => parseLogrus(l).msg)).toEqual(['no bundle yet', 'both']);
      expect(lines(b.log).map((l) => parseLogrus(l).msg)).toEqual(['both']);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('no log file, a closed log, nothing attached: writing never throws', () => {
    const log = new ShimLog();
    const dir = path.join(tmp, 'no-log');
    fs.mkdirSync(dir);
    log.attach(dir);
    expect(() => all(log)).not.toThrow();
    log.detach(dir);
    log.detach(dir);
    expect(() => log.close()).not.toThrow();
  });

  describe("containerd's log FIFO", () => {
    function fifo(dir: string): string {
      const file = path.join(dir, 'log');
      const r = spawnSync('mkfifo', [file]);
      if (r.status !== 0) throw new Error(`mkfifo: ${String(r.stderr)}`);
      return file;
    }

    it('with containerd reading: the lines arrive in order', () => {
      const dir = path.join(tmp, 'b');
      fs.mkdirSync(dir);
      const reader = fs.openSync(fifo(dir), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      try {
        const log = new ShimLog({ debug: true });
        log.attach(dir);
        log.debug('one');
        log.info('two');
        log.close();
        const buf = Buffer.alloc(4096);
        const text = buf.subarray(0, fs.readSync(reader, buf)).toString();
        expect(text.split('\n').filter(Boolean).map((l) => [parseLogrus(l).level, parseLogrus(l).msg])).toEqual([
          ['debug', 'one'],
          ['info', 'two'],
        ]);
      } finally {
        fs.closeSync(reader);
      }
    });

    it('with nobody reading: attach does not block or throw, and lines are dropped', () => {
      const dir = path.join(tmp, 'b');
      fs.mkdirSync(dir);
      fifo(dir);
      const log = new ShimLog();
      expect(() => log.attach(dir)).not.toThrow();
      expect(() => log.error('dropped')).not.toThrow();
      log.close();
    });
  });
});

describe('RuntimeLogBridge', () => {
  function recorder(): { sink: LogSink; got: string[] } {
    const got: string[] = [];
    return {
      got,
      sink: { debug: (m) => got.push(`debug ${m}`), info: (m) => got.push(`info ${m}`), warn: (m) => got.push(`warn ${m}`), error: (m) => got.push(`error ${m}`) },
    };
  }

  it.each([
    [false, ['info i', 'warn w', 'error e']],
    [true, ['debug d', 'info i', 'warn w', 'error e']],
  ])('debug %s: the runtime library\'s levels reach the shim log as %j', (debug, expected) => {
    const r = recorder();
    const bridge = new RuntimeLogBridge(r.sink, debug);
    bridge.debug('d');
    bridge.info('i');
    bridge.warn('w');
    bridge.error('e');
    expect(r.got).toEqual(expected);
  });

  it('into a ShimLog: runtime warnings become level=warning lines in the bundle log', () => {
    const b = bundle('b');
    const log = new ShimLog();
    log.attach(b.dir);
    new RuntimeLogBridge(log, false).warn('cgroup: memory.swap.max not available');
    log.close();
    expect(lines(b.log).map(parseLogrus)).toEqual([expect.objectContaining({ level: 'warning', msg: 'cgroup: memory.swap.max not available' })]);
  });
});
