// `vkernel containerd-config` against real containerd 1.6 and 1.7: the snippet is accepted by
// `containerd config dump` and shows up there; a containerd started with it (TestContainerd,
// snippet appended via extraConfig, CRI on) loads CRI and runs the fixture image with
// `ctr run --runtime io.containerd.vkernel.v2`; and `vkernel containerd-config` / `vkernel
// check` pointed at that containerd find its version, its config file and the shim.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'smol-toml';
import {
  containerdBinary,
  defaultFixturesDir,
  describeIf,
  OCI_TAR_NAME,
  repoRoot,
  requireFixtures,
  requirement,
  requireRoot,
  runRuntime,
  TestContainerd,
  type ContainerdVersion,
} from '../harness';
import type { CheckReport } from '../../runtime/check';

const LAUNCHER = path.join(repoRoot(), 'build', 'containerd-shim-vkernel-v2');
const RUNTIME = 'io.containerd.vkernel.v2';

const ok = requireRoot() && requireFixtures() && requirement(fs.existsSync(LAUNCHER), `${LAUNCHER} missing (run \`make all\`)`);

jest.setTimeout(120_000);

/** `vkernel containerd-config ARGS`, which must succeed. */
async function snippet(args: string[]): Promise<string> {
  const r = await runRuntime(['containerd-config', ...args], { runtime: 'vkernel' });
  if (r.code !== 0) throw new Error(`containerd-config ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function configDump(binary: string, config: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(binary, ['--config', config, 'config', 'dump'], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) || 1 : 0, stdout, stderr }),
    );
  });
}

const runtimesOf = (doc: Record<string, unknown>): Record<string, Record<string, unknown>> =>
  ((((doc.plugins as Record<string, unknown>)['io.containerd.grpc.v1.cri'] as Record<string, unknown>).containerd as Record<string, unknown>)
    .runtimes ?? {}) as Record<string, Record<string, unknown>>;

describeIf(ok).each(['1.6', '1.7'] as ContainerdVersion[])('containerd %s', (version) => {
  let tmp: string;
  let cd: TestContainerd | undefined;

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `vkt-ccfg${version.replace('.', '')}-`));
  });

  afterAll(async () => {
    if (cd) expect(await cd.stop()).toEqual([]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('containerd config dump accepts the snippet and shows the runtime', async () => {
    const base = ['version = 2', `root = ${JSON.stringify(path.join(tmp, 'root'))}`, `state = ${JSON.stringify(path.join(tmp, 'state'))}`, ''].join('\n');
    const file = path.join(tmp, 'config.toml');
    fs.writeFileSync(file, base);
    // The file has no runtimes.runc: the snippet brings it, or CRI would not load (see the next test).
    const text = await snippet(['--version', version, '--containerd-config', file, '--config-path', '/etc/vkernel/test.toml']);
    expect(text).toContain(`# runtimes.runc is included because ${file} has none`);
    fs.writeFileSync(file, base + text);
    const r = await configDump(containerdBinary(version), file);
    expect(r).toMatchObject({ code: 0 });
    const runtimes = runtimesOf(parse(r.stdout));
    expect(runtimes.vkernel).toMatchObject({
      runtime_type: RUNTIME,
      pod_annotations: ['io.vkernel.*'],
      container_annotations: ['io.vkernel.*'],
      options: { ConfigPath: '/etc/vkernel/test.toml' },
    });
    expect(runtimes.runc).toMatchObject({ runtime_type: 'io.containerd.runc.v2' });
  });

  it('a containerd started with the snippet loads CRI and runs the image with the vkernel runtime', async () => {
    const text = await snippet(['--version', version, '--containerd-config', path.join(tmp, 'none.toml')]);
    cd = await TestContainerd.start({
      version,
      cri: true,
      extraConfig: text,
      // The launcher on containerd's PATH; no shim manager, so every start takes the cold path
      // and nothing outlives the test.
      env: { PATH: path.dirname(LAUNCHER), VKERNEL_SHIM_MANAGER: 'off' },
    });
    const plugins = await cd.ctrOk(['plugins', 'ls']);
    expect(plugins.stdout).toMatch(/io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/);
    const image = await cd.importImage(path.join(defaultFixturesDir(), OCI_TAR_NAME));
    const r = await cd.ctr(['run', '--rm', '--runtime', RUNTIME, image, `ccfg-${version.replace('.', '')}`, '/bin/busybox', 'echo', 'hello']);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: 'hello\n', stderr: '' });
  });

  it('containerd-config and check pointed at it find its version, config and the shim', async () => {
    if (!cd) throw new Error('containerd did not start');
    // Its config now has runc (from the snippet), so the local snippet brings only vkernel.
    const local = await snippet(['--address', cd.address]);
    expect(local.split('\n')[0]).toBe(`# vkernel runtime for containerd ${cd.version} (containerd at ${cd.address}): add to containerd's config.toml,`);
    expect(local).not.toContain('runtimes.runc');
    const r = await runRuntime(['check', '--address', cd.address, '--format', 'json'], { runtime: 'vkernel', env: { PATH: `${path.dirname(LAUNCHER)}:${process.env.PATH}` } });
    const rows = new Map((JSON.parse(r.stdout) as CheckReport).rows.map((x) => [x.name, x]));
    expect(rows.get('containerd')).toMatchObject({ status: 'pass', detail: expect.stringContaining(`containerd ${cd.version} at ${cd.address} (pid ${cd.pid}, `) });
    expect(rows.get('containerd')!.detail).toContain(`config ${cd.configFile})`);
    const protocol = version === '1.6' ? /^ttrpc, bootstrap version 2 \(negotiated\)/ : /^grpc, bootstrap version 2 \(negotiated\)/;
    expect(rows.get('shim-protocol')).toMatchObject({ status: 'pass', detail: expect.stringMatching(protocol) });
    expect(rows.get('shim-binary')).toMatchObject({ status: 'pass', detail: `${LAUNCHER} (found on containerd's PATH)` });
    expect(rows.get('containerd-config')).toMatchObject({ status: 'pass', detail: expect.stringContaining(`${cd.configFile} (version 2): runtime vkernel`) });
  });
});
