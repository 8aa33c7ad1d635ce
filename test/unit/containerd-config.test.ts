// `vkernel containerd-config` (runtime/check/containerd-config.ts): the snippet per containerd
// version parses back to the runtime entry at the right table, the header says which shim
// protocol that containerd gets, --version is validated, and the shim config example reads
// back as the shim's defaults. Real containerd 1.6/1.7 loading the snippets:
// test/integration/containerd-config.test.ts. The snippets docs/containerd.md shows for 1.6,
// 1.7 and 2.x are what the CLI prints for those versions.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'smol-toml';
import {
  containerdSnippet,
  familyOf,
  localContainerdVersion,
  localSnippet,
  needsDefaultRuntime,
  parseVersionFlag,
  runtimeEntry,
  shimConfigExample,
  type CheckProbe,
} from '../../runtime/check';
import { InvalidArgumentError, UnavailableError } from '../../runtime/errors';
import { parseContainerdVersion } from '../../shim/bootstrap/negotiate';
import { DEFAULT_SHIM_CONFIG, parseShimConfig } from '../../shim/config';
import { repoRoot } from '../fixtures/image';

const v = (text: string) => parseContainerdVersion(text)!;
const at = (doc: Record<string, unknown>, keys: string[]): unknown => keys.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], doc);

