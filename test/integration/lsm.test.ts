// AppArmor and SELinux on a host that has neither (this machine: no /sys/module/apparmor,
// no /sys/fs/selinux). Through the CLI: a profile or label (process.apparmorProfile,
// process.selinuxLabel, linux.mountLabel) is refused before anything is created, with one
// line naming the field and the value. Then vkinit itself, with the plan `create` builds
// plus the LSM fields (validation bypassed): the attr writes it makes for apparmor_profile /
// selinux_label fail here (no LSM takes them), which shows that the records are read and
// acted on, and how a failure is reported (step, field, value); a mountLabel reaches
// mount(2) as context="..." (and fails the same way, as with runc 1.1 on this host).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InitStepError } from '../../runtime/errors';
import { launchInit } from '../../runtime/init/channel';
import { buildCreatePlan } from '../../runtime/init/from-spec';
import type { InitPlan } from '../../runtime/init/plan-types';
import type { Spec } from '../../runtime/spec/types';
import { hostLsm } from '../../runtime/spec/validate';
import {
  Bundle,
  describeIf,
  isVkernel,
  makeBundle,
  parseLines,
  requireFixtures,
  requireRoot,
  requireRuntime,
  requirement,
  runRuntime,
  runRuntimeOk,
  RunResult,
  vktest,
  withLeakCheck,
} from '../harness';
import { expectGone, runDetached, stateOf } from './helpers/oci';

const lsm = hostLsm();
const noLsm = !lsm.apparmor && !lsm.selinux;
const ok =
  requireRoot() &&
  requireFixtures() &&
  requireRuntime() &&
  isVkernel() &&
  // These tests exercise the refusals and vkinit's failure reports on a host without an LSM.
  requirement(noLsm, 'the host has AppArmor or SELinux enabled (these tests need a host without either)');

const PROFILE = 'vkernel-test-profile';
const LABEL = 'system_u:system_r:container_t:s0:c1,c2';

/** Non-zero exit and exactly one stderr line, holding every one of `parts`. */
function oneLine(r: RunResult, ...parts: string[]): void {
  expect(r.code).not.toBe(0);
  const lines = parseLines(r.stderr);
  expect(lines).toHaveLength(1);
  for (const p of parts) expect(lines[0]).toContain(p);
}

