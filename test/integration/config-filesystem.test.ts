// config.json root, mounts, linux.rootfsPropagation, linux.devices (and the default /dev),
// linux.maskedPaths and linux.readonlyPaths: each mutated on the base spec and observed
// from inside the container with /vktest (mountinfo, stat, ls, tryopen). Passes on
// vkernel and on runc (RUNTIME=runc); differences are per-runtime assertions recorded in
// docs/runc-differences.md.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Mount } from '../../runtime/spec/types';
import {
  Bundle,
  cleanupRuntimeRoot,
  describeIf,
  MountInfo,
  parseErrno,
  parseKeyValues,
  parseLines,
  parseMountinfo,
  requireFixtures,
  requireRoot,
  requireRuntime,
  runRuntime,
  runRuntimeOk,
  runtimeName,
  vktest,
  withLeakCheck,
} from '../harness';
import { bundleFor, execFileP, FieldCase, hostDir, hostTmpfs, hostUnmountAll, putFile, runCase, runDetached } from './helpers/oci';

const ok = requireRoot() && requireFixtures() && requireRuntime();

/** The mountinfo lines in a case's output (other payload output may be mixed in). */
function mounts(r: { stdout: string }): MountInfo[] {
  return parseMountinfo(
    r.stdout
      .split('\n')
      .filter((l) => /^\d+ \d+ \d+:\d+ /.test(l))
      .join('\n'),
  );
}

function mountAt(r: { stdout: string }, mountPoint: string): MountInfo {
  const all = mounts(r).filter((m) => m.mountPoint === mountPoint);
  if (all.length === 0) throw new Error(`no mount at ${mountPoint} in:\n${r.stdout}`);
  return all[all.length - 1]; // the top one
}

function hasMount(r: { stdout: string }, mountPoint: string): boolean {
  return mounts(r).some((m) => m.mountPoint === mountPoint);
}

/** Propagation fields only (shared:N, master:N, propagate_from:N, unbindable) without numbers. */
function propagation(m: MountInfo): string[] {
  return m.optionalFields.map((f) => f.replace(/:\d+$/, '')).sort();
}

function addMount(b: Bundle, m: Mount): void {
  b.spec.mounts!.push(m);
}

const errnoOf = (r: { stdout: string }): string => parseErrno(r.stdout).errname;

/** The source for propagation cases: a tmpfs that is shared on the host. */
const SHARED_SRC = 'shared-src';
/** bundle id → the host peer group (shared:N) of its shared source. */
const hostPeerGroups = new Map<string, string>();
async function sharedSource(b: Bundle): Promise<void> {
  await hostTmpfs(path.join(b.dir, SHARED_SRC));
  await execFileP('mount', ['--make-shared', path.join(b.dir, SHARED_SRC)]);
  hostPeerGroups.set(b.id, hostPeerGroup(path.join(b.dir, SHARED_SRC)));
}

const propagationCases: [string, string[], (p: string[]) => void][] = [
  // The source is shared on the host, so its copy in the container's mount namespace is
  // a slave of it (the root is made rslave first): a plain bind inherits that.
  ['(none): slave of the host peer group, as the rootfs default rslave makes it', [], (p) => expect(p).toEqual(['master'])],
  ['shared', ['shared'], (p) => expect(p).toEqual(['master', 'shared'])],
  ['slave', ['slave'], (p) => expect(p).toEqual(['master'])],
  ['rslave', ['rslave'], (p) => expect(p).toEqual(['master'])],
  ['private', ['private'], (p) => expect(p).toEqual([])],
  ['rprivate', ['rprivate'], (p) => expect(p).toEqual([])],
  ['unbindable', ['unbindable'], (p) => expect(p).toEqual(['unbindable'])],
  ['runbindable', ['runbindable'], (p) => expect(p).toEqual(['unbindable'])],
];

/** shared:N of a mount point in the host's mountinfo. */
function hostPeerGroup(mountPoint: string): string {
  const line = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === mountPoint);
  const m = / shared:(\d+)/.exec(line ?? '');
  if (!m) throw new Error(`${mountPoint} is not shared on the host: ${line}`);
  return m[1];
}

