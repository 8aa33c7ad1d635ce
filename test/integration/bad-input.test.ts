// Bad input through the CLI: the invalid config.json corpus (test/fixtures/invalid) and
// bad ids, flags, signals and exec arguments. Every case must fail with a non-zero exit
// and ONE error line on stderr, and leave nothing behind (state dir, mounts, cgroups,
// processes: withLeakCheck / snapshotLeaks).
//
// The `stage: validate` corpus cases run on vkernel only: runc 1.1 rejects many of them
// too, but with other messages (or only later, or not at all), so the "names the field"
// assertion is vkernel's contract, not runc's (docs/runc-differences.md). Under
// RUNTIME=runc those tests are not defined at all (nothing is skipped). The
// `stage: runtime` cases and the CLI cases run on both runtimes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  Bundle,
  cleanupRuntimeRoot,
  describeIf,
  isVkernel,
  makeBundle,
  parseLines,
  parseMountinfo,
  repoRoot,
  requireFixtures,
  requireRoot,
  requireRuntime,
  runRuntime,
  runRuntimeOk,
  runtimeName,
  runtimeRoot,
  RunResult,
  vktest,
  withLeakCheck,
} from '../harness';
import { expectGone, isRunc, runDetached, stateOf, tempDir } from './helpers/oci';

const ok = requireRoot() && requireFixtures() && requireRuntime();

const CORPUS_DIR = path.join(repoRoot(), 'test', 'fixtures', 'invalid');

interface CorpusCase {
  field: string;
  description: string;
  stage: 'validate' | 'runtime';
  needs?: string;
  expect?: 'error' | 'contained';
}

function corpus(): [string, CorpusCase][] {
  const index = JSON.parse(fs.readFileSync(path.join(CORPUS_DIR, 'index.json'), 'utf8')) as Record<string, unknown>;
  return Object.entries(index)
    .filter(([k]) => k !== '_comment')
    .map(([file, c]) => [file, c as CorpusCase]);
}

/**
 * The message of a one-line error. Both runtimes print logrus-style lines
 * (`time="..." level=error msg="..."`, the message Go-quoted); anything else is taken as is.
 */
