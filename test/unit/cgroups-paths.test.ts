// cgroupsPath semantics, systemd-path expansion, setup detection, mountinfo parsing.

import { FailedPreconditionError, InvalidArgumentError, NotImplementedError } from '../../runtime/errors';
import { createCgroupManager, detectCgroupSetup } from '../../runtime/cgroups/manager';
import { cleanPath, expandSlice, parseSystemdPath, systemdToCgroupfs } from '../../runtime/cgroups/paths';
import { hugePageSizeName, parseCgroupMounts, parseSelfCgroup } from '../../runtime/cgroups/host';
import { FakeCgroupTree } from '../../runtime/cgroups/testing';

const trees: FakeCgroupTree[] = [];
afterAll(() => trees.forEach((t) => t.cleanup()));

const HOST_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /mnt/my\\040dir rw - ext4 /dev/sda1 rw
`;

describe('path helpers', () => {
  test('cleanPath keeps relative paths inside their base (runc CleanPath)', () => {
    expect(cleanPath('')).toBe('');
    expect(cleanPath('/a/b/../c/')).toBe('/a/c');
    expect(cleanPath('../../etc')).toBe('etc');
    expect(cleanPath('a/../../b')).toBe('b');
    expect(cleanPath('/../x')).toBe('/x');
    expect(cleanPath('.')).toBe('');
  });

  test('expandSlice', () => {
    expect(expandSlice('system.slice')).toBe('/system.slice');
    expect(expandSlice('a-b.slice')).toBe('/a.slice/a-b.slice');
    expect(expandSlice('kubepods-burstable-pod12.slice')).toBe('/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice');
    expect(expandSlice('-.slice')).toBe('/');
    for (const bad of ['foo', '.slice', 'a--b.slice', '-a.slice', 'a/b.slice']) {
      expect(() => expandSlice(bad)).toThrow(InvalidArgumentError);
    }
  });

  test('systemd form slice:prefix:name', () => {
    expect(parseSystemdPath('system.slice:cri-containerd:abc')).toEqual({ slice: 'system.slice', prefix: 'cri-containerd', name: 'abc' });
    expect(parseSystemdPath('/a:b:c')).toBeUndefined();
    expect(parseSystemdPath('foo:bar:baz')).toBeUndefined();
    expect(parseSystemdPath('a:b')).toBeUndefined();
    expect(systemdToCgroupfs({ slice: 'system.slice', prefix: 'cri-containerd', name: 'abc' })).toBe('/system.slice/cri-containerd-abc.scope');
    expect(systemdToCgroupfs({ slice: 'kubepods-besteffort.slice', prefix: 'cri-containerd', name: 'x' })).toBe(
      '/kubepods.slice/kubepods-besteffort.slice/cri-containerd-x.scope',
    );
    expect(systemdToCgroupfs({ slice: '', prefix: 'docker', name: 'x' })).toBe('/system.slice/docker-x.scope');
    expect(systemdToCgroupfs({ slice: '', prefix: '', name: 'x' })).toBe('/system.slice/x.scope');
    expect(systemdToCgroupfs({ slice: 'user.slice', prefix: 'p', name: 'sub.slice' })).toBe('/user.slice/sub.slice');
  });

  test('mountinfo and /proc/self/cgroup parsing', () => {
    const mounts = parseCgroupMounts(HOST_MOUNTINFO);
    expect(mounts.map((m) => [m.mountpoint, m.fstype, m.controllers.join(',')])).toEqual([
      ['/sys/fs/cgroup/cpu', 'cgroup', 'cpu'],
      ['/sys/fs/cgroup/cpuacct', 'cgroup', 'cpuacct'],
      ['/sys/fs/cgroup/memory', 'cgroup', 'memory'],
      ['/sys/fs/cgroup/systemd', 'cgroup', 'name=systemd'],
      ['/sys/fs/cgroup/unified', 'cgroup2', ''],
    ]);
    const self = parseSelfCgroup('4:memory:/process_api/x\n2:cpu,cpuacct:/\n1:name=systemd:/init.scope\n0::/\n');
    expect(self.v1.get('memory')).toBe('/process_api/x');
    expect(self.v1.get('cpuacct')).toBe('/');
    expect(self.v1.get('name=systemd')).toBe('/init.scope');
    expect(self.unified).toBe('/');
  });

  test('huge page size names', () => {
    expect(hugePageSizeName('hugepages-2048kB')).toBe('2MB');
    expect(hugePageSizeName('hugepages-1048576kB')).toBe('1GB');
    expect(hugePageSizeName('hugepages-64kB')).toBe('64KB');
  });
});

describe('detectCgroupSetup', () => {
  test('hybrid, legacy, unified from mountinfo', () => {
    expect(detectCgroupSetup('/sys/fs/cgroup', HOST_MOUNTINFO)).toBe('hybrid');
    expect(detectCgroupSetup('/sys/fs/cgroup/', HOST_MOUNTINFO.replace(/^41 .*$/m, ''))).toBe('legacy');
    expect(detectCgroupSetup('/sys/fs/cgroup', '29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n')).toBe('unified');
    expect(detectCgroupSetup('/sys/fs/cgroup/unified', HOST_MOUNTINFO)).toBe('unified');
    expect(() => detectCgroupSetup('/nowhere', HOST_MOUNTINFO)).toThrow(FailedPreconditionError);
  });

  test('this machine', () => {
    expect(['legacy', 'hybrid', 'unified']).toContain(detectCgroupSetup());
  });
});

describe('cgroupsPath → directories (cgroupfs driver)', () => {
  const tree = new FakeCgroupTree({ mode: 'hybrid', self: { memory: '/process_api/abc', 'name=systemd': '/init.scope' } });
  trees.push(tree);
  const mk = (cgroupsPath: string | undefined, id = 'ctr1', systemd = false) =>
    createCgroupManager({ id, cgroupsPath, systemd, root: tree.root, host: tree.host, fs: tree.fs }).describe().paths;

  test('empty → <own cgroup>/<id> per controller (runc 1.1 default)', () => {
    const p = mk(undefined);
    expect(p.memory).toBe(tree.p('memory', 'process_api', 'abc', 'ctr1'));
    expect(p.cpu).toBe(tree.p('cpu,cpuacct', 'ctr1'));
    expect(p['name=systemd']).toBe(tree.p('systemd', 'init.scope', 'ctr1'));
    expect(p['']).toBe(tree.p('unified', 'ctr1'));
  });

  test('relative → below our own cgroup, and cannot climb out', () => {
    expect(mk('k8s/pod1').memory).toBe(tree.p('memory', 'process_api', 'abc', 'k8s', 'pod1'));
    expect(mk('../../../x').memory).toBe(tree.p('memory', 'process_api', 'abc', 'x'));
  });

  test('absolute → from each hierarchy root', () => {
    const p = mk('/kubepods/burstable/pod1/ctr');
    expect(p.memory).toBe(tree.p('memory', 'kubepods', 'burstable', 'pod1', 'ctr'));
    expect(p.pids).toBe(tree.p('pids', 'kubepods', 'burstable', 'pod1', 'ctr'));
  });

  test('systemd form is expanded, absolute', () => {
    const p = mk('kubepods-burstable.slice:cri-containerd:abc');
    expect(p.memory).toBe(tree.p('memory', 'kubepods.slice', 'kubepods-burstable.slice', 'cri-containerd-abc.scope'));
    expect(p['']).toBe(tree.p('unified', 'kubepods.slice', 'kubepods-burstable.slice', 'cri-containerd-abc.scope'));
  });

  test('the root itself is refused', () => {
    expect(() => mk('/')).toThrow('linux.cgroupsPath: must name a cgroup below the hierarchy root (got "/")');
    expect(() => mk('..')).toThrow(InvalidArgumentError);
  });

  test('--systemd-cgroup without systemd says to drop the flag', () => {
    expect(() => mk('system.slice:x:y', 'c', true)).toThrow(
      '--systemd-cgroup: systemd is not running on this host (/run/systemd/system does not exist); drop --systemd-cgroup to use the cgroupfs driver',
    );
    const withSystemd = new FakeCgroupTree({ mode: 'legacy', systemd: true });
    trees.push(withSystemd);
    const mk2 = (p: string) =>
      createCgroupManager({ id: 'c', cgroupsPath: p, systemd: true, root: withSystemd.root, host: withSystemd.host, fs: withSystemd.fs });
    expect(() => mk2('/not/systemd')).toThrow(/expected the format "slice:prefix:name"/);
    expect(() => mk2('system.slice:x:y')).toThrow(NotImplementedError);
  });
});
