// ShimCgroup: which cgroup.procs files a path names on a host, from mountinfo.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { joinShimCgroup, shimCgroupProcsFiles } from '../../shim/bootstrap/shim-cgroup';
import { parseShimConfig, resolveShimConfig } from '../../shim/config';
import { anyOf } from '../../shim/proto';

const line = (id: number, root: string, mp: string, fstype: string, opts: string) => `${id} 1 0:${id} ${root} ${mp} rw,nosuid - ${fstype} ${fstype} ${opts}`;

const HYBRID = [
  line(30, '/', '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
  line(31, '/', '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
  line(32, '/', '/sys/fs/cgroup/unified', 'cgroup2', 'rw'),
  line(33, '/', '/proc', 'proc', 'rw'),
].join('\n');

describe('shimCgroupProcsFiles', () => {
  it('one cgroup.procs per hierarchy (v1 controllers and unified)', () => {
    expect(shimCgroupProcsFiles('/podruntime/shims', HYBRID)).toEqual([
      '/sys/fs/cgroup/memory/podruntime/shims/cgroup.procs',
      '/sys/fs/cgroup/cpu,cpuacct/podruntime/shims/cgroup.procs',
      '/sys/fs/cgroup/unified/podruntime/shims/cgroup.procs',
    ]);
  });

  it('a hierarchy mounted from below its root holds only paths under that root', () => {
    const ns = line(40, '/kubepods', '/sys/fs/cgroup', 'cgroup2', 'rw');
    expect(shimCgroupProcsFiles('/kubepods/pod1', ns)).toEqual(['/sys/fs/cgroup/pod1/cgroup.procs']);
    expect(shimCgroupProcsFiles('/other', ns)).toEqual([]);
  });

  it.each(['relative/path', '/a/../../etc', ''])('refuses %j, naming shim_cgroup', (p) => {
    expect(() => shimCgroupProcsFiles(p, HYBRID)).toThrow(/shim_cgroup/);
  });
});

describe('joinShimCgroup', () => {
  it('writes the pid where the directory exists; none at all is an error', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-shimcg-'));
    try {
      const info = [line(50, '/', path.join(dir, 'a'), 'cgroup', 'rw,memory'), line(51, '/', path.join(dir, 'b'), 'cgroup', 'rw,pids')].join('\n');
      fs.mkdirSync(path.join(dir, 'a', 'shims'), { recursive: true });
      expect(joinShimCgroup(1234, '/shims', info)).toBe(1);
      expect(fs.readFileSync(path.join(dir, 'a', 'shims', 'cgroup.procs'), 'utf8')).toBe('1234');
      expect(() => joinShimCgroup(1234, '/missing', info)).toThrow('shim_cgroup /missing: no such cgroup on this host (create it first)');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('shim_cgroup setting', () => {
  it('[shim] shim_cgroup in the TOML config', () => {
    expect(parseShimConfig('[shim]\nshim_cgroup = "/podruntime"\n', 'f').shimCgroup).toBe('/podruntime');
    expect(() => parseShimConfig('[shim]\nshim_cgroup = 3\n', 'f')).toThrow('f: shim.shim_cgroup: must be a string (got "3")');
  });

  it('ShimCgroup of containerd.runc.v1.Options', () => {
    const opts = anyOf('containerd.runc.v1.Options', { shim_cgroup: '/podruntime/shims' });
    expect(resolveShimConfig(opts, '/nonexistent/config.toml').config.shimCgroup).toBe('/podruntime/shims');
  });
});