function rootfsPropagationCases(): FieldCase[] {
  // value → the bind's propagation fields; `host` means the peer group (shared: or
  // master:) is the host's own one.
  const table: [string | undefined, string[], 'master' | 'shared' | undefined][] = [
    [undefined, ['master'], 'master'], // default rslave
    ['rslave', ['master'], 'master'],
    ['slave', ['shared'], 'shared'], // not recursive: only the copy of / changes
    ['shared', ['shared'], 'shared'],
    ['rshared', ['shared'], 'shared'],
    ['private', ['shared'], 'shared'],
    ['rprivate', [], undefined],
  ];
  return table.map(([value, fields, peerOfHost]) => ({
    name: `linux.rootfsPropagation ${value ?? '(absent)'}: a later bind from a host-shared mount is ${fields.join('+') || 'private'}${peerOfHost ? ` (${peerOfHost} of the host's peer group)` : ''}; / is private`,
    args: vktest('mounts'),
    mutate: (s) => {
      if (value) s.linux!.rootfsPropagation = value;
      s.mounts!.push({ destination: '/mnt/p', type: 'bind', source: SHARED_SRC, options: ['rbind'] });
    },
    setup: sharedSource,
    teardown: (b) => hostUnmountAll(path.join(b.dir, SHARED_SRC)),
    check: (r, b) => {
      const m = mountAt(r, '/mnt/p');
      expect(propagation(m)).toEqual(fields);
      if (peerOfHost) expect(m.optionalFields).toContain(`${peerOfHost}:${hostPeerGroups.get(b.id)}`);
      expect(propagation(mountAt(r, '/'))).toEqual([]);
    },
  }));
}

const cases: FieldCase[] = [
  // ---- root
  {
    name: 'root.path relative to the bundle',
    args: vktest('cat', '/marker'),
    mutate: (s) => (s.root!.path = 'rootfs'),
    setup: (b) => void putFile(b, 'marker', 'this-rootfs\n'),
    check: (r) => expect(r.stdout).toBe('this-rootfs\n'),
  },
  {
    name: 'root.path relative with ./ and a trailing slash',
    args: vktest('cat', '/marker'),
    mutate: (s) => (s.root!.path = './rootfs/'),
    setup: (b) => void putFile(b, 'marker', 'this-rootfs\n'),
    check: (r) => expect(r.stdout).toBe('this-rootfs\n'),
  },
  {
    name: 'root.path absolute',
    args: vktest('cat', '/marker'),
    mutate: (s, b) => (s.root!.path = b.rootfs),
    setup: (b) => void putFile(b, 'marker', 'this-rootfs\n'),
    check: (r) => expect(r.stdout).toBe('this-rootfs\n'),
  },
  {
    name: 'root.readonly true: / is mounted ro, writes fail with EROFS',
    args: ['/bin/sh', '-c', '/vktest tryopen /newfile wc; /vktest mounts'],
    mutate: (s) => (s.root!.readonly = true),
    check: (r) => {
      expect(errnoOf(r)).toBe('EROFS');
      expect(mountAt(r, '/').options).toContain('ro');
      // Mounts on top of the root stay writable.
      expect(mountAt(r, '/dev/shm').options).toContain('rw');
    },
  },
  {
    name: 'root.readonly false: / is rw',
    args: ['/bin/sh', '-c', '/vktest tryopen /newfile wc; /vktest mounts'],
    mutate: (s) => (s.root!.readonly = false),
    check: (r, b) => {
      expect(errnoOf(r)).toBe('OK');
      expect(mountAt(r, '/').options).toContain('rw');
      expect(fs.existsSync(path.join(b.rootfs, 'newfile'))).toBe(true);
    },
  },
  // ---- mounts: bind
  {
    name: 'mounts: bind ro (source relative to the bundle): readable, EROFS on write, "ro" in mountinfo',
    args: ['/bin/sh', '-c', '/vktest cat /mnt/data/file; /vktest tryopen /mnt/data/new wc; /vktest mounts'],
    mutate: (s) => s.mounts!.push({ destination: '/mnt/data', type: 'bind', source: 'hostdata', options: ['bind', 'ro'] }),
    setup: (b) => void hostDir(b, 'hostdata', { file: 'from-host\n' }),
    check: (r) => {
      expect(r.stdout.startsWith('from-host\n')).toBe(true);
      expect(errnoOf(r)).toBe('EROFS');
      expect(mountAt(r, '/mnt/data').options).toContain('ro');
    },
  },
  {
    name: 'mounts: bind rw: writes land in the host directory',
    args: vktest('write', '/mnt/data/out', 'written-inside'),
    mutate: (s, b) => s.mounts!.push({ destination: '/mnt/data', type: 'none', source: path.join(b.dir, 'hostdata'), options: ['rbind', 'rw'] }),
    setup: (b) => void hostDir(b, 'hostdata'),
    check: (_r, b) => expect(fs.readFileSync(path.join(b.dir, 'hostdata/out'), 'utf8')).toBe('written-inside'),
  },
  {
    name: 'mounts: bind nosuid,nodev,noexec show in mountinfo; noexec refuses execve',
    args: ['/bin/sh', '-c', '/vktest mounts; /mnt/x/vktest echo ran || /vktest echo exec-refused'],
    mutate: (s) => s.mounts!.push({ destination: '/mnt/x', type: 'bind', source: 'hostx', options: ['bind', 'nosuid', 'nodev', 'noexec'] }),
    setup: (b) => {
      hostDir(b, 'hostx');
      fs.copyFileSync(path.join(b.rootfs, 'vktest'), path.join(b.dir, 'hostx/vktest'));
      fs.chmodSync(path.join(b.dir, 'hostx/vktest'), 0o755);
    },
    check: (r) => {
      expect(mountAt(r, '/mnt/x').options).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
      expect(r.stdout).toMatch(/^exec-refused$/m);
      expect(r.stdout).not.toMatch(/^ran$/m);
    },
  },
  {
    name: 'mounts: bind of a single file',
    args: vktest('cat', '/etc/hostname'),
    mutate: (s) => s.mounts!.push({ destination: '/etc/hostname', type: 'bind', source: 'hostname-file', options: ['bind', 'ro'] }),
    setup: (b) => fs.writeFileSync(path.join(b.dir, 'hostname-file'), 'bound-file\n'),
    check: (r) => expect(r.stdout).toBe('bound-file\n'),
  },
  {
    name: 'mounts: missing destination directories are created inside the rootfs',
    args: vktest('ls', '/a/b/c'),
    mutate: (s) => s.mounts!.push({ destination: '/a/b/c', type: 'bind', source: 'hostdata', options: ['bind'] }),
    setup: (b) => void hostDir(b, 'hostdata', { f1: '' }),
    check: (r, b) => {
      expect(r.stdout).toBe('f1\n');
      expect(fs.statSync(path.join(b.rootfs, 'a/b/c')).isDirectory()).toBe(true);
    },
  },
  {
    name: 'mounts: rbind takes the submounts along, bind does not',
    args: vktest('mounts'),
    mutate: (s) => {
      s.mounts!.push({ destination: '/mnt/rbind', type: 'bind', source: 'tree', options: ['rbind'] });
      s.mounts!.push({ destination: '/mnt/bind', type: 'bind', source: 'tree', options: ['bind'] });
    },
    setup: async (b) => {
      hostDir(b, 'tree');
      await hostTmpfs(path.join(b.dir, 'tree/sub'));
    },
    teardown: (b) => hostUnmountAll(path.join(b.dir, 'tree')),
    check: (r) => {
      expect(hasMount(r, '/mnt/rbind/sub')).toBe(true);
      expect(mountAt(r, '/mnt/rbind/sub').fstype).toBe('tmpfs');
      expect(hasMount(r, '/mnt/bind/sub')).toBe(false);
    },
  },
  // ---- mounts: propagation of a bind mount, observed in mountinfo's optional fields
  ...propagationCases.map(
    ([label, opts, expectFields]): FieldCase => ({
      name: `mounts: bind propagation ${label}`,
      args: vktest('mounts'),
      mutate: (s) => s.mounts!.push({ destination: '/mnt/p', type: 'bind', source: SHARED_SRC, options: ['rbind', ...opts] }),
      setup: sharedSource,
      teardown: (b) => hostUnmountAll(path.join(b.dir, SHARED_SRC)),
      check: (r) => expectFields(propagation(mountAt(r, '/mnt/p'))),
    }),
  ),
  // ---- mounts: tmpfs
  {
    name: 'mounts: tmpfs with size and mode',
    args: ['/bin/sh', '-c', '/vktest stat /mnt/t; /vktest mounts'],
    mutate: (s) => s.mounts!.push({ destination: '/mnt/t', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m', 'mode=1750'] }),
    check: (r) => {
      expect(parseKeyValues(r.stdout)).toMatchObject({ type: 'dir', mode: '1750' });
      const m = mountAt(r, '/mnt/t');
      expect(m.fstype).toBe('tmpfs');
      expect(m.superOptions).toEqual(expect.arrayContaining(['size=1024k', 'mode=1750']));
      expect(m.options).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    },
  },
  {
    name: 'mounts: tmpfs ro is read-only (after the runtime populated it)',
    args: ['/bin/sh', '-c', '/vktest tryopen /mnt/t/x wc; /vktest mounts'],
    mutate: (s) => s.mounts!.push({ destination: '/mnt/t', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'size=64k'] }),
    check: (r) => {
      expect(errnoOf(r)).toBe('EROFS');
      expect(mountAt(r, '/mnt/t').options).toContain('ro');
    },
  },
  // ---- mounts: the special filesystems of the base spec
  {
    name: 'mounts: proc at /proc (and it is this pid namespace\'s proc)',
    args: ['/bin/sh', '-c', '/vktest mounts; /vktest cat /proc/1/cmdline; echo'],
    check: (r) => {
      expect(mountAt(r, '/proc').fstype).toBe('proc');
      expect(r.stdout).toMatch(/^\/bin\/sh\0-c\0/m);
    },
  },
  {
    name: 'mounts: sysfs at /sys, ro, nosuid, nodev, noexec',
    args: vktest('mounts'),
    check: (r) => {
      const m = mountAt(r, '/sys');
      expect(m.fstype).toBe('sysfs');
      expect(m.options).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
    },
  },
  {
    name: 'mounts: devpts at /dev/pts with newinstance, ptmxmode, mode and gid',
    args: ['/bin/sh', '-c', '/vktest mounts; /vktest stat /dev/pts/ptmx'],
    check: (r) => {
      const m = mountAt(r, '/dev/pts');
      expect(m.fstype).toBe('devpts');
      expect(m.superOptions).toEqual(expect.arrayContaining(['gid=5', 'mode=620', 'ptmxmode=666']));
      expect(m.options).toEqual(expect.arrayContaining(['nosuid', 'noexec']));
      expect(parseKeyValues(r.stdout)).toMatchObject({ type: 'char', rdev: '5:2', mode: '0666' });
    },
  },
  {
    name: 'mounts: tmpfs at /dev/shm with mode 1777',
    args: ['/bin/sh', '-c', '/vktest mounts; /vktest stat /dev/shm'],
    check: (r) => {
      const m = mountAt(r, '/dev/shm');
      expect(m.fstype).toBe('tmpfs');
      expect(m.source).toBe('shm');
      expect(m.superOptions).toEqual(expect.arrayContaining(['size=65536k']));
      expect(parseKeyValues(r.stdout).mode).toBe('1777');
    },
  },
  {
    name: 'mounts: mqueue at /dev/mqueue',
    args: vktest('mounts'),
    check: (r) => {
      const m = mountAt(r, '/dev/mqueue');
      expect(m.fstype).toBe('mqueue');
      expect(m.options).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
    },
  },
  {
    name: 'mounts: cgroup at /sys/fs/cgroup (v1: a tmpfs with one read-only hierarchy per controller, the container\'s own cgroup)',
    args: ['/bin/sh', '-c', '/vktest mounts; /vktest ls /sys/fs/cgroup'],
    check: (r, b) => {
      expect(mountAt(r, '/sys/fs/cgroup').fstype).toBe('tmpfs');
      const mem = mountAt(r, '/sys/fs/cgroup/memory');
      expect(mem.fstype).toBe('cgroup');
      expect(mem.options).toContain('ro');
      expect(mem.root.endsWith(`/${b.id}`)).toBe(true); // the bind of the container's cgroup
      const names = parseLines(r.stdout).filter((l) => /^[a-z_=]+$/.test(l));
      expect(names).toEqual(expect.arrayContaining(['cpu', 'cpuacct', 'memory', 'pids', 'devices', 'freezer']));
    },
  },
  {
    name: 'mounts: cgroup with a cgroup namespace mounts the hierarchies themselves, rooted at the container\'s cgroup',
    args: ['/bin/sh', '-c', '/vktest mounts; /vktest cat /proc/self/cgroup'],
    mutate: (s) => s.linux!.namespaces!.push({ type: 'cgroup' }),
    check: (r) => {
      const mem = mountAt(r, '/sys/fs/cgroup/memory');
      expect(mem.fstype).toBe('cgroup');
      expect(mem.root).toBe('/');
      expect(r.stdout).toMatch(/^\d+:memory:\/$/m);
    },
  },
  {
    name: 'mounts: a second proc and a sysfs elsewhere',
    args: vktest('mounts'),
    mutate: (s) => {
      s.mounts!.push({ destination: '/mnt/proc2', type: 'proc', source: 'proc' });
      s.mounts!.push({ destination: '/mnt/sys2', type: 'sysfs', source: 'sysfs', options: ['ro'] });
    },
    check: (r) => {
      expect(mountAt(r, '/mnt/proc2').fstype).toBe('proc');
      expect(mountAt(r, '/mnt/sys2').fstype).toBe('sysfs');
    },
  },
  // ---- linux.rootfsPropagation. runc 1.1 (and vkernel) apply it to the container's copy
  // of the host mounts before the rootfs is bound; the parent mount of the rootfs is then
  // made private, so "/" itself always ends up private. It shows on what is bound from
  // the host afterwards: here a bind of a host-shared tmpfs (peer group N on the host).
  ...rootfsPropagationCases(),
  {
    name: 'linux.rootfsPropagation unbindable: the rootfs cannot be bound, run fails',
    mutate: (s) => (s.linux!.rootfsPropagation = 'unbindable'),
    code: 1,
    check: (r) => expect(r.stderr).toMatch(/invalid argument/i),
  },
  // ---- linux.devices and the default /dev
  {
    name: 'linux.devices: a char device with major/minor/fileMode/uid/gid (its owner can open it)',
    args: ['/bin/sh', '-c', '/vktest stat /dev/vkt-custom; /vktest tryopen /dev/vkt-custom rw'],
    mutate: (s) => {
      s.process!.user = { uid: 1000, gid: 1001 };
      s.linux!.devices = [{ path: '/dev/vkt-custom', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 1000, gid: 1001 }];
    },
    check: (r) => {
      expect(parseKeyValues(r.stdout)).toMatchObject({ type: 'char', rdev: '1:3', mode: '0640', uid: '1000', gid: '1001', errname: 'OK' });
    },
  },
  {
    name: 'linux.devices: a block device and a fifo; the devices cgroup still denies the block device',
    args: ['/bin/sh', '-c', '/vktest stat /dev/vkt-blk; /vktest tryopen /dev/vkt-blk r; /vktest stat /dev/vkt-fifo'],
    mutate: (s) => {
      s.linux!.devices = [
        { path: '/dev/vkt-blk', type: 'b', major: 7, minor: 200, fileMode: 0o600 },
        { path: '/dev/vkt-fifo', type: 'p', fileMode: 0o620 },
      ];
    },
    check: (r) => {
      const out = r.stdout.split('errno=');
      expect(parseKeyValues(out[0])).toMatchObject({ type: 'block', rdev: '7:200', mode: '0600', uid: '0', gid: '0' });
      expect(parseErrno(r.stdout).errname).toBe('EPERM');
      expect(parseKeyValues(r.stdout.slice(r.stdout.lastIndexOf('type=')))).toMatchObject({ type: 'fifo', mode: '0620' });
    },
  },
  {
    name: 'default /dev: exactly the runc set of nodes, symlinks and mounts',
    args: vktest('ls', '/dev'),
    check: (r) => {
      const expected = ['fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'];
      if (fs.existsSync('/proc/kcore')) expected.push('core');
      expect(parseLines(r.stdout).sort()).toEqual(expected.sort());
    },
  },
  ...(
    [
      ['/dev/null', '1:3'],
      ['/dev/zero', '1:5'],
      ['/dev/full', '1:7'],
      ['/dev/random', '1:8'],
      ['/dev/urandom', '1:9'],
      ['/dev/tty', '5:0'],
    ] as const
  ).map(
    ([dev, rdev]): FieldCase => ({
      name: `default /dev: ${dev} is char ${rdev}, 0666, root-owned, and opens`,
      args: ['/bin/sh', '-c', `/vktest stat ${dev}; /vktest tryopen ${dev} r`],
      check: (r) => {
        const kvs = parseKeyValues(r.stdout);
        expect(kvs).toMatchObject({ type: 'char', rdev, mode: '0666', uid: '0', gid: '0' });
        // /dev/tty has no controlling terminal to open without a terminal: ENXIO.
        expect(kvs.errname).toBe(dev === '/dev/tty' ? 'ENXIO' : 'OK');
      },
    }),
  ),
  ...(
    [
      ['/dev/fd', '/proc/self/fd'],
      ['/dev/stdin', '/proc/self/fd/0'],
      ['/dev/stdout', '/proc/self/fd/1'],
      ['/dev/stderr', '/proc/self/fd/2'],
      ['/dev/ptmx', 'pts/ptmx'],
    ] as const
  ).map(
    ([link, target]): FieldCase => ({
      name: `default /dev: ${link} -> ${target}`,
      args: vktest('stat', link),
      check: (r) => expect(parseKeyValues(r.stdout)).toMatchObject({ type: 'symlink', target }),
    }),
  ),
  {
    name: 'default /dev: /dev/ptmx opens a new pty in the container\'s devpts',
    args: ['/bin/sh', '-c', '/vktest tryopen /dev/ptmx rw; /vktest ls /dev/pts'],
    check: (r) => {
      expect(parseErrno(r.stdout).errname).toBe('OK');
      expect(parseLines(r.stdout)).toContain('ptmx');
    },
  },
  {
    name: 'default /dev: /dev is a tmpfs, /dev/pts devpts, /dev/shm tmpfs',
    args: vktest('mounts'),
    check: (r) => {
      expect(mountAt(r, '/dev').fstype).toBe('tmpfs');
      expect(mountAt(r, '/dev/pts').fstype).toBe('devpts');
      expect(mountAt(r, '/dev/shm').fstype).toBe('tmpfs');
    },
  },
  {
    name: 'default /dev: /dev/fd/N works (the symlink resolves through the container\'s /proc)',
    args: vktest('stat', '/dev/fd/1'),
    check: (r) => expect(parseKeyValues(r.stdout).type).toBe('symlink'),
  },
  // ---- maskedPaths
  {
    name: 'linux.maskedPaths (base spec): a file is /dev/null, a directory an empty read-only tmpfs',
    args: ['/bin/sh', '-c', '/vktest stat /proc/keys; /vktest ls /sys/firmware; /vktest tryopen /sys/firmware/x wc; /vktest mounts'],
    check: (r) => {
      expect(parseKeyValues(r.stdout)).toMatchObject({ type: 'char', rdev: '1:3' });
      expect(r.stdout).not.toMatch(/^(acpi|efi|dmi|memmap)$/m);
      expect(parseErrno(r.stdout).errname).toBe('EROFS');
      expect(mountAt(r, '/sys/firmware').fstype).toBe('tmpfs');
    },
  },
  {
    name: 'linux.maskedPaths: a rootfs file and directory are hidden; a missing path is skipped',
    args: ['/bin/sh', '-c', '/vktest cat /etc/secret; /vktest echo ---; /vktest ls /secretdir; /vktest echo ---'],
    mutate: (s) => s.linux!.maskedPaths!.push('/etc/secret', '/secretdir', '/does/not/exist'),
    setup: (b) => {
      putFile(b, 'etc/secret', 'TOP-SECRET\n');
      putFile(b, 'secretdir/inner', 'TOP-SECRET\n');
    },
    check: (r) => {
      expect(r.stdout).toBe('---\n---\n');
    },
  },
  // ---- readonlyPaths
  {
    name: 'linux.readonlyPaths (base spec): /proc/sys is read-only',
    args: ['/bin/sh', '-c', '/vktest tryopen /proc/sys/kernel/hostname w; /vktest mounts'],
    check: (r) => {
      expect(parseErrno(r.stdout).errname).toBe('EROFS');
      expect(mountAt(r, '/proc/sys').options).toContain('ro');
    },
  },
  {
    name: 'linux.readonlyPaths: a rootfs directory becomes read-only, the rest stays writable',
    args: ['/bin/sh', '-c', '/vktest tryopen /data/new wc; /vktest tryopen /tmp/new wc; /vktest mounts'],
    mutate: (s) => s.linux!.readonlyPaths!.push('/data', '/missing/is/skipped'),
    setup: (b) => void putFile(b, 'data/keep', 'x'),
    check: (r) => {
      const errs = [...r.stdout.matchAll(/^errname=(\S+)$/gm)].map((m) => m[1]);
      expect(errs).toEqual(['EROFS', 'OK']);
      expect(mountAt(r, '/data').options).toContain('ro');
    },
  },
];

describeIf(ok)(`config.json filesystem fields (${runtimeName()})`, () => {
  afterAll(() => cleanupRuntimeRoot());

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => withLeakCheck(() => runCase(c).then(() => undefined)));

  it('mounts: a slave bind receives mounts made later on the host, a private one does not', () =>
    withLeakCheck(async () => {
      const b = await bundleFor({
        args: vktest('sleep', '60'),
        mutate: (s) => {
          s.mounts!.push({ destination: '/mnt/slave', type: 'bind', source: SHARED_SRC, options: ['rbind', 'rslave'] });
          s.mounts!.push({ destination: '/mnt/private', type: 'bind', source: SHARED_SRC, options: ['rbind', 'rprivate'] });
        },
        setup: sharedSource,
      });
      try {
        await runDetached(b);
        await hostTmpfs(path.join(b.dir, SHARED_SRC, 'late'));
        const r = await runRuntimeOk(['exec', b.id, '/vktest', 'mounts']);
        expect(hasMount(r, '/mnt/slave/late')).toBe(true);
        expect(hasMount(r, '/mnt/private/late')).toBe(false);
        await runRuntimeOk(['delete', '--force', b.id]);
      } finally {
        await hostUnmountAll(path.join(b.dir, SHARED_SRC));
      }
    }));

  it('linux.rootfsPropagation rshared: a mount made inside the container under a host-shared bind appears on the host', () =>
    withLeakCheck(async () => {
      const b = await bundleFor({
        args: ['/bin/sh', '-c', 'mount -t tmpfs tmpfs /mnt/shared/from-container && /vktest echo mounted'],
        mutate: (s) => {
          s.linux!.rootfsPropagation = 'rshared';
          s.mounts!.push({ destination: '/mnt/shared', type: 'bind', source: SHARED_SRC, options: ['rbind'] });
          for (const set of ['bounding', 'effective', 'permitted'] as const) s.process!.capabilities![set]!.push('CAP_SYS_ADMIN');
        },
        setup: async (bb) => {
          await sharedSource(bb);
          fs.mkdirSync(path.join(bb.dir, SHARED_SRC, 'from-container'));
        },
      });
      const target = path.join(b.dir, SHARED_SRC, 'from-container');
      try {
        const r = await runRuntime(['run', '--bundle', b.dir, b.id]);
        expect(r.stderr).toBe('');
        expect(r.stdout).toBe('mounted\n');
        const hostLine = fs
          .readFileSync('/proc/self/mountinfo', 'utf8')
          .split('\n')
          .find((l) => l.split(' ')[4] === target);
        expect(hostLine).toMatch(/ - tmpfs /);
      } finally {
        await hostUnmountAll(path.join(b.dir, SHARED_SRC));
      }
    }));

  it('mounts: a shared bind of a host-shared source (a slave of the host\'s peer group) does not propagate container mounts back', () =>
    withLeakCheck(async () => {
      const b = await bundleFor({
        args: ['/bin/sh', '-c', 'mount -t tmpfs tmpfs /mnt/shared/from-container && /vktest echo mounted'],
        mutate: (s) => {
          s.mounts!.push({ destination: '/mnt/shared', type: 'bind', source: SHARED_SRC, options: ['rbind', 'rshared'] });
          for (const set of ['bounding', 'effective', 'permitted'] as const) s.process!.capabilities![set]!.push('CAP_SYS_ADMIN');
        },
        setup: async (bb) => {
          await sharedSource(bb);
          fs.mkdirSync(path.join(bb.dir, SHARED_SRC, 'from-container'));
        },
      });
      try {
        const r = await runRuntime(['run', '--bundle', b.dir, b.id]);
        expect(r.stderr).toBe('');
        expect(r.stdout).toBe('mounted\n');
        // The container's bind is "shared:M master:N": a slave of the host's peer group N
        // with a peer group of its own. Mounts under it reach its own peers, not N.
        const hostSees = fs
          .readFileSync('/proc/self/mountinfo', 'utf8')
          .includes(path.join(b.dir, SHARED_SRC, 'from-container'));
        expect(hostSees).toBe(false);
      } finally {
        await hostUnmountAll(path.join(b.dir, SHARED_SRC));
      }
    }));
});
