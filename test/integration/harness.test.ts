// Self-test of the fixtures, the payload and the harness, against runc (not the runtime
// under test): proves a failure elsewhere is the runtime's, not the test setup's.

import * as fs from 'fs';
import * as path from 'path';
import {
  assertNoLeaks,
  capMask,
  cleanupRuntimeRoot,
  defaultFixturesDir,
  describeIf,
  IMAGE_NAME,
  LeakError,
  makeBundle,
  OCI_TAR_NAME,
  parseErrno,
  parseKeyValues,
  parseMountinfo,
  parseRlimit,
  requireBinary,
  requireFixtures,
  requireRoot,
  runBundle,
  runRuntime,
  runtimeCommand,
  runtimeRoot,
  snapshotLeaks,
  startContainerd,
  vktest,
  waitForNoLeaks,
  withLeakCheck,
} from '../harness';

const runtime = 'runc' as const;
const ok = requireRoot() && requireFixtures() && requireBinary('runc');

describeIf(ok)('harness self-test with runc', () => {
  afterAll(() => {
    cleanupRuntimeRoot();
  });

  it('runtimeCommand uses a private --root', () => {
    const c = runtimeCommand(runtime);
    expect(c.cmd).toBe('runc');
    expect(c.baseArgs).toEqual(['--root', runtimeRoot()]);
    expect(fs.statSync(runtimeRoot()).isDirectory()).toBe(true);
  });

  it('runs /vktest echo hi in a container and leaves nothing behind', async () => {
    const b = await makeBundle({ runtime });
    const before = snapshotLeaks([b.id]);
    expect(b.spec.process?.args).toEqual(['/vktest', 'echo', 'hi']);
    expect(b.id).toMatch(/^vkt-[0-9a-f]{12}$/);
    const r = await runBundle(b, { runtime });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hi\n');
    assertNoLeaks(before, snapshotLeaks([b.id]));
    await b.cleanup();
    expect(fs.existsSync(b.dir)).toBe(false);
  });

  it('reports the container view through the payload', () =>
    withLeakCheck(async () => {
      const run = async (...args: string[]): Promise<string> => {
        const b = await makeBundle({ runtime, args: vktest(...args) });
        const r = await runBundle(b, { runtime });
        if (r.code !== 0) throw new Error(`vktest ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
        return r.stdout;
      };
      // runc spec's default caps: AUDIT_WRITE(29), KILL(5), NET_BIND_SERVICE(10).
      const caps = parseKeyValues(await run('caps'));
      const want = (1n << 29n) | (1n << 5n) | (1n << 10n);
      for (const set of ['CapPrm', 'CapEff', 'CapBnd']) expect(capMask(caps[set])).toBe(want);
      // Ambient caps need the inheritable set too, which runc spec leaves empty.
      expect(capMask(caps.CapInh)).toBe(0n);
      expect(capMask(caps.CapAmb)).toBe(0n);
      expect(caps.NoNewPrivs).toBe('1');

      expect(await run('hostname')).toBe('runc\n');
      const ids = parseKeyValues(await run('ids'));
      expect(ids).toMatchObject({ uid: '0', gid: '0', euid: '0', egid: '0' });
      expect(parseKeyValues(await run('pid')).pid).toBe('1');
      expect(parseRlimit(parseKeyValues(await run('rlimits')).RLIMIT_NOFILE)).toEqual({ soft: 1024, hard: 1024 });
      const mounts = parseMountinfo(await run('mounts'));
      expect(mounts.find((m) => m.mountPoint === '/proc')?.fstype).toBe('proc');
      expect(parseKeyValues(await run('stat', '/dev/null'))).toMatchObject({ type: 'char', rdev: '1:3' });
      // The devices cgroup denies mknod ("allow": false, "rwm") and CAP_MKNOD is absent.
      expect(parseErrno(await run('mknod', '/tmp/null2')).errname).toBe('EPERM');
      expect(parseErrno(await run('tryopen', '/nonexistent', 'r')).errname).toBe('ENOENT');
      // busybox applets resolve through the symlinks.
      expect((await run('ls', '/bin')).split('\n')).toEqual(expect.arrayContaining(['busybox', 'sh', 'ls']));
    }));

  it('passes the exit code through', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ runtime, args: vktest('exit', 7) });
      expect((await runBundle(b, { runtime })).code).toBe(7);
    }));

  it('busybox sh works as the container process', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ runtime, args: ['sh', '-c', 'echo $((6*7)) > /tmp/x && cat /tmp/x'] });
      const r = await runBundle(b, { runtime });
      expect(r).toMatchObject({ code: 0, stdout: '42\n' });
    }));

  it('read-only rootfs option', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ runtime, readonlyRootfs: true, args: vktest('tryopen', '/newfile', 'wc') });
      expect(b.spec.root?.readonly).toBe(true);
      const r = await runBundle(b, { runtime });
      expect(parseErrno(r.stdout).errname).toBe('EROFS');
    }));

  it('withLeakCheck catches a container left running', async () => {
    let id = '';
    const err = await withLeakCheck(
      async () => {
        const b = await makeBundle({ runtime, args: vktest('sleep', 30) });
        id = b.id;
        const r = await runRuntime(['run', '--detach', '--bundle', b.dir, b.id], { runtime });
        expect(r.code).toBe(0);
      },
      { settleMs: 0 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeakError);
    const leaks = (err as LeakError).leaks;
    expect(leaks.stateDirs).toEqual([path.join(runtimeRoot(), id)]);
    expect(leaks.processes?.length).toBeGreaterThan(0);
    expect(leaks.cgroups?.length).toBeGreaterThan(0);
    // ... and cleaned it up anyway (cleanup() runs `delete --force`); the killed process
    // may linger as a zombie until the host's init reaps it.
    await waitForNoLeaks(snapshotLeaks([]), [id], { timeoutMs: 5000 });
  });

  it('mutate hooks into the spec before config.json is written', async () => {
    const b = await makeBundle({
      runtime,
      mutate: (s) => {
        s.hostname = 'mutated';
      },
    });
    try {
      const onDisk = JSON.parse(fs.readFileSync(path.join(b.dir, 'config.json'), 'utf8'));
      expect(onDisk.hostname).toBe('mutated');
      expect(onDisk.ociVersion).toBe('1.0.2');
      expect(onDisk.process.terminal).toBe(false);
    } finally {
      await b.cleanup();
    }
  });
});

describeIf(ok && requireBinary('containerd') && requireBinary('ctr'))('OCI image fixture with a private containerd', () => {
  it('imports with ctr and lists under its name', async () => {
    const cd = await startContainerd();
    try {
      const tarPath = path.join(defaultFixturesDir(), OCI_TAR_NAME);
      await cd.ctrOk(['images', 'import', tarPath]);
      const ls = await cd.ctrOk(['images', 'ls', '-q']);
      expect(ls.stdout.split('\n')).toContain(IMAGE_NAME);
      // Unpacked into a snapshot, it runs with the stock runc shim.
      const r = await cd.ctr(['run', '--rm', IMAGE_NAME, `vkt-ctr-${process.pid}`, '/vktest', 'echo', 'from-containerd'], {
        timeoutMs: 30_000,
      });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('from-containerd\n');
      expect(r.code).toBe(0);
    } catch (e) {
      throw new Error(`${String(e)}\ncontainerd log:\n${cd.log()}`);
    } finally {
      await cd.stop();
    }
    expect(fs.existsSync(cd.dir)).toBe(false);
    expect(snapshotLeaks([cd.namespace, cd.dir])).toMatchObject({ cgroups: [], mounts: [], processes: [] });
  });
});
