// config.json loading and validation: the invalid corpus, container ids, process.json,
// the JSON error positions, and the small mapping tables.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidArgumentError } from '../../runtime/errors';
import { CAPABILITIES, capMask, maskToHex, maskToNames } from '../../runtime/spec/capabilities';
import { defaultSpec } from '../../runtime/spec/defaults';
import { loadBundle, jsonErrorOffset } from '../../runtime/spec/load';
import { MS_BIND, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_SHARED, parseMountOptions } from '../../runtime/spec/mount-options';
import { CLONE_NEWNET, NAMESPACES, nsProcPath, typeForProcName } from '../../runtime/spec/namespaces';
import { RLIM_INFINITY, RLIMITS, rlimitValue } from '../../runtime/spec/rlimits';
import type { Spec } from '../../runtime/spec/types';
import {
  checkProcessSecurityModules,
  checkSecurityModules,
  cleanContainerPath,
  sysctlKeyToPath,
  validateContainerId,
  validateProcess,
  validateSpec,
} from '../../runtime/spec/validate';

const CORPUS = path.resolve(__dirname, '../../../test/fixtures/invalid');

interface CorpusEntry {
  field: string;
  description: string;
  stage: 'validate' | 'runtime';
  needs?: string;
  expect?: 'error' | 'contained';
}

function readIndex(): Record<string, CorpusEntry> {
  const raw = JSON.parse(fs.readFileSync(path.join(CORPUS, 'index.json'), 'utf8')) as Record<string, unknown>;
  delete raw._comment;
  return raw as Record<string, CorpusEntry>;
}

let tmp: string;
let bundle: string;

beforeAll(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vk-spec-')));
  bundle = path.join(tmp, 'bundle');
  fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
  fs.writeFileSync(path.join(bundle, 'config.json'), '{}');
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function expectInvalid(fn: () => unknown, field: string): InvalidArgumentError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  const e = caught as InvalidArgumentError;
  expect(e.message).toContain(field);
  // one line, lower-case start, no trailing period
  expect(e.message).not.toMatch(/\n/);
  expect(e.message).not.toMatch(/\.$/);
  return e;
}

function base(): Spec {
  const s = defaultSpec({});
  s.process!.terminal = false;
  return s;
}

describe('invalid config corpus', () => {
  const index = readIndex();
  const entries = Object.entries(index);

  test('index lists every file and has at least 45 validation cases', () => {
    const files = fs.readdirSync(CORPUS).filter((f) => f.endsWith('.json') && f !== 'index.json').sort();
    expect(Object.keys(index).sort()).toEqual(files);
    expect(entries.filter(([, e]) => e.stage === 'validate').length).toBeGreaterThanOrEqual(45);
    for (const [, e] of entries) {
      expect(typeof e.field).toBe('string');
      expect(e.description.length).toBeGreaterThan(0);
      expect(['validate', 'runtime']).toContain(e.stage);
    }
  });

  test.each(entries.filter(([, e]) => e.stage === 'validate'))('%s is rejected', (file, entry) => {
    const text = fs.readFileSync(path.join(CORPUS, file), 'utf8');
    fs.writeFileSync(path.join(bundle, 'config.json'), text);
    expectInvalid(() => loadBundle(bundle), entry.field);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return; // malformed JSON: only loadBundle can see it
    }
    expectInvalid(() => validateSpec(parsed, bundle), entry.field);
  });

  test.each(entries.filter(([, e]) => e.stage === 'runtime'))('%s looks valid (fails only at run time)', (file, entry) => {
    expect(entry.needs).toBeTruthy();
    expect(['error', 'contained']).toContain(entry.expect);
    const raw: unknown = JSON.parse(fs.readFileSync(path.join(CORPUS, file), 'utf8'));
    expect(() => validateSpec(raw, bundle)).not.toThrow();
  });
});