describe('containerd snippet', () => {
  it.each([
    ['1.6.20~ds1', 'io.containerd.grpc.v1.cri', 2, 'ttrpc'],
    ['1.7.24', 'io.containerd.grpc.v1.cri', 2, 'grpc'],
    ['2.0.0', 'io.containerd.cri.v1.runtime', 3, 'ttrpc'],
    ['v2.3.1', 'io.containerd.cri.v1.runtime', 3, 'ttrpc'],
  ])('containerd %s: plugins."%s" (config version %i), shim protocol %s', (version, plugin, configVersion, protocol) => {
    const text = containerdSnippet({ containerd: v(version) });
    const doc = parse(text);
    expect(at(doc, ['plugins', plugin, 'containerd', 'runtimes', 'vkernel'])).toEqual({
      runtime_type: 'io.containerd.vkernel.v2',
      pod_annotations: ['io.vkernel.*'],
      container_annotations: ['io.vkernel.*'],
      options: { ConfigPath: '/etc/vkernel/config.toml' },
    });
    // Only the runtime's tables: the snippet can be appended to an existing config.
    expect(text.split('\n').filter((l) => l.startsWith('['))).toEqual([
      `[plugins."${plugin}".containerd.runtimes.vkernel]`,
      `[plugins."${plugin}".containerd.runtimes.vkernel.options]`,
    ]);
    expect(text).toContain(`# which must say version = ${configVersion} at the top`);
    expect(text).toContain(`# shim protocol: ${protocol} (negotiated); see docs/protocol.md`);
  });

  it('uses --config-path and names where the version came from', () => {
    const text = containerdSnippet({ containerd: v('1.7.24'), configPath: '/srv/vk.toml', source: 'containerd at /run/c.sock' });
    expect(runtimeEntry('/srv/vk.toml')).toMatchObject({ options: { ConfigPath: '/srv/vk.toml' } });
    expect(at(parse(text), ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes', 'vkernel', 'options'])).toEqual({ ConfigPath: '/srv/vk.toml' });
    expect(text.split('\n')[0]).toBe("# vkernel runtime for containerd 1.7.24 (containerd at /run/c.sock): add to containerd's config.toml,");
  });

  it('--protocol: a forced protocol is explained, and warned about where containerd cannot honour it', () => {
    const on16 = containerdSnippet({ containerd: v('1.6.20'), protocol: 'grpc' });
    expect(on16).toContain('# shim protocol: ttrpc (negotiated)');
    expect(on16).toMatch(/# warning: gRPC forced by shim config \[shim\] protocol is ignored: containerd 1\.6\.20 speaks only ttrpc/);
    const on17 = containerdSnippet({ containerd: v('1.7.24'), protocol: 'ttrpc' });
    expect(on17).toContain('# shim protocol: ttrpc (forced)');
    expect(on17).toContain('[shim] protocol = "ttrpc"');
    expect(containerdSnippet({ containerd: v('1.7.24'), protocol: 'auto' })).toContain('# shim protocol: grpc (negotiated)');
  });
});

describe('runc next to vkernel', () => {
  // A runtimes table in the file replaces containerd's built-in one; CRI needs default_runtime_name's entry.
  it.each([
    [undefined, true],
    ['version = 2\n', true],
    ['not toml = = 1', true],
    ['version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n', false],
    ['version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n', false],
    ['version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\ndefault_runtime_name = "crun"\n', false],
  ])('config %j needs runc: %s', (text, needed) => {
    expect(needsDefaultRuntime(text)).toBe(needed);
  });

  it('the snippet then carries runc and says why', () => {
    const text = containerdSnippet({ containerd: v('1.6.20'), addDefaultRuntime: '/etc/containerd/config.toml' });
    expect(at(parse(text), ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes', 'runc'])).toEqual({ runtime_type: 'io.containerd.runc.v2' });
    expect(text).toContain('# runtimes.runc is included because /etc/containerd/config.toml has none');
  });

  it("localSnippet reads the running containerd's config file", async () => {
    const files: Record<string, string> = { '/x/config.toml': 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n' };
    const probe = {
      readFile: (f: string) => files[f],
      containerdProcess: () => ({ pid: 1, exe: '/usr/bin/containerd', path: '', configFile: '/x/config.toml' }),
    } as unknown as CheckProbe;
    const withRunc = await localSnippet({ version: '1.7', address: '/nowhere.sock' }, probe);
    expect(withRunc).not.toContain('runtimes.runc');
    const explicit = await localSnippet({ version: '1.7', address: '/nowhere.sock', containerdConfig: '/y/missing.toml' }, probe);
    expect(explicit).toContain('# runtimes.runc is included because /y/missing.toml has none');
  });
});

describe('--version', () => {
  it.each(['1.6', '1.7', '1.7.24', 'v2.1', '2.3.0'])('%s is accepted', (text) => {
    expect(parseVersionFlag(text).text).toBe(text);
  });

  it.each([
    ['abc', '--version: must be MAJOR.MINOR, e.g. 1.7 (got "abc")'],
    ['1', '--version: must be MAJOR.MINOR, e.g. 1.7 (got "1")'],
    ['1.7.x', '--version: must be MAJOR.MINOR, e.g. 1.7 (got "1.7.x")'],
    ['1.5', '--version: containerd 1.5 is not supported (1.6, 1.7 or 2.x) (got "1.5")'],
    ['3.0', '--version: containerd 3.0 is not supported (1.6, 1.7 or 2.x) (got "3.0")'],
  ])('%s is refused: %s', (text, message) => {
    let err: unknown;
    try {
      parseVersionFlag(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ message, field: 'version' });
  });
});

describe('the local containerd', () => {
  const nowhere = '/nonexistent/vkt-containerd.sock';

  it('falls back to the installed binary when none answers', async () => {
    await expect(localContainerdVersion(nowhere, () => '1.6.20~ds1')).resolves.toMatchObject({ version: { major: 1, minor: 6 }, source: 'containerd --version' });
  });

  it('neither: an error that says to pass --version', async () => {
    const err = await localContainerdVersion(nowhere, () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/pass --version$/);
  });
});

describe('shim config example', () => {
  it('reads back as the defaults, with no unknown keys', () => {
    const warnings: string[] = [];
    expect(parseShimConfig(shimConfigExample(), 'example', (m) => warnings.push(m))).toEqual(DEFAULT_SHIM_CONFIG);
    expect(warnings).toEqual([]);
    // Every setting the shim knows is in the example: a new one needs a line in SHIM_KEYS
    // (runtime/check/containerd-config.ts), since shim/config.ts keeps its key table private.
    const keys = Object.keys((parse(shimConfigExample()).shim as Record<string, unknown>) ?? {});
    expect(keys).toHaveLength(Object.keys(DEFAULT_SHIM_CONFIG).length);
  });

  it('--protocol sets [shim] protocol', () => {
    expect(parseShimConfig(shimConfigExample('ttrpc'), 'example').protocol).toBe('ttrpc');
    expect(shimConfigExample('ttrpc').split('\n')[0]).toContain('protocol = "ttrpc"');
  });
});

describe('docs/containerd.md', () => {
  const DOC = path.join(repoRoot(), 'docs', 'containerd.md');
  const CLI = path.join(repoRoot(), 'dist', 'cmd', 'vkernel.js');
  /** The config file the doc's snippets were printed for: one without a runc entry. */
  const DOC_CONFIG = '/etc/containerd/config.toml';

  /** `### containerd <family> …` sections: the version the section's command names, and its toml block. */
  function docSnippets(): { family: string; version: string; block: string }[] {
    const text = fs.readFileSync(DOC, 'utf8');
    return [...text.matchAll(/^### containerd (\S+) \(config `version = \d`\)\n([\s\S]*?)(?=^##)/gm)].map((m) => {
      const version = /`vkernel containerd-config --version ([\d.]+)`/.exec(m[2])?.[1] ?? '';
      const block = /^```toml\n([\s\S]*?)^```$/m.exec(m[2])?.[1] ?? '';
      return { family: m[1], version, block };
    });
  }

  /** What `vkernel containerd-config --version <v>` prints for a containerd config without runc. */
  function cliSnippet(version: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-ccfg-'));
    try {
      const missing = path.join(dir, 'config.toml');
      const r = spawnSync(process.execPath, [CLI, 'containerd-config', '--version', version, '--containerd-config', missing], { encoding: 'utf8', timeout: 30_000 });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
      return r.stdout.split(missing).join(DOC_CONFIG);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it('has a snippet for 1.6, 1.7 and 2.x, each printed for a version of its family', () => {
    const found = docSnippets();
    expect(found.map((s) => s.family)).toEqual(['1.6', '1.7', '2.x']);
    for (const s of found) {
      expect(s.block).not.toBe('');
      expect(familyOf(v(s.version))).toBe(s.family);
    }
  });

  it.each(['1.6', '1.7', '2.x'])('the %s snippet is what vkernel containerd-config prints for that version', (family) => {
    const s = docSnippets().find((x) => x.family === family)!;
    expect(s.block).toBe(cliSnippet(s.version));
  });

  it('every 2.x containerd gets the 2.x snippet (the version in the header aside)', () => {
    const s = docSnippets().find((x) => x.family === '2.x')!;
    for (const version of ['2.1', '2.2', '2.3']) expect(cliSnippet(version).split(`containerd ${version} `).join(`containerd ${s.version} `)).toBe(s.block);
  });
});
