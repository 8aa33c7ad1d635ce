// `make install` end to end (issue 7): the installed `vkernel` and `containerd-shim-vkernel-v2`
// work from another directory with no node (and nothing else) on PATH and with the build
// tree hidden, a DESTDIR-staged tree works wherever it is copied, and `make uninstall`
// leaves no file behind.
//
// The tree is built already (`make test` builds it first): the tests run `make -o all
// install`, so they install what was built and tested instead of rebuilding under them.
// The build tree is hidden by a tmpfs mounted over it in a private mount namespace
// (`unshare -m`), for `vkernel run` and for the containerd (1.6) that runs the installed shim.
// That containerd gets a private shim manager socket, so the manager the cold path starts
// from the temp prefix is ours to stop, not a host-wide one.
import { spawn, type SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  defaultFixturesDir,
  describeIf,
  makeBundle,
  OCI_TAR_NAME,
  repoRoot,
  requireBinary,
  requireFixtures,
  requirement,
  requireRoot,
  TestContainerd,
  type Bundle,
} from '../harness';

const REPO = repoRoot();
const SHIM = 'containerd-shim-vkernel-v2';
/** What the installed code needs from build/ (runtime/paths.ts buildPath, plus the entry points). */
const BUILD_FILES = ['vkinit', 'vkseccomp', 'vkfs', 'vkagent', 'vknative.node', 'vkernel.js', 'vkernel-launch.js', 'revision', SHIM];
/** An environment without node or anything else on PATH: nothing may be looked up there. */
const BARE_ENV = { PATH: '/nonexistent' };
const MEM_LIMIT = 256 * 1024 * 1024;
const VIEW_SCRIPT = "echo mem=$(awk '/^MemTotal:/{print $2}' /proc/meminfo) uptime=$(cut -d' ' -f1 /proc/uptime)";

const ok =
  requireRoot() &&
  requireFixtures() &&
  requireBinary('unshare') &&
  requirement(
    BUILD_FILES.every((f) => f === SHIM || fs.existsSync(path.join(REPO, 'build', f))),
    `the build tree is incomplete (run \`make\`): ${BUILD_FILES.filter((f) => f !== SHIM).map((f) => `build/${f}`).join(' ')}`,
  );

jest.setTimeout(180_000);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** binary: stdout and stderr as latin1 (protobuf output). */
type RunOpts = SpawnOptions & { binary?: boolean; timeoutMs?: number };

/** Runs to completion (stdin /dev/null: the shim launcher reads stdin to its end). */
function run(file: string, args: string[], opts: RunOpts = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const enc = opts.binary ? 'latin1' : 'utf8';
      resolve({ code: code ?? 128 + (signal ? os.constants.signals[signal] : 0), stdout: Buffer.concat(out).toString(enc), stderr: Buffer.concat(err).toString(enc) });
    });
  });
}

