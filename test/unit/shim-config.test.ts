// The shim's TOML config and where it comes from (runtime options of Create).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError } from '../../runtime/errors';
import { DEFAULT_SHIM_CONFIG, parseShimConfig, resolveShimConfig } from '../../shim/config';
import { encode } from '../../shim/proto';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-cfg-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

describe('parseShimConfig', () => {
  it('reads the [shim] table and keeps defaults for the rest', () => {
    const c = parseShimConfig('[runtime]\nroot = "/x"\n\n[shim]\ndebug = true\nno_pivot_root = true\noom_poll_interval_ms = 100\n', 'f');
    expect(c).toEqual({ ...DEFAULT_SHIM_CONFIG, debug: true, noPivotRoot: true, oomPollIntervalMs: 100 });
  });

  it('warns about unknown keys and refuses wrong types and bad TOML', () => {
    const warnings: string[] = [];
    parseShimConfig('[shim]\nfancy = 1\n', 'f', (m) => warnings.push(m));
    expect(warnings).toEqual(['f: shim.fancy: unknown setting, ignored']);
    expect(() => parseShimConfig('[shim]\ndebug = "yes"\n', 'f')).toThrow(InvalidArgumentError);
    expect(() => parseShimConfig('[shim]\noom_poll_interval_ms = -1\n', 'f')).toThrow('non-negative number');
    expect(() => parseShimConfig('shim = 3\n', 'f')).toThrow('must be a table');
    expect(() => parseShimConfig('[shim\n', 'f')).toThrow(/f: invalid TOML/);
  });
});

describe('resolveShimConfig', () => {
  it('uses ConfigPath from runtimeoptions.v1.Options', () => {
    const f = write('a.toml', '[shim]\nno_new_keyring = true\n');
    const r = resolveShimConfig({ type_url: 'runtimeoptions.v1.Options', value: encode('runtimeoptions.v1.Options', { config_path: f }) });
    expect(r).toEqual({ config: { ...DEFAULT_SHIM_CONFIG, noNewKeyring: true }, source: f });
  });

  it('reads config_body (containerd 1.7 sends the CRI options table) when ConfigPath is empty', () => {
    const body = Buffer.from('[shim]\ndebug = true\n');
    const r = resolveShimConfig({ type_url: 'runtimeoptions.v1.Options', value: encode('runtimeoptions.v1.Options', { config_body: body }) });
    expect(r).toEqual({ config: { ...DEFAULT_SHIM_CONFIG, debug: true }, source: 'config_body' });
  });

  it('honours runc options and tolerates unknown option types', () => {
    const runc = { type_url: 'containerd.runc.v1.Options', value: encode('containerd.runc.v1.Options', { systemd_cgroup: true, no_pivot_root: true }) };
    expect(resolveShimConfig(runc, '/nonexistent.toml').config).toMatchObject({ systemdCgroup: true, noPivotRoot: true });
    const warnings: string[] = [];
    expect(resolveShimConfig({ type_url: 'x.y.Z', value: Buffer.from([9]) }, '/nonexistent.toml', (m) => warnings.push(m)).source).toBe('defaults');
    expect(warnings[0]).toContain('x.y.Z');
  });

  it('falls back to the daemon path, and a missing default file means defaults', () => {
    const f = write('b.toml', '[shim]\nio_drain_timeout_ms = 10\n');
    expect(resolveShimConfig(null, f).config.ioDrainTimeoutMs).toBe(10);
    expect(resolveShimConfig(null, path.join(dir, 'missing.toml'))).toEqual({ config: DEFAULT_SHIM_CONFIG, source: 'defaults' });
  });

  it('refuses an explicit ConfigPath that does not exist', () => {
    const opts = { type_url: 'runtimeoptions.v1.Options', value: encode('runtimeoptions.v1.Options', { config_path: path.join(dir, 'nope.toml') }) };
    expect(() => resolveShimConfig(opts)).toThrow(InvalidArgumentError);
  });
});
