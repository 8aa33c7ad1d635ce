// Unit checks of the harness helpers, and of the payload's output formats run on the host
// (build/vktest; `make native`).

import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { baseSpec, DEFAULT_ARGS } from '../harness/base-spec';
import { requirement, RequirementError } from '../harness/guards';
import { parseErrno, parseKeyValues, parseMountinfo, parseRlimit, vktest } from '../harness/payload';
import { mountsUnder, removeTree, uniqueId, unescapeMountinfo } from '../harness/bundle';
import { runtimeCommand, runtimeName } from '../harness/runtime';
import { repoRoot } from '../fixtures/image';

describe('harness helpers', () => {
  it('parses payload output', () => {
    expect(parseKeyValues('a=1\nb=x=y\nnoise\n')).toEqual({ a: '1', b: 'x=y' });
    expect(parseRlimit('1024:unlimited')).toEqual({ soft: 1024, hard: Infinity });
    expect(parseErrno('errno=13\nerrname=EACCES\n')).toEqual({ errno: 13, errname: 'EACCES' });
    expect(() => parseErrno('')).toThrow(/errno/);
    expect(vktest('exit', 3)).toEqual(['/vktest', 'exit', '3']);
    const [m] = parseMountinfo('36 25 0:32 / /a\\040b rw,nosuid shared:1 - tmpfs tmpfs rw,size=4k\n');
    expect(m).toMatchObject({ mountId: 36, parentId: 25, mountPoint: '/a b', fstype: 'tmpfs', optionalFields: ['shared:1'] });
    expect(m.superOptions).toEqual(['rw', 'size=4k']);
    expect(unescapeMountinfo('x\\134y')).toBe('x\\y');
  });

  it('base spec is runc spec with terminal off and the payload as args', () => {
    const s = baseSpec();
    expect(s.ociVersion).toBe('1.0.2');
    expect(s.process?.terminal).toBe(false);
    expect(s.process?.args).toEqual([...DEFAULT_ARGS]);
    s.process!.args!.push('mutated');
    expect(baseSpec().process?.args).toEqual(['/vktest', 'echo', 'hi']);
    expect(s.linux?.namespaces?.map((n) => n.type)).toEqual(['pid', 'network', 'ipc', 'uts', 'mount']);
  });

  it('picks the runtime from RUNTIME with a private root', () => {
    const saved = process.env.RUNTIME;
    try {
      delete process.env.RUNTIME;
      expect(runtimeName()).toBe('vkernel');
      const v = runtimeCommand();
      expect(v.cmd).toBe(process.execPath);
      expect(v.baseArgs[0]).toBe(path.join(repoRoot(), 'dist', 'cmd', 'vkernel.js'));
      expect(v.baseArgs.slice(1, 2)).toEqual(['--root']);
      process.env.RUNTIME = 'crun';
      expect(runtimeCommand()).toEqual({ cmd: 'crun', baseArgs: ['--root', v.baseArgs[2]] });
      process.env.RUNTIME = 'kata';
      expect(() => runtimeName()).toThrow(/RUNTIME/);
    } finally {
      if (saved === undefined) delete process.env.RUNTIME;
      else process.env.RUNTIME = saved;
    }
  });

  it('guards fail under CI=true and return false otherwise', () => {
    const saved = process.env.CI;
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      process.env.CI = 'true';
      expect(() => requirement(false, 'unit-test requirement')).toThrow(RequirementError);
      expect(requirement(true, 'x')).toBe(true);
      process.env.CI = 'false';
      expect(requirement(false, 'unit-test requirement')).toBe(false);
    } finally {
      write.mockRestore();
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    }
  });

  it('makes unique ids and removes trees', async () => {
    expect(uniqueId()).toMatch(/^vkt-[0-9a-f]{12}$/);
    expect(uniqueId()).not.toBe(uniqueId());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-unit-'));
    fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
    expect(mountsUnder(dir)).toEqual([]);
    await removeTree(dir);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

const payload = path.join(repoRoot(), 'build', 'vktest');
const havePayload = fs.existsSync(payload);
if (!havePayload && process.env.CI === 'true') throw new Error(`${payload} missing (make native)`);

(havePayload ? describe : describe.skip)('vktest payload on the host', () => {
  const run = (...args: string[]): string => execFileSync(payload, args, { encoding: 'utf8' });

  it('echo, exit and usage', () => {
    expect(run('echo', 'a', 'b c')).toBe('a b c\n');
    expect(spawnSync(payload, ['exit', '42']).status).toBe(42);
    const bad = spawnSync(payload, ['nope'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^usage: vktest/);
    const err = spawnSync(payload, ['cat', '/nonexistent'], { encoding: 'utf8' });
    expect(err.status).toBe(1);
    expect(err.stderr).toBe('vktest: cat: open /nonexistent: No such file or directory\n');
  });

  it('key=value reports', () => {
    const caps = parseKeyValues(run('caps'));
    expect(Object.keys(caps)).toEqual(['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp']);
    for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(caps[k]).toMatch(/^[0-9a-f]{16}$/);
    const ids = parseKeyValues(run('ids'));
    expect(ids.uid).toBe(String(process.getuid!()));
    expect(ids.umask).toMatch(/^0[0-7]{3}$/);
    const rl = parseKeyValues(run('rlimits'));
    expect(Object.keys(rl)).toHaveLength(16);
    for (const v of Object.values(rl)) expect(v).toMatch(/^(\d+|unlimited):(\d+|unlimited)$/);
    const si = parseKeyValues(run('sysinfo'));
    expect(Number(si.totalram)).toBe(os.totalmem());
    expect(si.loads).toMatch(/^[\d.]+,[\d.]+,[\d.]+$/);
    expect(Number(run('nproc'))).toBeGreaterThan(0);
    expect(run('hostname')).toBe(os.hostname() + '\n');
    const pid = parseKeyValues(run('pid'));
    expect(Number(pid.ppid)).toBe(process.pid);
    expect(parseKeyValues(run('ns')).mnt).toMatch(/^mnt:\[\d+\]$/);
    expect(parseKeyValues(run('stat', '/dev/null'))).toMatchObject({ type: 'char', mode: '0666', rdev: '1:3' });
    expect(parseKeyValues(run('isatty'))).toEqual({ '0': '0', '1': '0', '2': '0' });
    expect(run('sysctl', 'kernel.ostype')).toBe('Linux\n');
    expect(run('sysctl', 'kernel/ostype')).toBe('Linux\n');
  });

  it('fds lists inherited descriptors, not its own directory fd', () => {
    const out = execFileSync(payload, ['fds'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const fds = parseKeyValues(out);
    expect(Object.keys(fds).slice(0, 3)).toEqual(['0', '1', '2']);
    expect(fds['0']).toBe('/dev/null');
    expect(Object.values(fds).some((t) => t.includes('/proc/') && t.endsWith('/fd'))).toBe(false);
  });

  it('files: write, cat, ls, tryopen, mknod, readfd', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-payload-'));
    try {
      const f = path.join(dir, 'f');
      expect(run('write', f, 'hello')).toBe('');
      expect(run('cat', f)).toBe('hello');
      expect(run('ls', dir)).toBe('f\n');
      expect(parseErrno(run('tryopen', f, 'r'))).toEqual({ errno: 0, errname: 'OK' });
      expect(parseErrno(run('tryopen', f, 'wcx')).errname).toBe('EEXIST');
      expect(parseErrno(run('tryopen', f, 'rd')).errname).toBe('ENOTDIR');
      expect(parseErrno(run('mknod', path.join(dir, 'null'))).errname).toBe(process.getuid!() === 0 ? 'OK' : 'EPERM');
      const fd = fs.openSync(f, 'r');
      try {
        const r = spawnSync(payload, ['readfd', '3'], { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8' });
        expect(r.stdout).toBe('hello');
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resource commands', () => {
    expect(parseKeyValues(run('memhog', '8')).allocated_mib).toBe('8');
    expect(parseKeyValues(run('forkbomb', '5'))).toEqual({ forked: '5', errno: '0', errname: 'OK' });
    const spin = parseKeyValues(run('spin', '0.2'));
    expect(Number(spin.wall_ms)).toBeGreaterThanOrEqual(200);
    expect(Number(spin.cpu_ms)).toBeGreaterThan(0);
    const t = Date.now();
    run('sleep', '0.2');
    expect(Date.now() - t).toBeGreaterThanOrEqual(190);
    expect(spawnSync(payload, ['kill', 'TERM']).signal).toBe('SIGTERM');
    expect(spawnSync(payload, ['kill', '9']).signal).toBe('SIGKILL');
    expect(spawnSync(payload, ['kill', 'SIGUSR1']).signal).toBe('SIGUSR1');
  });
});