async function runOk(file: string, args: string[], opts: RunOpts = {}): Promise<Result> {
  const r = await run(file, args, opts);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

const make = (args: string[]): Promise<Result> => runOk('make', ['--no-print-directory', '-C', REPO, ...args]);

/** `cmd args` with REPO hidden under an empty read-only tmpfs (private mount namespace). */
function hidingRepo(cmd: string, args: string[], opts: RunOpts = {}): Promise<Result> {
  const script = 'mount -t tmpfs -o ro,size=4k vkt-hidden "$1" && shift && exec "$@"';
  return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', REPO, cmd, ...args], opts);
}

/** Every file (and symlink) under dir, relative. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

/** Files under dir whose bytes contain any of the needles. */
function filesMentioning(dir: string, needles: string[]): string[] {
  const bufs = needles.map((n) => Buffer.from(n));
  return filesUnder(dir).filter((f) => {
    const p = path.join(dir, f);
    if (fs.lstatSync(p).isSymbolicLink()) return needles.some((n) => fs.readlinkSync(p).includes(n));
    const data = fs.readFileSync(p);
    return bufs.some((b) => data.includes(b));
  });
}

/** Live processes whose executable or argv names something under dir. */
function processesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      let exe = '';
      try {
        exe = fs.readlinkSync(`/proc/${pid}/exe`);
      } catch {
        // kernel thread or gone
      }
      if (/^\S+ \([^]*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) continue;
      if (exe.startsWith(dir + '/') || argv.includes(dir + '/')) out.push(`${pid} ${argv}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The V8 code cache records the name the bundle had where it was compiled (the build tree,
 * or the stage): metadata V8 does not check, so it is exempt from the "names the build
 * tree" checks; that it is accepted where installed is checked by running.
 */
const isCodeCache = (f: string): boolean => /(^|\/)vkernel\.js\.v[\d.]+\.cache$/.test(f);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(100)) if (what()) return true;
  return what();
}

/** The names runtime/**.ts passes to buildPath(): each must be installed. */
function buildPathNames(): string[] {
  const names = new Set<string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) for (const m of fs.readFileSync(p, 'utf8').matchAll(/buildPath\('([^']+)'\)/g)) names.add(m[1]);
    }
  };
  walk(path.join(REPO, 'runtime'));
  return [...names].sort();
}

describeIf(ok)('make install PREFIX=<tmp>', () => {
  let tmp = '';
  let prefix = '';
  let bin = (name: string): string => name;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-install-'));
    fs.chmodSync(tmp, 0o755);
    prefix = path.join(tmp, 'prefix');
    bin = (name) => path.join(prefix, 'bin', name);
    await make(['-o', 'all', 'install', `PREFIX=${prefix}`]);
  });

  afterAll(async () => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('installs every helper the runtime looks up with buildPath, the entry points, and no test payload', () => {
    const build = path.join(prefix, 'lib', 'vkernel', 'build');
    const installed = fs.readdirSync(build);
    expect(buildPathNames().filter((n) => !installed.includes(n))).toEqual([]);
    expect(BUILD_FILES.filter((n) => !installed.includes(n))).toEqual([]);
    expect(installed.some(isCodeCache)).toBe(true);
    expect(installed).not.toContain('vktest');
    expect(fs.readlinkSync(bin(SHIM))).toBe(`../lib/vkernel/build/${SHIM}`);
    const lib = path.join(prefix, 'lib', 'vkernel');
    for (const f of ['dist/cmd/containerd-shim-vkernel-v2.js', 'dist/shim/daemon/main.js', 'dist/shim/manager/main.js', 'proto/bundle.json']) {
      expect(fs.existsSync(path.join(lib, f))).toBe(true);
    }
    expect(fs.existsSync(path.join(lib, 'dist', 'test'))).toBe(false);
    expect(fs.existsSync(path.join(lib, 'node_modules', 'jest'))).toBe(false);
    expect(filesMentioning(prefix, [REPO + '/']).filter((f) => !isCodeCache(f))).toEqual([]);
  });

  it('vkernel --version and features run from another directory with nothing on PATH and the build tree hidden', async () => {
    const build = path.join(prefix, 'lib', 'vkernel', 'build');
    const cache = path.join(build, fs.readdirSync(build).find(isCodeCache)!);
    const cached = fs.readFileSync(cache);
    const v = await hidingRepo('env', ['-i', `PATH=${BARE_ENV.PATH}`, bin('vkernel'), '--version'], { cwd: '/' });
    expect(v).toEqual({ code: 0, stdout: expect.stringMatching(/^vkernel version \S+\nspec: \S+\n$/), stderr: '' });
    const f = await hidingRepo('env', ['-i', `PATH=${BARE_ENV.PATH}`, bin('vkernel'), 'features'], { cwd: '/' });
    expect({ code: f.code, stderr: f.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(f.stdout)).toMatchObject({ ociVersionMin: expect.any(String), ociVersionMax: expect.any(String) });
    // The installed code cache was accepted: the loader rewrites one V8 rejects.
    expect(fs.readFileSync(cache).equals(cached)).toBe(true);
  });

  it('vkernel run: the container sees its own memory (vkfs from the install); nothing is left behind', async () => {
    const root = path.join(tmp, 'state');
    let b: Bundle | undefined;
    try {
      b = await makeBundle({
        args: ['/bin/sh', '-c', VIEW_SCRIPT],
        root,
        mutate: (s) => {
          s.linux!.resources = { ...s.linux!.resources, memory: { limit: MEM_LIMIT } };
        },
      });
      const r = await hidingRepo('env', ['-i', `PATH=${BARE_ENV.PATH}`, bin('vkernel'), '--root', root, 'run', '--bundle', b.dir, b.id], { cwd: tmp });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(new RegExp(`^mem=${MEM_LIMIT / 1024} uptime=\\d+\\.\\d+\\n$`));
      expect(fs.readdirSync(root).filter((e) => !e.startsWith('.'))).toEqual([]);
      expect(await waitUntil(() => processesUnder(prefix).length === 0, 5000)).toBe(true);
    } finally {
      await b?.cleanup();
    }
  });

  it('errors say what to do: a missing helper (reinstall), a missing node (VKERNEL_NODE or reinstall)', async () => {
    const env = (extra: Record<string, string>): string[] => ['-i', ...Object.entries({ ...BARE_ENV, ...extra }).map(([k, x]) => `${k}=${x}`)];
    // `vkernel check` in an installed copy: the fix is a reinstall, not `make native`.
    const check = await hidingRepo('env', [...env({ VKERNEL_SECCOMP: '/nonexistent/vkseccomp' }), bin('vkernel'), 'check', '--format', 'json', '--address', path.join(tmp, 'none.sock')], { cwd: '/' });
    expect(check.code).toBe(1);
    const rows = (JSON.parse(check.stdout) as { rows: { name: string; detail: string }[] }).rows;
    expect(rows.find((r) => r.name === 'native-helpers')?.detail).toBe('missing: /nonexistent/vkseccomp (reinstall vkernel (make install))');
    // The wrapper and the shim launcher with node gone.
    const hint = /set VKERNEL_NODE .*to a Node\.js \(>= 20\) binary, or reinstall vkernel \(make install INSTALL_NODE=\/path\/to\/node\)\n$/;
    const cli = await hidingRepo('env', [...env({ VKERNEL_NODE: '/nonexistent/node' }), bin('vkernel'), '--version'], { cwd: '/' });
    expect(cli).toEqual({ code: 127, stdout: '', stderr: expect.stringMatching(/^vkernel: cannot run node: \/nonexistent\/node is not an executable; /) });
    expect(cli.stderr).toMatch(hint);
    const shim = await hidingRepo('env', [...env({ VKERNEL_NODE: '/nonexistent/node', VKERNEL_SHIM_MANAGER: 'off' }), bin(SHIM), '-v'], { cwd: '/' });
    expect(shim).toEqual({ code: 127, stdout: '', stderr: expect.stringMatching(new RegExp(`^${SHIM}: cannot run node: exec /nonexistent/node: No such file or directory; `)) });
    expect(shim.stderr).toMatch(hint);
  });

  it('the shim answers -v and -info (cold path, from another directory)', async () => {
    const env = { ...BARE_ENV, VKERNEL_SHIM_MANAGER: 'off' };
    const v = await hidingRepo('env', ['-i', ...Object.entries(env).map(([k, x]) => `${k}=${x}`), bin(SHIM), '-v'], { cwd: '/' });
    expect({ code: v.code, stderr: v.stderr }).toEqual({ code: 0, stderr: '' });
    expect(v.stdout).toMatch(/^containerd-shim-vkernel-v2:\n\s+Version:\s+\S+\n\s+Revision:\s+\S*\n/);
    const info = await hidingRepo('env', ['-i', ...Object.entries(env).map(([k, x]) => `${k}=${x}`), bin(SHIM), '-info'], {
      cwd: '/',
      binary: true,
    });
    expect({ code: info.code, stderr: info.stderr }).toEqual({ code: 0, stderr: '' });
    expect(info.stdout).toContain('io.containerd.vkernel.v2'); // RuntimeInfo.name (protobuf)
    expect(info.stdout).toContain('"ociVersionMax"'); // the runtime's features, embedded
  });

  it('ctr run --runtime <installed shim> under containerd 1.6 (cold path, then the manager it started)', async () => {
    const managerSocket = path.join(tmp, 'manager.sock');
    // containerd (and so every shim it runs) in a mount namespace where the build tree is an
    // empty tmpfs: a wrapper next to a ctr symlink, as TestContainerd finds ctr beside its binary.
    const wrapDir = path.join(tmp, 'containerd-bin');
    fs.mkdirSync(wrapDir);
    fs.symlinkSync('/usr/bin/ctr', path.join(wrapDir, 'ctr'));
    fs.writeFileSync(
      path.join(wrapDir, 'containerd'),
      `#!/bin/sh\nexec unshare -m --propagation private sh -c 'mount -t tmpfs -o ro,size=4k vkt-hidden "$0" && exec /usr/bin/containerd "$@"' ${JSON.stringify(REPO)} "$@"\n`,
      { mode: 0o755 },
    );
    const cd = await TestContainerd.start({ version: '1.6', binary: path.join(wrapDir, 'containerd'), env: { VKERNEL_SHIM_MANAGER: managerSocket } });
    const pidFile = managerSocket.replace(/\.sock$/, '.pid');
    try {
      const image = await cd.importImage(path.join(defaultFixturesDir(), OCI_TAR_NAME));
      for (const id of ['inst-cold', 'inst-warm']) {
        const r = await cd.ctr(['run', '--rm', '--runtime', bin(SHIM), '--memory-limit', String(MEM_LIMIT), image, id, 'sh', '-c', VIEW_SCRIPT]);
        expect({ id, code: r.code, stderr: r.stderr, log: r.code === 0 ? '' : cd.logTail(30) }).toEqual({ id, code: 0, stderr: '', log: '' });
        expect(r.stdout).toMatch(new RegExp(`^mem=${MEM_LIMIT / 1024} uptime=\\d+\\.\\d+\\n$`));
        if (id === 'inst-cold') expect(await waitUntil(() => fs.existsSync(managerSocket), 10_000)).toBe(true);
      }
      // The manager the cold path started runs the installed code.
      const managerPid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      expect(fs.readFileSync(`/proc/${managerPid}/cmdline`, 'utf8')).toContain(path.join(prefix, 'lib', 'vkernel', 'dist', 'shim', 'manager', 'main.js'));
    } finally {
      expect(await cd.stop()).toEqual([]);
      const managerPid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').trim()) : 0;
      if (managerPid > 0) {
        try {
          process.kill(managerPid, 'SIGTERM');
        } catch {
          // gone
        }
      }
    }
    expect(await waitUntil(() => processesUnder(prefix).length === 0, 15_000)).toBe(true);
    expect(processesUnder(prefix)).toEqual([]);
  });

  it('make uninstall leaves no file', async () => {
    await make(['uninstall', `PREFIX=${prefix}`]);
    expect(filesUnder(prefix)).toEqual([]);
  });
});

