// Pure parts of rootfs mounting and stdio URIs.
import { InvalidArgumentError, NotImplementedError } from '../../runtime/errors';
import { parseStdio } from '../../shim/io';
import { MS, mountTarget, parseMountOptions } from '../../shim/rootfs';

describe('parseMountOptions', () => {
  it('splits flags from data like containerd', () => {
    expect(parseMountOptions(['rbind', 'ro'])).toEqual({ flags: MS.BIND | MS.REC | MS.RDONLY, data: '' });
    expect(parseMountOptions(['ro', 'rw', 'nosuid', 'nodev'])).toEqual({ flags: MS.NOSUID | MS.NODEV, data: '' });
    expect(parseMountOptions(['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/a:/b'])).toEqual({
      flags: 0,
      data: 'index=off,workdir=/w,upperdir=/u,lowerdir=/a:/b',
    });
    expect(parseMountOptions(['rprivate', 'bind']).flags).toBe(MS.PRIVATE | MS.REC | MS.BIND);
  });

  it('refuses loop mounts', () => {
    expect(() => parseMountOptions(['loop'])).toThrow(NotImplementedError);
  });
});

describe('mountTarget', () => {
  it('puts 1.7 targets under rootfs and never outside it', () => {
    expect(mountTarget('/b/rootfs', '')).toBe('/b/rootfs');
    expect(mountTarget('/b/rootfs', 'var/lib')).toBe('/b/rootfs/var/lib');
    expect(mountTarget('/b/rootfs', '/etc')).toBe('/b/rootfs/etc');
    expect(mountTarget('/b/rootfs', '../../etc')).toBe('/b/rootfs/etc');
  });
});

describe('parseStdio', () => {
  it('reads FIFOs, null IO, file:// and binary:// like containerd cio', () => {
    expect(parseStdio({ stdin: '', stdout: '', stderr: '', terminal: false }).output).toEqual({ kind: 'null' });
    expect(parseStdio({ stdin: '/f/0', stdout: '/f/1', stderr: '/f/2', terminal: false })).toEqual({
      stdin: '/f/0',
      terminal: false,
      output: { kind: 'fifo', stdout: '/f/1', stderr: '/f/2' },
    });
    expect(parseStdio({ stdin: '', stdout: 'fifo:///f/1', stderr: '', terminal: false }).output).toEqual({ kind: 'fifo', stdout: '/f/1', stderr: '' });
    expect(parseStdio({ stdin: '', stdout: 'file:///var/log/c%201.log', stderr: 'file:///var/log/c%201.log', terminal: false }).output).toEqual({
      kind: 'file',
      path: '/var/log/c 1.log',
    });
    expect(parseStdio({ stdin: '', stdout: 'binary:///usr/bin/logger?_NERDCTL_INTERNAL_LOGGING=/d&flag', stderr: '', terminal: false }).output).toEqual({
      kind: 'binary',
      path: '/usr/bin/logger',
      args: ['_NERDCTL_INTERNAL_LOGGING', '/d', 'flag'],
    });
  });

  it('never opens stderr with a terminal', () => {
    expect(parseStdio({ stdin: '/f/0', stdout: '/f/1', stderr: '/f/2', terminal: true }).output).toEqual({ kind: 'fifo', stdout: '/f/1', stderr: '' });
  });

  it('refuses unknown schemes and relative paths', () => {
    expect(() => parseStdio({ stdin: '', stdout: 'http://x/y', stderr: '', terminal: false })).toThrow(InvalidArgumentError);
    expect(() => parseStdio({ stdin: 'rel', stdout: '', stderr: '', terminal: false })).toThrow(InvalidArgumentError);
  });
});