describe('validateSpec', () => {
  test('accepts runc defaults, rootful and rootless', () => {
    expect(validateSpec(defaultSpec({}), bundle)).toBeTruthy();
    expect(validateSpec(defaultSpec({ rootless: true, hostUid: 1000, hostGid: 1000 }), bundle)).toBeTruthy();
  });

  test('returns the document unchanged', () => {
    const s = base();
    const copy = structuredClone(s);
    expect(validateSpec(s, bundle)).toBe(s);
    expect(s).toEqual(copy);
  });

  test('process may be omitted when not required', () => {
    const s = base();
    delete s.process;
    expectInvalid(() => validateSpec(s, bundle), 'process');
    expect(() => validateSpec(s, bundle, { requireProcess: false })).not.toThrow();
  });

  test('namespace paths: a real namespace of the right type is accepted', () => {
    const s = base();
    s.linux!.namespaces = [{ type: 'mount' }, { type: 'uts' }, { type: 'network', path: '/proc/self/ns/net' }];
    expect(() => validateSpec(s, bundle)).not.toThrow();
    s.linux!.namespaces[2].path = path.join(bundle, 'config.json');
    expectInvalid(() => validateSpec(s, bundle), 'linux.namespaces[2].path');
  });

  test('net sysctls need a network namespace that is not ours', () => {
    const s = base();
    s.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'net/ipv4/conf/all/forwarding': '1' };
    expect(() => validateSpec(s, bundle)).not.toThrow();
    s.linux!.namespaces = [{ type: 'mount' }, { type: 'uts' }, { type: 'network', path: '/proc/self/ns/net' }];
    expectInvalid(() => validateSpec(s, bundle), 'linux.sysctl["net.ipv4.ip_forward"]');
  });

  test('namespaced sysctls', () => {
    const s = base();
    s.linux!.sysctl = { 'kernel.shmmax': '100', 'fs.mqueue.msg_max': '10', 'kernel.domainname': 'x' };
    expect(() => validateSpec(s, bundle)).not.toThrow();
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'uts');
    delete s.hostname;
    expectInvalid(() => validateSpec(s, bundle), 'linux.sysctl["kernel.domainname"]');
  });

  test('user namespace: mapped ids pass, joining by path needs no mappings', () => {
    const s = base();
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.process!.user.additionalGids = [5, 65535];
    expect(() => validateSpec(s, bundle)).not.toThrow();
    s.process!.user.additionalGids = [65536];
    expectInvalid(() => validateSpec(s, bundle), 'process.user.additionalGids[0]');
    const j = base();
    j.linux!.namespaces!.push({ type: 'user', path: '/proc/self/ns/user' });
    expect(() => validateSpec(j, bundle)).not.toThrow();
  });

  test('mount destinations are cleaned; .. inside the root is fine', () => {
    const s = base();
    s.mounts!.push({ destination: '/a/../tmp/./x//', type: 'tmpfs', source: 'tmpfs' });
    expect(() => validateSpec(s, bundle)).not.toThrow();
  });

  test('bind sources resolve against the bundle', () => {
    const s = base();
    s.mounts!.push({ destination: '/cfg', source: 'config.json', options: ['bind', 'ro'] });
    expect(() => validateSpec(s, bundle)).not.toThrow();
    s.mounts![7].source = 'nope';
    expectInvalid(() => validateSpec(s, bundle), 'mounts[7].source');
  });

  test('lxcfs-style /proc files may be bind-mounted, proc itself may be rebound', () => {
    const s = base();
    s.mounts!.push({ destination: '/proc/meminfo', source: '/proc/meminfo', options: ['bind'] });
    s.mounts!.push({ destination: '/proc', source: '/proc', options: ['rbind'] });
    expect(() => validateSpec(s, bundle)).not.toThrow();
  });

  test('remount-only mounts need no type', () => {
    const s = base();
    s.mounts!.push({ destination: '/sys', options: ['remount', 'ro'] });
    expect(() => validateSpec(s, bundle)).not.toThrow();
  });

  test('rlimit values: RLIM_INFINITY is accepted', () => {
    const s = base();
    s.process!.rlimits = [{ type: 'RLIMIT_CORE', soft: 18446744073709551615, hard: 18446744073709551615 }];
    expect(() => validateSpec(s, bundle)).not.toThrow();
  });

  test('devices: p needs no numbers, u is allowed', () => {
    const s = base();
    s.linux!.devices = [
      { path: '/dev/fifo0', type: 'p' },
      { path: '/dev/ttyX', type: 'u', major: 4, minor: 64, fileMode: 0o20620, uid: 0, gid: 5 },
    ];
    expect(() => validateSpec(s, bundle)).not.toThrow();
  });

  test('cgroupsPath shapes', () => {
    for (const ok of ['/vkernel/c1', 'relative/path', 'system.slice:vkernel:c1', ':vkernel:c1']) {
      const s = base();
      s.linux!.cgroupsPath = ok;
      expect(() => validateSpec(s, bundle)).not.toThrow();
    }
    for (const bad of ['a:b:c:d', 'system.slice:x:', 'notaslice:x:y']) {
      const s = base();
      s.linux!.cgroupsPath = bad;
      expectInvalid(() => validateSpec(s, bundle), 'linux.cgroupsPath');
    }
  });

  test('seccomp shape', () => {
    const s = base();
    s.linux!.seccomp = {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64'],
      flags: ['SECCOMP_FILTER_FLAG_LOG'],
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }],
    };
    expect(() => validateSpec(s, bundle)).not.toThrow();
    s.linux!.seccomp.syscalls![0].args![0].op = 'SCMP_CMP_FOO';
    expectInvalid(() => validateSpec(s, bundle), 'linux.seccomp.syscalls[0].args[0].op');
  });

  test('long values are shortened in messages', () => {
    const s = base();
    s.process!.args = ['x'.repeat(500) as string];
    (s.process as unknown as Record<string, unknown>).cwd = 'relative/' + 'y'.repeat(500);
    const e = expectInvalid(() => validateSpec(s, bundle), 'process.cwd');
    expect(e.message.length).toBeLessThan(200);
    expect(e.field).toBe('process.cwd');
  });
});

