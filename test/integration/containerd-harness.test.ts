// The real-containerd harness itself, against containerd 1.6 (bookworm) and 1.7 (trixie):
// start, version, image import, a runc-shim container end to end, restart / kill -9
// recovery, leak detection, clean stop, and two instances side by side.
//
// Under CI=true nothing skips (containerd 1.7 is installed on demand, a missing piece is a
// failure). Elsewhere the file skips when not root, and the 1.7 part skips until
// scripts/install-containerd17.sh has been run.

import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tar from 'tar-stream';
import * as zlib from 'zlib';
import { ContainerdVersion, containerd17Dir, containerdBinary, TestContainerd } from '../harness/containerd';

jest.setTimeout(120_000);

const CI = process.env.CI === 'true';
const VERSIONS: ContainerdVersion[] = ['1.6', '1.7'];

function available(version: ContainerdVersion): boolean {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) {
    if (CI) throw new Error('containerd harness tests must run as root (CI=true, so this fails instead of skipping)');
    process.stderr.write('[containerd-harness] skipping: not root\n');
    return false;
  }
  if (CI) {
    containerdBinary(version); // installs 1.7 if needed, throws with the reason otherwise
    return true;
  }
  try {
    containerdBinary(version);
    return true;
  } catch (e) {
    process.stderr.write(`[containerd-harness] skipping containerd ${version}: ${(e as Error).message}\n`);
    return false;
  }
}

const have: Record<ContainerdVersion, boolean> = { '1.6': available('1.6'), '1.7': available('1.7') };

// ---- the image ----------------------------------------------------------------------

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('repository root not found');
    dir = parent;
  }
  return dir;
}

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

