// defaultSpec must match `runc spec` / `runc spec --rootless` (runc 1.1) byte for byte.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultSpec, DEFAULT_OCI_VERSION } from '../../runtime/spec/defaults';

function runcSpec(rootless: boolean): string | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vk-runcspec-'));
  try {
    execFileSync('runc', ['spec', ...(rootless ? ['--rootless'] : [])], { cwd: dir, stdio: 'ignore' });
    return fs.readFileSync(path.join(dir, 'config.json'), 'utf8');
  } catch {
    return undefined; // runc not installed
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('defaultSpec', () => {
  test('runc 1.1 defaults', () => {
    const s = defaultSpec({});
    expect(s.ociVersion).toBe(DEFAULT_OCI_VERSION);
    expect(s.ociVersion).toBe('1.0.2-dev');
    expect(s.process!.args).toEqual(['sh']);
    expect(s.process!.terminal).toBe(true);
    expect(s.process!.capabilities!.bounding).toEqual(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
    expect(s.process!.capabilities!.inheritable).toBeUndefined();
    expect(s.process!.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }]);
    expect(s.root).toEqual({ path: 'rootfs', readonly: true });
    expect(s.hostname).toBe('runc');
    expect(s.mounts!.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
    expect(s.linux!.namespaces!.map((n) => n.type)).toEqual(['pid', 'network', 'ipc', 'uts', 'mount']);
    expect(s.linux!.resources).toEqual({ devices: [{ allow: false, access: 'rwm' }] });
    expect(s.linux!.maskedPaths).toHaveLength(10);
    expect(s.linux!.readonlyPaths).toHaveLength(5);
  });

  test('rootless defaults', () => {
    const s = defaultSpec({ rootless: true, hostUid: 1000, hostGid: 100 });
    expect(s.linux!.namespaces!.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount', 'user']);
    expect(s.linux!.uidMappings).toEqual([{ containerID: 0, hostID: 1000, size: 1 }]);
    expect(s.linux!.gidMappings).toEqual([{ containerID: 0, hostID: 100, size: 1 }]);
    expect(s.linux!.resources).toBeUndefined();
    expect(s.mounts![2].options).not.toContain('gid=5');
    expect(s.mounts![5]).toEqual({ destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
    const me = defaultSpec({ rootless: true });
    expect(me.linux!.uidMappings![0].hostID).toBe(process.geteuid!());
  });

  test('every call returns a fresh object', () => {
    const a = defaultSpec({});
    a.process!.args!.push('x');
    a.mounts!.pop();
    expect(defaultSpec({}).process!.args).toEqual(['sh']);
    expect(defaultSpec({}).mounts).toHaveLength(7);
  });

  test.each([false, true])('matches `runc spec` output byte for byte (rootless=%s)', (rootless) => {
    const want = runcSpec(rootless);
    if (want === undefined) {
      console.warn('runc not found; skipping the byte comparison');
      return;
    }
    expect(JSON.stringify(defaultSpec({ rootless }), null, '\t')).toBe(want.replace(/\n$/, ''));
  });
});
