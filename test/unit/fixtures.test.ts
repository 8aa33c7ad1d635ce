// The fixture builder is reproducible and incremental. Uses a stand-in for build/vktest so
// it runs without `make native` (only /bin/busybox from busybox-static is needed).

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tar from 'tar-stream';
import { buildFixtures, FIXED_MTIME, IMAGE_NAME, MEDIA_TYPES, OCI_TAR_NAME, sha256 } from '../fixtures/image';
import { parseArgs } from '../fixtures/build-image';

const busybox = '/bin/busybox';
const haveBusybox = fs.existsSync(busybox);
if (!haveBusybox && process.env.CI === 'true') throw new Error('/bin/busybox (busybox-static) is required in CI');
const describeIf = haveBusybox ? describe : describe.skip;

async function untar(buf: Buffer): Promise<Map<string, { header: tar.Headers; data: Buffer }>> {
  const out = new Map<string, { header: tar.Headers; data: Buffer }>();
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        out.set(header.name, { header, data: Buffer.concat(chunks) });
        next();
      });
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(buf);
  await done;
  return out;
}

describeIf('test fixtures image builder', () => {
  let tmp: string;
  let vktest: string;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-fixtures-unit-'));
    vktest = path.join(tmp, 'fake-vktest');
    fs.writeFileSync(vktest, '#!/bin/sh\necho stand-in for vktest\n');
  });

  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('builds byte-identical OCI tarballs into two dirs', async () => {
    const a = await buildFixtures({ outDir: path.join(tmp, 'a'), busybox, vktest });
    // Different time, different file mtimes of the inputs: must not matter.
    await new Promise((r) => setTimeout(r, 1100));
    fs.utimesSync(vktest, new Date(), new Date());
    const b = await buildFixtures({ outDir: path.join(tmp, 'b'), busybox, vktest });
    expect(a.rebuilt).toBe(true);
    expect(b.rebuilt).toBe(true);
    const ta = fs.readFileSync(a.ociTar);
    const tb = fs.readFileSync(b.ociTar);
    expect(ta.length).toBeGreaterThan(0);
    expect(sha256(ta)).toBe(sha256(tb));
    expect(Buffer.compare(ta, tb)).toBe(0);
    expect(a.manifestDigest).toBe(b.manifestDigest);
  });

  it('skips the build when inputs are unchanged and rebuilds when they change', async () => {
    const outDir = path.join(tmp, 'incr');
    expect((await buildFixtures({ outDir, busybox, vktest })).rebuilt).toBe(true);
    const tarPath = path.join(outDir, OCI_TAR_NAME);
    const mtime = fs.statSync(tarPath).mtimeMs;
    expect((await buildFixtures({ outDir, busybox, vktest })).rebuilt).toBe(false);
    expect(fs.statSync(tarPath).mtimeMs).toBe(mtime);
    expect((await buildFixtures({ outDir, busybox, vktest, force: true })).rebuilt).toBe(true);

    const changed = path.join(tmp, 'fake-vktest-2');
    fs.writeFileSync(changed, '#!/bin/sh\necho changed\n');
    const r = await buildFixtures({ outDir, busybox, vktest: changed });
    expect(r.rebuilt).toBe(true);
    expect(fs.readFileSync(path.join(r.rootfs, 'vktest'), 'utf8')).toContain('changed');

    // A damaged output is rebuilt too.
    fs.writeFileSync(tarPath, 'junk');
    expect((await buildFixtures({ outDir, busybox, vktest: changed })).rebuilt).toBe(true);
  });

  it('writes a valid OCI image layout', async () => {
    const r = await buildFixtures({ outDir: path.join(tmp, 'a'), busybox, vktest });
    const files = await untar(fs.readFileSync(r.ociTar));
    expect([...files.keys()]).toEqual([...files.keys()].sort());
    expect(JSON.parse(files.get('oci-layout')!.data.toString())).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(files.get('index.json')!.data.toString());
    expect(index.manifests).toHaveLength(1);
    const desc = index.manifests[0];
    expect(desc.annotations).toEqual({
      'io.containerd.image.name': IMAGE_NAME,
      'org.opencontainers.image.ref.name': IMAGE_NAME,
    });
    const blob = (digest: string): Buffer => {
      const f = files.get(`blobs/sha256/${digest.replace('sha256:', '')}`);
      if (!f) throw new Error(`missing blob ${digest}`);
      expect(`sha256:${sha256(f.data)}`).toBe(digest);
      return f.data;
    };
    const manifest = JSON.parse(blob(desc.digest).toString());
    expect(manifest.config.mediaType).toBe(MEDIA_TYPES.config);
    const config = JSON.parse(blob(manifest.config.digest).toString());
    expect(config).toMatchObject({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] } });
    expect(config.config.Env[0]).toMatch(/^PATH=/);
    const layerGz = blob(manifest.layers[0].digest);
    const layer = (await import('zlib')).gunzipSync(layerGz);
    expect(config.rootfs.diff_ids).toEqual([`sha256:${sha256(layer)}`]);

    const entries = await untar(layer);
    const names = [...entries.keys()];
    expect(names).toEqual([...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    for (const e of entries.values()) {
      expect(e.header.mtime?.getTime()).toBe(FIXED_MTIME.getTime());
    }
    expect(entries.get('bin/busybox')!.data.equals(fs.readFileSync(busybox))).toBe(true);
    expect(entries.get('vktest')!.header.mode).toBe(0o755);
    expect(entries.get('tmp/')!.header.mode).toBe(0o1777);
    expect(entries.get('bin/sh')!.header).toMatchObject({ type: 'symlink', linkname: '/bin/busybox' });
    expect(entries.get('home/user/')!.header).toMatchObject({ uid: 1000, gid: 1000 });
    for (const f of ['etc/passwd', 'etc/group', 'etc/hostname', 'etc/resolv.conf']) expect(entries.has(f)).toBe(true);
    expect(entries.get('etc/passwd')!.data.toString()).toMatch(/^nobody:x:65534:/m);
  });

  it('materializes the same rootfs on disk', async () => {
    const r = await buildFixtures({ outDir: path.join(tmp, 'a'), busybox, vktest });
    const st = fs.statSync(path.join(r.rootfs, 'tmp'));
    expect(st.mode & 0o7777).toBe(0o1777);
    expect(fs.readlinkSync(path.join(r.rootfs, 'bin', 'sh'))).toBe('/bin/busybox');
    expect(fs.statSync(path.join(r.rootfs, 'vktest')).mtime.getTime()).toBe(FIXED_MTIME.getTime());
    for (const d of ['proc', 'sys', 'dev', 'root', 'var', 'run']) expect(fs.readdirSync(path.join(r.rootfs, d))).toEqual([]);
  });

  it('parses CLI arguments', () => {
    expect(parseArgs(['--out', 'x', '--force'])).toEqual({ outDir: path.resolve('x'), force: true });
    expect(parseArgs(['--vktest=/a/b'])).toEqual({ vktest: '/a/b' });
    expect(() => parseArgs(['--bogus'])).toThrow(/unknown argument/);
    expect(() => parseArgs(['--out'])).toThrow(/needs a value/);
  });
});