function errorMessage(line: string): string {
  const m = /^time="[^"]*" level=\w+ msg="((?:[^"\\]|\\.)*)"/.exec(line);
  if (!m) return line;
  try {
    return JSON.parse(`"${m[1]}"`) as string;
  } catch {
    return m[1];
  }
}

/** A failed command: non-zero exit, exactly one non-empty stderr line; returns its message. */
function oneLineError(r: RunResult): string {
  expect(r.code).not.toBe(0);
  const lines = parseLines(r.stderr);
  expect(lines).toHaveLength(1);
  return errorMessage(lines[0]);
}

/** A bundle whose config.json is the corpus file, verbatim. */
async function corpusBundle(file: string): Promise<Bundle> {
  const b = await makeBundle();
  fs.copyFileSync(path.join(CORPUS_DIR, file), path.join(b.dir, 'config.json'));
  return b;
}

/** Entries of the state root (to show a bad id created nothing there). */
function rootEntries(): string[] {
  return fs.readdirSync(runtimeRoot()).filter((n) => !n.startsWith('.')).sort();
}

describeIf(ok)(`bad input (${runtimeName()})`, () => {
  afterAll(() => cleanupRuntimeRoot());

  it('the corpus is complete: 111 cases, every file listed, every listed file present', () => {
    const cases = corpus();
    const files = fs.readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.json') && f !== 'index.json');
    expect(cases).toHaveLength(111);
    expect(cases.map(([f]) => f).sort()).toEqual(files.sort());
  });

  // ---- the corpus, stage "validate": vkernel only (see the header)
  if (isVkernel()) {
    describe('invalid config.json (stage validate): create fails with one line naming the field, nothing left', () => {
      it.each(corpus().filter(([, c]) => c.stage === 'validate'))('%s', (file, c) =>
        withLeakCheck(async () => {
          const b = await corpusBundle(file);
          const r = await runRuntime(['create', '--bundle', b.dir, b.id]);
          const msg = oneLineError(r);
          expect(msg).toContain(c.field);
          expect(r.stdout).toBe('');
          await expectGone(b.id);
        }),
      );
    });
  }

  // ---- the corpus, stage "runtime": both runtimes
  describe('invalid config.json (stage runtime)', () => {
    // What the one error line must name (the offending value: neither runtime can name the
    // JSON path for a failure inside the container).
    const names: Record<string, RegExp> = {
      'runtime-exec-not-found.json': /"\/no\/such\/binary".*no such file or directory/i,
      'runtime-exec-not-executable.json': /"\/etc\/hostname".*permission denied/i,
      'runtime-exec-directory.json': /"\/etc".*permission denied/i,
      'runtime-cwd-is-file.json': /\/etc\/passwd.*not a directory/i,
      'runtime-bind-file-over-dir.json': /config\.json.*"\/etc"/,
    };
    const errorCases = corpus().filter(([, c]) => c.stage === 'runtime' && c.expect === 'error');

    it('every runtime "error" case has an expectation here', () => {
      expect(errorCases.map(([f]) => f).sort()).toEqual(Object.keys(names).sort());
    });

    it.each(errorCases)('%s: create fails, one line naming the offending value, nothing left', (file) =>
      withLeakCheck(async () => {
        const b = await corpusBundle(file);
        const r = await runRuntime(['create', '--bundle', b.dir, b.id]);
        expect(oneLineError(r)).toMatch(names[file]);
        await expectGone(b.id);
      }),
    );

    it.each(errorCases)('%s: `run` fails the same way, nothing left', (file) =>
      withLeakCheck(async () => {
        const b = await corpusBundle(file);
        const r = await runRuntime(['run', '--bundle', b.dir, b.id]);
        expect(oneLineError(r)).toMatch(names[file]);
        await expectGone(b.id);
      }),
    );

    it('runtime-symlink-mount-escape.json: the tmpfs lands inside the rootfs, never on the host', () =>
      withLeakCheck(async () => {
        const hostTarget = '/tmp/vkernel-escape-target';
        expect(fs.existsSync(hostTarget)).toBe(false);
        const b = await corpusBundle('runtime-symlink-mount-escape.json');
        fs.symlinkSync('../../../../../../../../tmp', path.join(b.rootfs, 'escape'));
        const spec = JSON.parse(fs.readFileSync(path.join(b.dir, 'config.json'), 'utf8'));
        spec.process.args = vktest('mounts');
        fs.writeFileSync(path.join(b.dir, 'config.json'), JSON.stringify(spec));
        const r = await runRuntime(['run', '--bundle', b.dir, b.id]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        const m = parseMountinfo(r.stdout).find((x) => x.mountPoint === '/tmp/vkernel-escape-target');
        expect(m?.fstype).toBe('tmpfs');
        expect(fs.existsSync(path.join(b.rootfs, 'tmp', 'vkernel-escape-target'))).toBe(true);
        expect(fs.existsSync(hostTarget)).toBe(false);
        expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(hostTarget);
      }));

    it('runtime-masked-path-symlink.json: the mask resolves inside the rootfs; the host /etc/passwd stays', () =>
      withLeakCheck(async () => {
        const b = await corpusBundle('runtime-masked-path-symlink.json');
        fs.symlinkSync('/etc', path.join(b.rootfs, 'escape-mask'));
        const spec = JSON.parse(fs.readFileSync(path.join(b.dir, 'config.json'), 'utf8'));
        spec.process.args = ['/bin/sh', '-c', '/vktest cat /etc/passwd; /vktest echo ---; /vktest stat /etc/passwd'];
        fs.writeFileSync(path.join(b.dir, 'config.json'), JSON.stringify(spec));
        const r = await runRuntime(['run', '--bundle', b.dir, b.id]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        // The container's /etc/passwd (the rootfs copy) is /dev/null now...
        expect(r.stdout.startsWith('---\n')).toBe(true);
        expect(r.stdout).toMatch(/^rdev=1:3$/m);
        // ...the rootfs file itself and the host's are untouched.
        expect(fs.readFileSync(path.join(b.rootfs, 'etc/passwd'), 'utf8')).toMatch(/^root:/);
        expect(fs.readFileSync('/etc/passwd', 'utf8')).toMatch(/^root:/);
        expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(/ \/etc\/passwd /);
      }));
  });

  // ---- container ids
  describe('bad container ids: create fails with one line, nothing is created in or next to the state root', () => {
    const ids: [string, string][] = [
      ['../x', 'path traversal'],
      ['a/b', 'a slash'],
      ['', 'empty'],
      ['.', 'dot'],
      ['..', 'dot dot'],
      ['x'.repeat(2000), '2000 characters'],
      ['a b', 'a space'],
    ];
    it.each(ids)('%#: %j (%s)', (id) =>
      withLeakCheck(async () => {
        const b = await makeBundle();
        const parent = path.dirname(runtimeRoot());
        const parentBefore = fs.readdirSync(parent).filter((n) => n === 'x' || n === 'a');
        const rootBefore = rootEntries();
        const r = await runRuntime(['create', '--bundle', b.dir, id]);
        const msg = oneLineError(r);
        expect(msg).toMatch(id === '' ? /container id cannot be empty/ : /invalid container id format|file name too long/i);
        expect(rootEntries()).toEqual(rootBefore);
        expect(fs.readdirSync(parent).filter((n) => n === 'x' || n === 'a')).toEqual(parentBefore);
      }),
    );
  });

  // ---- flags
  it('an unknown flag of a command: one line naming it, nothing created', () =>
    withLeakCheck(async () => {
      const b = await makeBundle();
      const msg = oneLineError(await runRuntime(['create', '--bogus-flag', '--bundle', b.dir, b.id]));
      expect(msg).toMatch(/bogus-flag/);
      await expectGone(b.id);
    }));

  it('an unknown global flag: one line naming it', async () => {
    const msg = oneLineError(await runRuntime(['--bogus-global', 'list']));
    expect(msg).toMatch(/bogus-global/);
  });

  it('an unknown command: non-zero exit, one line naming it', async () => {
    const msg = oneLineError(await runRuntime(['frobnicate']));
    expect(msg).toMatch(/frobnicate/);
  });

  it('--preserve-fds abc: one line naming the flag, nothing created', () =>
    withLeakCheck(async () => {
      const b = await makeBundle();
      const msg = oneLineError(await runRuntime(['create', '--preserve-fds', 'abc', '--bundle', b.dir, b.id]));
      expect(msg).toMatch(/preserve-fds/);
      await expectGone(b.id);
    }));

  it('--preserve-fds -1: vkernel refuses it (runc 1.1 silently accepts it)', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: vktest('sleep', '30') });
      const r = await runRuntime(['create', '--preserve-fds', '-1', '--bundle', b.dir, b.id]);
      if (isRunc()) {
        // runc parses the flag as a Go int and never checks the sign.
        expect(r.code).toBe(0);
        await runRuntimeOk(['delete', '--force', b.id]);
        return;
      }
      expect(oneLineError(r)).toMatch(/--preserve-fds.*non-negative/);
      await expectGone(b.id);
    }));

  it('exec --preserve-fds -1: refused with a message naming the flag (runc 1.1 accepts it)', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: vktest('sleep', '30') });
      await runDetached(b);
      const r = await runRuntime(['exec', '--preserve-fds', '-1', b.id, '/vktest', 'echo', 'x']);
      if (isRunc()) expect(r.code).toBe(0);
      else expect(oneLineError(r)).toMatch(/--preserve-fds.*non-negative/);
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('--systemd-cgroup without systemd: a clear error, nothing created', () =>
    withLeakCheck(async () => {
      expect(fs.existsSync('/run/systemd/system')).toBe(false); // this machine has no systemd
      const b = await makeBundle();
      const msg = oneLineError(await runRuntime(['--systemd-cgroup', 'create', '--bundle', b.dir, b.id]));
      expect(msg).toMatch(/systemd.*not running|not running.*systemd/i);
      await expectGone(b.id);
    }));

  it('--console-socket to a missing path with terminal true: create fails naming the socket, nothing left', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ mutate: (s) => (s.process!.terminal = true) });
      const dir = tempDir('vkt-nosock');
      try {
        const sock = path.join(dir, 'missing.sock');
        const msg = oneLineError(await runRuntime(['create', '--console-socket', sock, '--bundle', b.dir, b.id]));
        expect(msg).toContain(sock);
        expect(msg).toMatch(/no such file or directory/i);
        await expectGone(b.id);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }));

  it('terminal true on a detached create without --console-socket: refused, nothing left', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ mutate: (s) => (s.process!.terminal = true) });
      expect(oneLineError(await runRuntime(['create', '--bundle', b.dir, b.id]))).toMatch(/cannot allocate tty/);
      await expectGone(b.id);
    }));

  it('--console-socket without terminal: refused, nothing left', () =>
    withLeakCheck(async () => {
      const b = await makeBundle();
      const msg = oneLineError(await runRuntime(['create', '--console-socket', path.join(os.tmpdir(), 'unused.sock'), '--bundle', b.dir, b.id]));
      expect(msg).toMatch(/cannot use console socket/);
      await expectGone(b.id);
    }));

  it('a missing bundle directory, and a bundle without config.json: one line naming the path', () =>
    withLeakCheck(async () => {
      const b = await makeBundle();
      const missing = path.join(b.dir, 'no-such-bundle');
      expect(oneLineError(await runRuntime(['create', '--bundle', missing, b.id]))).toContain('no-such-bundle');
      fs.rmSync(path.join(b.dir, 'config.json'));
      expect(oneLineError(await runRuntime(['create', '--bundle', b.dir, b.id]))).toMatch(/config\.json/);
      await expectGone(b.id);
    }));

  it('delete --force of an unknown id succeeds silently (as runc; conmon relies on it); without --force, or with a bad id, it fails', async () => {
    const forced = await runRuntime(['delete', '--force', 'vkt-never-created']);
    expect({ code: forced.code, stderr: forced.stderr }).toEqual({ code: 0, stderr: '' });
    expect(oneLineError(await runRuntime(['delete', 'vkt-never-created']))).toMatch(/container does not exist/);
    expect(oneLineError(await runRuntime(['delete', '--force', '../x']))).toMatch(/invalid container id format/i);
  });

  // ---- kill / exec on a running container
  it('kill with a bad signal fails with one line; the container keeps running', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: vktest('sleep', '60') });
      await runDetached(b);
      expect(oneLineError(await runRuntime(['kill', b.id, 'SIGNOPE']))).toMatch(/unknown signal/);
      expect(oneLineError(await runRuntime(['kill', b.id, '999']))).toMatch(/signal|invalid argument/i);
      expect(oneLineError(await runRuntime(['kill', b.id, '-1']))).toMatch(/signal|invalid argument/i);
      expect((await stateOf(b.id)).status).toBe('running');
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('kill with signal 0 probes the init without harming it (runc passes any number to kill(2))', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: vktest('sleep', '60') });
      await runDetached(b);
      await runRuntimeOk(['kill', b.id, '0']);
      expect((await stateOf(b.id)).status).toBe('running');
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('exec with no command, and exec --process with empty args: exit 255, one line, no process left', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: vktest('sleep', '60') });
      const pid = await runDetached(b);
      const r1 = await runRuntime(['exec', b.id]);
      expect(r1.code).toBe(255);
      expect(oneLineError(r1)).toMatch(/args.*empty|empty.*args/i);
      const proc = path.join(b.dir, 'process.json');
      fs.writeFileSync(proc, JSON.stringify({ ...b.spec.process, args: [] }));
      const r2 = await runRuntime(['exec', '--process', proc, b.id]);
      expect(r2.code).toBe(255);
      expect(oneLineError(r2)).toMatch(/args.*empty|empty.*args/i);
      const ps = JSON.parse((await runRuntimeOk(['ps', '--format', 'json', b.id])).stdout) as number[];
      expect(ps).toEqual([pid]);
      await runRuntimeOk(['delete', '--force', b.id]);
    }));
});