describe('security modules', () => {
  const none = { apparmor: false, selinux: false };

  test('apparmor and selinux requests fail on a host without them, naming the field and value', () => {
    const s = base();
    expect(() => checkSecurityModules(s, none)).not.toThrow();
    s.process!.apparmorProfile = 'docker-default';
    let e = expectInvalid(() => checkSecurityModules(s, none), 'process.apparmorProfile');
    expect(e.message).toBe('process.apparmorProfile: apparmor is not enabled on this host (got "docker-default")');
    expect(() => checkSecurityModules(s, { apparmor: true, selinux: false })).not.toThrow();
    delete s.process!.apparmorProfile;
    s.process!.selinuxLabel = 'system_u:system_r:container_t:s0:c1,c2';
    e = expectInvalid(() => checkSecurityModules(s, { apparmor: true, selinux: false }), 'process.selinuxLabel');
    expect(e.message).toBe('process.selinuxLabel: selinux is not enabled on this host (got "system_u:system_r:container_t:s0:c1,c2")');
    expect(() => checkSecurityModules(s, { apparmor: false, selinux: true })).not.toThrow();
    // validation itself accepts them: create and exec check the host
    expect(() => validateSpec(s, bundle)).not.toThrow();
  });

  test('empty strings ask for nothing', () => {
    const s = base();
    s.process!.apparmorProfile = '';
    s.process!.selinuxLabel = '';
    s.linux!.mountLabel = '';
    expect(() => checkSecurityModules(s, none)).not.toThrow();
  });

  test('exec processes: the field is named under the given prefix', () => {
    const p = base().process!;
    p.apparmorProfile = 'unconfined-not';
    expectInvalid(() => checkProcessSecurityModules(p, 'process', none), 'process.apparmorProfile');
  });

  test('linux.mountLabel: refused without selinux (runc 1.1 fails its first tmpfs mount), quotes refused with it', () => {
    const s = base();
    s.linux!.mountLabel = 'system_u:object_r:container_file_t:s0';
    const e = expectInvalid(() => checkSecurityModules(s, none), 'linux.mountLabel');
    expect(e.message).toBe('linux.mountLabel: selinux is not enabled on this host (got "system_u:object_r:container_file_t:s0")');
    expect(() => checkSecurityModules(s, { apparmor: true, selinux: false })).toThrow(InvalidArgumentError);
    expect(() => checkSecurityModules(s, { apparmor: false, selinux: true })).not.toThrow();
    s.linux!.mountLabel = 'system_u:object_r:x_t:s0" ,size=1';
    expectInvalid(() => checkSecurityModules(s, { apparmor: false, selinux: true }), 'linux.mountLabel');
  });
});

describe('validateContainerId', () => {
  test.each(['a', 'abc-123_x.y+z', 'A.B', '...', 'x'.repeat(1024)])('accepts %s', (id) => {
    expect(() => validateContainerId(id)).not.toThrow();
  });
  test.each([
    ['', 'container id cannot be empty'],
    ['.', 'invalid container ID format'],
    ['..', 'invalid container ID format'],
    ['a/b', 'invalid container ID format: "a/b"'],
    ['a b', 'invalid container ID format'],
    ['ä', 'invalid container ID format'],
    ['x'.repeat(1025), 'limit is 1024'],
  ])('rejects %j', (id, msg) => {
    expect(() => validateContainerId(id)).toThrow(InvalidArgumentError);
    expect(() => validateContainerId(id)).toThrow(msg);
  });
});

describe('validateProcess', () => {
  test('accepts the default process and names the given field', () => {
    const p = defaultSpec({}).process!;
    expect(validateProcess(p)).toBe(p);
    expectInvalid(() => validateProcess({ ...p, cwd: 'x' }), 'process.cwd');
    expectInvalid(() => validateProcess({ ...p, args: [] }, 'exec.process'), 'exec.process.args');
    expectInvalid(() => validateProcess('nope', 'process'), 'process');
  });
});