describeIf(ok)('make install DESTDIR=<stage> PREFIX=/usr/local', () => {
  let tmp = '';
  let stage = '';

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-destdir-'));
    stage = path.join(tmp, 'stage');
    await make(['-o', 'all', 'install', `DESTDIR=${stage}`, 'PREFIX=/usr/local']);
  });

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('stages the /usr/local layout; no file names the stage or the build tree', () => {
    const files = filesUnder(stage);
    expect(files).toEqual(expect.arrayContaining([`usr/local/bin/vkernel`, `usr/local/bin/${SHIM}`, ...BUILD_FILES.map((f) => `usr/local/lib/vkernel/build/${f}`)]));
    expect(files.filter((f) => !f.startsWith('usr/local/bin/') && !f.startsWith('usr/local/lib/vkernel/'))).toEqual([]);
    expect(files.filter((f) => /\/vkernel\/dist\/(test\/|.*\.map$)|\/vktest$/.test(f))).toEqual([]);
    expect(filesMentioning(stage, [stage, REPO + '/']).filter((f) => !isCodeCache(f))).toEqual([]);
    expect(fs.readFileSync(path.join(stage, 'usr/local/bin/vkernel'), 'utf8')).toContain('"/usr/local/lib/vkernel"'); // the fallback
  });

  it('runs where it lands: a copy (cp -a) elsewhere uses its own files', async () => {
    const moved = path.join(tmp, 'moved');
    await runOk('cp', ['-a', path.join(stage, 'usr', 'local'), moved]);
    // VKERNEL_NODE=/bin/echo shows what each entry point would run.
    const echoEnv = { ...BARE_ENV, VKERNEL_NODE: '/bin/echo', VKERNEL_SHIM_MANAGER: 'off' };
    const w = await runOk(path.join(moved, 'bin', 'vkernel'), ['--version'], { cwd: '/', env: echoEnv });
    expect(w.stdout).toBe(`${moved}/bin/../lib/vkernel/build/vkernel-launch.js --version\n`);
    const s = await runOk(path.join(moved, 'bin', SHIM), ['-v'], { cwd: '/', env: echoEnv });
    expect(s.stdout).toBe(`--no-warnings ${moved}/lib/vkernel/dist/cmd/${SHIM}.js -v\n`);
    // And really runs there.
    const v = await runOk(path.join(moved, 'bin', 'vkernel'), ['--version'], { cwd: '/', env: BARE_ENV });
    expect(v.stdout).toMatch(/^vkernel version /);
    const sv = await runOk(path.join(moved, 'bin', SHIM), ['-v'], { cwd: '/', env: { ...BARE_ENV, VKERNEL_SHIM_MANAGER: 'off' } });
    expect(sv.stdout).toMatch(/Version:/);
  });

  it('make uninstall DESTDIR=<stage> leaves no file', async () => {
    await make(['uninstall', `DESTDIR=${stage}`, 'PREFIX=/usr/local']);
    expect(filesUnder(stage)).toEqual([]);
  });
});