describeIf(ok)('apparmorProfile / selinuxLabel on a host without AppArmor and SELinux', () => {
  describe('through the CLI: refused before anything is created', () => {
    const MOUNT_LABEL = 'system_u:object_r:container_file_t:s0:c1,c2';
    const cases: [string, string, string, (s: Spec) => void][] = [
      ['process.apparmorProfile', PROFILE, 'apparmor is not enabled', (s) => (s.process!.apparmorProfile = PROFILE)],
      ['process.selinuxLabel', LABEL, 'selinux is not enabled', (s) => (s.process!.selinuxLabel = LABEL)],
      // runc 1.1 puts context="..." into the tmpfs data anyway and fails that mount (EINVAL).
      ['linux.mountLabel', MOUNT_LABEL, 'selinux is not enabled', (s) => (s.linux!.mountLabel = MOUNT_LABEL)],
    ];
    for (const verb of ['create', 'run']) {
      it.each(cases)(`${verb} with %s: one line naming the field and value, nothing left`, (field, value, why, set) =>
        withLeakCheck(async () => {
          const b = await makeBundle({ mutate: set });
          const r = await runRuntime([verb, '--bundle', b.dir, b.id]);
          oneLine(r, field, value, why);
          expect(r.stdout).toBe('');
          await expectGone(b.id);
        }),
      );
    }

    it('exec --apparmor, --process-label and a process.json asking for either: exit 255, one line, the container untouched', () =>
      withLeakCheck(async () => {
        const b = await makeBundle({ args: vktest('sleep', '60') });
        const pid = await runDetached(b);
        const r1 = await runRuntime(['exec', '--apparmor', PROFILE, b.id, '/vktest', 'echo', 'x']);
        expect(r1.code).toBe(255);
        oneLine(r1, 'process.apparmorProfile', PROFILE);
        const r2 = await runRuntime(['exec', '--process-label', LABEL, b.id, '/vktest', 'echo', 'x']);
        expect(r2.code).toBe(255);
        oneLine(r2, 'process.selinuxLabel', LABEL);
        const proc = path.join(b.dir, 'process.json');
        fs.writeFileSync(proc, JSON.stringify({ ...b.spec.process, args: vktest('echo', 'x'), apparmorProfile: PROFILE }));
        const r3 = await runRuntime(['exec', '--process', proc, b.id]);
        expect(r3.code).toBe(255);
        oneLine(r3, 'process.apparmorProfile', PROFILE);
        expect(r1.stdout + r2.stdout + r3.stdout).toBe('');
        const ps = JSON.parse((await runRuntimeOk(['ps', '--format', 'json', b.id])).stdout) as number[];
        expect(ps).toEqual([pid]);
        expect((await stateOf(b.id)).status).toBe('running');
        // Without the flags, exec still works.
        expect((await runRuntimeOk(['exec', b.id, '/vktest', 'echo', 'fine'])).stdout).toBe('fine\n');
        await runRuntimeOk(['delete', '--force', b.id]);
      }));
  });

  describe('vkinit: the attr writes are made, and their failure is an error naming field and value', () => {
    /** The plan `create` would build for the bundle (straight on to exec: no FIFO), plus `over`. */
    function plan(b: Bundle, over: Partial<InitPlan>): InitPlan {
      const p = buildCreatePlan(b.spec, {
        bundle: b.dir,
        execFifo: path.join(b.dir, 'exec.fifo'),
        cgroupProcs: [],
        noPivot: false,
        preserveFds: 0,
        wait: true,
        capLastCap: Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')),
      });
      delete p.execFifo;
      return { ...p, ...over };
    }

    async function initFails(over: Partial<InitPlan>, mutate?: (s: Spec) => void): Promise<InitStepError> {
      const b = await makeBundle({ mutate });
      try {
        const e = await launchInit(plan(b, over), { stdio: ['ignore', 'ignore', 'ignore'] }).then(
          async (h) => {
            await h.waitExit();
            return undefined;
          },
          (err: unknown) => err,
        );
        expect(e).toBeInstanceOf(InitStepError);
        return e as InitStepError;
      } finally {
        await b.cleanup();
      }
    }

    it('the same plan without LSM records runs (the baseline)', async () => {
      const b = await makeBundle();
      try {
        const h = await launchInit(plan(b, {}), { stdio: ['ignore', 'ignore', 'ignore'] });
        expect(await h.waitExit()).toBe(0);
      } finally {
        await b.cleanup();
      }
    });

    it('apparmor_profile: step apparmor, the field, the profile and the attr file in the message', async () => {
      const e = await initFails({ apparmorProfile: PROFILE, noNewPrivileges: true, uid: 1000, gid: 1000 });
      expect(e.step).toBe('apparmor');
      expect(e.errno).toBe(22); // EINVAL: no LSM takes the write
      expect(e.message).toContain(`process.apparmorProfile "${PROFILE}"`);
      expect(e.message).toMatch(/\/proc\/(thread-)?self\/attr\/(apparmor\/)?exec/);
    });

    it('selinux_label: step selinux, the field and the label in the message', async () => {
      const e = await initFails({ selinuxLabel: LABEL });
      expect(e.step).toBe('selinux');
      expect(e.errno).toBe(22);
      expect(e.message).toContain(`process.selinuxLabel "${LABEL}"`);
      expect(e.message).toMatch(/attr\/exec/);
    });

    it('selinux_label with a session keyring: the keyring label is written first (keycreate), as runc', async () => {
      const e = await initFails({ selinuxLabel: LABEL, sessionKeyring: { name: '_ses.vkt-lsm', addPerm: 0 } });
      expect(e.step).toBe('selinux');
      expect(e.message).toContain('session keyring');
      expect(e.message).toMatch(/attr\/keycreate/);
    });

    it('linux.mountLabel: context="<label>" reaches the tmpfs mount (refused by the kernel here)', async () => {
      const label = 'system_u:object_r:container_file_t:s0:c1,c2';
      const e = await initFails({}, (s) => (s.linux!.mountLabel = label));
      expect(e.step).toBe('mount');
      expect(e.errno).toBe(22);
      // The baseline (same plan, no label) mounts it fine.
      expect(e.message).toContain('mount "tmpfs" on "/dev"');
    });
  });
});