describe('loadBundle', () => {
  test('missing bundle directory', () => {
    expectInvalid(() => loadBundle(path.join(tmp, 'nope')), 'bundle');
  });

  test('missing config.json', () => {
    const dir = path.join(tmp, 'empty');
    fs.mkdirSync(dir, { recursive: true });
    const e = expectInvalid(() => loadBundle(dir), 'config.json');
    expect(e.message).toContain('does not exist');
  });

  test('invalid JSON says where', () => {
    const dir = path.join(tmp, 'badjson');
    fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), '{\n  "ociVersion": "1.0.2",\n  "root": {"path": "rootfs",}\n}\n');
    const e = expectInvalid(() => loadBundle(dir), 'config.json');
    expect(e.message).toContain('line 3, column 29');
    fs.writeFileSync(path.join(dir, 'config.json'), '{"a": tru}');
    expect(() => loadBundle(dir)).toThrow('line 1, column 7');
    fs.writeFileSync(path.join(dir, 'config.json'), '');
    expect(() => loadBundle(dir)).toThrow('end of input');
  });

  test('returns the real bundle path and the spec', () => {
    const dir = path.join(tmp, 'good');
    fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(defaultSpec({})));
    fs.symlinkSync(dir, path.join(tmp, 'link'));
    const { bundle: b, spec } = loadBundle(path.join(tmp, 'link'));
    expect(b).toBe(dir);
    expect(spec.ociVersion).toBe('1.0.2-dev');
  });

  test('jsonErrorOffset', () => {
    expect(jsonErrorOffset('{"a": }')).toBe(6);
    expect(jsonErrorOffset('[1,]')).toBe(3);
    expect(jsonErrorOffset('{} x')).toBe(3);
    expect(jsonErrorOffset('"\\q"')).toBe(2);
  });
});

describe('mapping tables', () => {
  test('capabilities', () => {
    expect(CAPABILITIES.CAP_CHECKPOINT_RESTORE).toBe(40);
    expect(Object.keys(CAPABILITIES)).toHaveLength(41);
    // runc's default set, as /proc/self/status shows it in a runc container
    expect(maskToHex(capMask(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']))).toBe('0000000020000420');
    expect(maskToHex(capMask(Object.keys(CAPABILITIES), 40))).toBe('000001ffffffffff');
    expect(maskToHex(capMask(Object.keys(CAPABILITIES), 37))).toBe('0000003fffffffff');
    expect(maskToNames(capMask(['CAP_KILL', 'CAP_CHOWN']))).toEqual(['CAP_CHOWN', 'CAP_KILL']);
  });

  test('rlimits', () => {
    expect(RLIMITS.RLIMIT_NOFILE).toBe(7);
    expect(RLIMITS.RLIMIT_RTTIME).toBe(15);
    expect(rlimitValue(1024)).toBe('1024');
    expect(rlimitValue(18446744073709551615)).toBe(RLIM_INFINITY);
  });

  test('namespaces', () => {
    expect(NAMESPACES.network.flag).toBe(CLONE_NEWNET);
    expect(nsProcPath(42, 'mount')).toBe('/proc/42/ns/mnt');
    expect(typeForProcName('net')).toBe('network');
  });

  test('mount options', () => {
    const m = parseMountOptions(['nosuid', 'ro', 'rw', 'noexec', 'rshared', 'private', 'mode=755', 'defaults', 'size=1m']);
    expect(m.flags).toBe(MS_NOSUID | MS_NOEXEC);
    expect(m.clearFlags).toBe(MS_RDONLY);
    expect(m.propagation).toEqual([MS_SHARED | MS_REC, MS_PRIVATE]);
    expect(m.data).toBe('mode=755,size=1m');
    expect(parseMountOptions(['rbind', 'ro']).flags).toBe(MS_BIND | MS_REC | MS_RDONLY);
    expect(parseMountOptions(undefined)).toEqual({ flags: 0, clearFlags: 0, propagation: [], data: '' });
    expect(() => parseMountOptions(['tmpcopyup'], 'mounts[3].options')).toThrow('mounts[3].options[0]');
    expect(() => parseMountOptions(['bind', 'ridmap'], 'o')).toThrow(InvalidArgumentError);
  });

  test('paths and sysctl keys', () => {
    expect(cleanContainerPath('/a/./b//c/../d/')).toBe('/a/b/d');
    expect(cleanContainerPath('/..')).toBeUndefined();
    expect(cleanContainerPath('/a/../../b')).toBeUndefined();
    expect(sysctlKeyToPath('net.ipv4.ip_forward')).toBe('net/ipv4/ip_forward');
    expect(sysctlKeyToPath('net/ipv4/conf/eno2.100/rp_filter')).toBe('net/ipv4/conf/eno2.100/rp_filter');
    expect(sysctlKeyToPath('net.ipv4.conf.eno2/100.rp_filter')).toBe('net/ipv4/conf/eno2.100/rp_filter');
  });
});