async function packTar(items: { header: tar.Headers; data?: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: Buffer) => chunks.push(c));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  for (const item of items) {
    const header: tar.Headers = { uid: 0, gid: 0, mtime: new Date(946684800000), ...item.header };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (item.data) pack.entry(header, item.data, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  return done;
}

/** A minimal OCI image layout tarball: one layer with /bin/busybox (static) and /tmp. */
async function buildMinimalImage(out: string, name: string): Promise<void> {
  const busybox = fs.readFileSync('/bin/busybox');
  const layer = await packTar([
    { header: { name: 'bin/', type: 'directory', mode: 0o755 } },
    { header: { name: 'bin/busybox', type: 'file', mode: 0o755, size: busybox.length }, data: busybox },
    { header: { name: 'bin/sh', type: 'symlink', linkname: 'busybox', mode: 0o777 } },
    { header: { name: 'tmp/', type: 'directory', mode: 0o1777 } },
  ]);
  const gz = zlib.gzipSync(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layer)}`] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256(config)}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${sha256(gz)}`, size: gz.length }],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${sha256(manifest)}`,
          size: manifest.length,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name },
        },
      ],
    }),
  );
  const blob = (data: Buffer): { header: tar.Headers; data: Buffer } => ({
    header: { name: `blobs/sha256/${sha256(data)}`, type: 'file', mode: 0o644, size: data.length },
    data,
  });
  const layout = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(
    out,
    await packTar([
      { header: { name: 'blobs/', type: 'directory', mode: 0o755 } },
      { header: { name: 'blobs/sha256/', type: 'directory', mode: 0o755 } },
      blob(gz),
      blob(config),
      blob(manifest),
      { header: { name: 'index.json', type: 'file', mode: 0o644, size: index.length }, data: index },
      { header: { name: 'oci-layout', type: 'file', mode: 0o644, size: layout.length }, data: layout },
    ]),
  );
}

let tmp: string;
let imageTar: string;
let expectedRef: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-harness-test-'));
  const fixture = path.join(repoRoot(), 'build', 'fixtures', 'busybox-oci.tar');
  if (fs.existsSync(fixture)) {
    imageTar = fixture;
    const index = JSON.parse(await readTarMember(fixture, 'index.json'));
    expectedRef = index.manifests[0].annotations['io.containerd.image.name'];
  } else {
    imageTar = path.join(tmp, 'minimal-busybox-oci.tar');
    expectedRef = 'docker.io/library/vkt-harness-busybox:latest';
    await buildMinimalImage(imageTar, expectedRef);
  }
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function readTarMember(file: string, name: string): Promise<string> {
  const extract = tar.extract();
  return new Promise((resolve, reject) => {
    let found: string | undefined;
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (header.name === name) found = Buffer.concat(chunks).toString();
        next();
      });
      stream.resume();
    });
    extract.on('finish', () => (found === undefined ? reject(new Error(`${name} not in ${file}`)) : resolve(found)));
    extract.on('error', reject);
    fs.createReadStream(file).pipe(extract);
  });
}

// ---- helpers ------------------------------------------------------------------------

function serverVersion(ctrVersionOut: string): string | undefined {
  const server = ctrVersionOut.split(/^Server:/m)[1] ?? '';
  return /Version:\s+v?(\S+)/.exec(server)?.[1];
}

/** Pids of runc shims started by this instance, with the binary each runs. */
function shimExes(cd: TestContainerd): { pid: number; exe: string }[] {
  const out: { pid: number; exe: string }[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (!path.basename(argv[0]).startsWith('containerd-shim') || !argv.includes(cd.namespace)) continue;
      out.push({ pid: Number(name), exe: fs.readlinkSync(`/proc/${name}/exe`) });
    } catch {
      // gone
    }
  }
  return out;
}

async function taskStatus(cd: TestContainerd, id: string): Promise<string | undefined> {
  const r = await cd.ctrOk(['tasks', 'ls']);
  const line = r.stdout.split('\n').find((l) => l.split(/\s+/)[0] === id);
  return line?.trim().split(/\s+/)[2];
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function removeTask(cd: TestContainerd, id: string): Promise<void> {
  await cd.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
  await waitFor(`${id} to stop`, async () => (await taskStatus(cd, id)) === 'STOPPED');
  await cd.ctrOk(['tasks', 'delete', id]);
  await cd.ctrOk(['containers', 'delete', id]);
}

const timings: string[] = [];

afterAll(() => {
  if (timings.length) process.stderr.write(`[containerd-harness] timings:\n  ${timings.join('\n  ')}\n`);
});

// ---- per version --------------------------------------------------------------------

describe.each(VERSIONS)('containerd %s', (version) => {
  const d = have[version] ? describe : describe.skip;

  d('one instance', () => {
    let cd: TestContainerd;
    let ref: string;

    beforeAll(async () => {
      cd = await TestContainerd.start({ version });
      timings.push(`${version} start: ${cd.timings.startMs} ms`);
    });

    afterAll(async () => {
      if (cd) await cd.stop();
    });

    it('answers ctr version with the right server version', async () => {
      expect(cd.version.startsWith(`${version}.`)).toBe(true);
      expect(cd.namespace).toMatch(/^vkt-[0-9a-f]+$/);
      expect(cd.ttrpcAddress).toBe(cd.address + '.ttrpc');
      expect(fs.existsSync(cd.ttrpcAddress)).toBe(true);
      expect(cd.rootDir.startsWith(cd.dir + '/') && cd.stateDir.startsWith(cd.dir + '/')).toBe(true);
      const r = await cd.ctrOk(['version']);
      expect(serverVersion(r.stdout)).toBe(cd.version);
      expect(r.stdout).toMatch(new RegExp(`Client:\\s+Version:\\s+v?${version.replace('.', '\\.')}\\.`));
      if (version === '1.7') expect(cd.binary).toBe(path.join(containerd17Dir(), 'usr', 'bin', 'containerd'));
      else expect(cd.binary).toBe('/usr/bin/containerd');
      // The CRI plugin is off; the config is the generated one.
      const plugins = await cd.ctrOk(['plugins', 'ls']);
      expect(plugins.stdout).not.toMatch(/io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/);
      expect(fs.readFileSync(cd.configFile, 'utf8')).toContain('disabled_plugins = ["io.containerd.grpc.v1.cri"]');
    });

    it('imports an OCI image tarball', async () => {
      ref = await cd.importImage(imageTar);
      expect(ref).toBe(expectedRef);
      const ls = await cd.ctrOk(['images', 'ls', '-q']);
      expect(ls.stdout.split('\n')).toContain(ref);
    });

    it('runs a container end to end through io.containerd.runc.v2', async () => {
      const t = Date.now();
      const r = await cd.ctr(['run', '--rm', '--runtime', 'io.containerd.runc.v2', ref, 't1', '/bin/busybox', 'echo', 'hello']);
      timings.push(`${version} ctr run --rm (runc shim): ${Date.now() - t} ms`);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toBe('hello\n');
      // Shims exit once their task is deleted.
      await waitFor('the t1 shim to exit', async () => shimExes(cd).length === 0);
      expect(await cd.leftovers()).toEqual([]);
    });

    it('also runs the minimal image the test builds itself (used when the fixture is missing)', async () => {
      const tarPath = path.join(tmp, `minimal-${version}.tar`);
      await buildMinimalImage(tarPath, `docker.io/library/vkt-harness-minimal:${version}`);
      const minimal = await cd.importImage(tarPath);
      expect(minimal).toBe(`docker.io/library/vkt-harness-minimal:${version}`);
      const r = await cd.ctrOk(['run', '--rm', '--runtime', 'io.containerd.runc.v2', minimal, 'tmin', '/bin/sh', '-c', 'echo hello']);
      expect(r.stdout).toBe('hello\n');
    });

    it('uses the runc shim of its own containerd version (PATH order)', async () => {
      await cd.ctrOk(['run', '-d', '--runtime', 'io.containerd.runc.v2', ref, 't2', '/bin/busybox', 'sleep', '600']);
      try {
        await waitFor('t2 to run', async () => (await taskStatus(cd, 't2')) === 'RUNNING');
        const shims = shimExes(cd);
        expect(shims.length).toBeGreaterThan(0);
        for (const s of shims) expect(s.exe).toBe(path.join(path.dirname(cd.binary), 'containerd-shim-runc-v2'));
        const v = await cd.ctrOk(['tasks', 'exec', '--exec-id', 'e1', 't2', '/bin/busybox', 'echo', 'exec-ok']);
        expect(v.stdout).toBe('exec-ok\n');
      } catch (e) {
        await removeTask(cd, 't2').catch(() => undefined);
        throw e;
      }
    });

    it('keeps running tasks across restart() and kill9() + restart()', async () => {
      const pidOf = async (): Promise<string> => (await cd.ctrOk(['tasks', 'ls'])).stdout.split('\n').find((l) => l.startsWith('t2 '))!.trim().split(/\s+/)[1];
      const pid = await pidOf();
      const t = Date.now();
      await cd.restart();
      timings.push(`${version} restart: ${Date.now() - t} ms`);
      expect(await taskStatus(cd, 't2')).toBe('RUNNING');
      expect(await pidOf()).toBe(pid);
      await cd.kill9();
      expect(cd.pid).toBeUndefined();
      expect((await cd.ctr(['version'], { timeoutMs: 5000 })).code).not.toBe(0);
      await cd.restart();
      expect(await taskStatus(cd, 't2')).toBe('RUNNING');
      expect(await pidOf()).toBe(pid);
      await removeTask(cd, 't2');
      await waitFor('the t2 shim to exit', async () => shimExes(cd).length === 0);
    });

    it('stops cleanly: nothing left, temp dir removed', async () => {
      const t = Date.now();
      const found = await cd.stop();
      timings.push(`${version} stop: ${Date.now() - t} ms`);
      expect(found).toEqual([]);
      expect(await cd.leftovers()).toEqual([]);
      expect(fs.existsSync(cd.dir)).toBe(false);
      expect(fs.existsSync(`/run/containerd/runc/${cd.namespace}`)).toBe(false);
      await expect(cd.stop()).resolves.toEqual([]); // idempotent
    });
  });

  d('leak detection', () => {
    async function startLeaky(): Promise<{ cd: TestContainerd; fifoDirs: string[] }> {
      const cd = await TestContainerd.start({ version });
      const ref = await cd.importImage(imageTar);
      await cd.ctrOk(['run', '-d', '--runtime', 'io.containerd.runc.v2', ref, 'leak', '/bin/busybox', 'sleep', '600']);
      await waitFor('leak to run', async () => (await taskStatus(cd, 'leak')) === 'RUNNING');
      const live = await cd.leftovers();
      expect(live.some((l) => l.startsWith('process: ') && l.includes('containerd-shim-runc-v2'))).toBe(true);
      expect(live.some((l) => l.startsWith('mount: ') && l.includes('/leak/rootfs'))).toBe(true);
      expect(live.some((l) => l.startsWith('runc-state: ') && l.endsWith('/leak'))).toBe(true);
      const fifoDirs = live.filter((l) => l.startsWith('fifo: ')).map((l) => l.slice('fifo: '.length));
      expect(fifoDirs.length).toBe(1); // ctr run -d leaves the fifos to the task
      return { cd, fifoDirs };
    }

    it('stop() reports a task left running and deletes it through containerd', async () => {
      const { cd, fifoDirs } = await startLeaky();
      const found = await cd.stop();
      expect(found).toEqual([expect.stringMatching(/^task: leak pid \d+ RUNNING$/)]);
      expect(await cd.leftovers()).toEqual([]);
      expect(fs.existsSync(cd.dir)).toBe(false);
      for (const f of fifoDirs) expect(fs.existsSync(f)).toBe(false);
    });

    it('stop() after kill9() reports and force-cleans shim, mounts, runc state, cgroups and fifos', async () => {
      const { cd, fifoDirs } = await startLeaky();
      await cd.kill9();
      const found = await cd.stop();
      expect(found.some((l) => l.startsWith('process: ') && l.includes('containerd-shim-runc-v2'))).toBe(true);
      expect(found.some((l) => l.startsWith('mount: '))).toBe(true);
      expect(found.some((l) => l.startsWith('runc-state: '))).toBe(true);
      expect(found.some((l) => l.startsWith('fifo: '))).toBe(true);
      const sock = TestContainerd.shimSocketPath(cd.address, cd.namespace, 'leak');
      expect(found).toContain(`shim-socket: ${sock}`);
      expect(fs.existsSync(sock)).toBe(false);
      expect(await cd.leftovers()).toEqual([]);
      expect(fs.existsSync(cd.dir)).toBe(false);
      for (const f of fifoDirs) expect(fs.existsSync(f)).toBe(false);
      for (const c of ['memory', 'pids', 'cpu']) expect(fs.existsSync(`/sys/fs/cgroup/${c}/${cd.namespace}`)).toBe(false);
    });
  });
});

// ---- options ------------------------------------------------------------------------

(have['1.6'] ? describe : describe.skip)('options', () => {
  it('writes runtime entries, debug level and env PATH; CRI on demand', async () => {
    const shimDir = path.join(tmp, 'shims');
    fs.mkdirSync(shimDir, { recursive: true });
    const cd = await TestContainerd.start({
      version: '1.6',
      cri: true,
      debug: true,
      env: { PATH: shimDir, VKT_MARKER: 'x1' },
      runtimes: { vkernel: { runtimeType: 'io.containerd.vkernel.v2', options: { ConfigPath: '/etc/vkernel/config.toml' } } },
    });
    try {
      const config = fs.readFileSync(cd.configFile, 'utf8');
      expect(config).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vkernel]');
      expect(config).toContain('runtime_type = "io.containerd.vkernel.v2"');
      expect(config).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vkernel.options]');
      expect(config).toContain('ConfigPath = "/etc/vkernel/config.toml"');
      expect(cd.env.PATH.split(':').slice(0, 2)).toEqual([shimDir, '/usr/bin']);
      const environ = fs.readFileSync(`/proc/${cd.pid}/environ`, 'utf8').split('\0');
      expect(environ).toContain('VKT_MARKER=x1');
      expect(environ).toContain(`PATH=${cd.env.PATH}`);
      const plugins = await cd.ctrOk(['plugins', 'ls']);
      expect(plugins.stdout).toMatch(/io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/);
      expect(cd.log()).toMatch(/level=debug/);
    } finally {
      expect(await cd.stop()).toEqual([]);
    }
  });
});

// ---- two at once --------------------------------------------------------------------

(have['1.6'] && have['1.7'] ? describe : describe.skip)('1.6 and 1.7 side by side', () => {
  it('run at the same time without interfering', async () => {
    const [a, b] = await Promise.all([TestContainerd.start({ version: '1.6' }), TestContainerd.start({ version: '1.7' })]);
    try {
      expect(a.namespace).not.toBe(b.namespace);
      expect(a.address).not.toBe(b.address);
      expect(serverVersion((await a.ctrOk(['version'])).stdout)).toBe(a.version);
      expect(serverVersion((await b.ctrOk(['version'])).stdout)).toBe(b.version);
      const [refA, refB] = await Promise.all([a.importImage(imageTar), b.importImage(imageTar)]);
      // The same container id in both, concurrently.
      await Promise.all([
        a.ctrOk(['run', '-d', '--runtime', 'io.containerd.runc.v2', refA, 'same', '/bin/busybox', 'sleep', '600']),
        b.ctrOk(['run', '-d', '--runtime', 'io.containerd.runc.v2', refB, 'same', '/bin/busybox', 'sleep', '600']),
      ]);
      await waitFor('both to run', async () => (await taskStatus(a, 'same')) === 'RUNNING' && (await taskStatus(b, 'same')) === 'RUNNING');
      const pidA = (await a.ctrOk(['tasks', 'ls'])).stdout;
      const pidB = (await b.ctrOk(['tasks', 'ls'])).stdout;
      expect(pidA).not.toBe(pidB);
      expect((await a.ctrOk(['containers', 'ls', '-q'])).stdout.trim()).toBe('same');
      // Each instance's shims are its own version's.
      expect(shimExes(a).map((s) => s.exe)).toEqual(expect.arrayContaining(['/usr/bin/containerd-shim-runc-v2']));
      expect(shimExes(b).every((s) => s.exe === path.join(path.dirname(b.binary), 'containerd-shim-runc-v2'))).toBe(true);
      // Stopping one leaves the other working.
      await removeTask(a, 'same');
      expect(await a.stop()).toEqual([]);
      expect(await taskStatus(b, 'same')).toBe('RUNNING');
      const r = await b.ctrOk(['run', '--rm', '--runtime', 'io.containerd.runc.v2', refB, 't3', '/bin/busybox', 'echo', 'still-here']);
      expect(r.stdout).toBe('still-here\n');
      await removeTask(b, 'same');
      await waitFor('b shims to exit', async () => shimExes(b).length === 0);
    } finally {
      const [fa, fb] = await Promise.all([a.stop(), b.stop()]);
      expect(fa).toEqual([]);
      expect(fb).toEqual([]);
      expect(await a.leftovers()).toEqual([]);
      expect(await b.leftovers()).toEqual([]);
    }
  });
});
