// The shared integration-test harness. Typical use:
//
//   import { makeBundle, runBundle, withLeakCheck, vktest, parseKeyValues,
//            requireRoot, requireFixtures, requireRuntime, describeIf } from '../harness';
//
//   const ok = requireRoot() && requireFixtures() && requireRuntime();
//   describeIf(ok)('caps', () => {
//     it('drops to the default set', () =>
//       withLeakCheck(async () => {
//         const b = await makeBundle({ args: vktest('caps') });
//         const r = await runBundle(b);
//         expect(r.code).toBe(0);
//         expect(parseKeyValues(r.stdout).CapEff).toBe('0000000020000420');
//       }));
//   });

export * from './base-spec';
export * from './runtime';
export * from './bundle';
export * from './leaks';
export * from './guards';
export * from './payload';
export * from './containerd';
export {
  IMAGE_NAME,
  buildFixtures,
  defaultFixturesDir,
  repoRoot,
  OCI_TAR_NAME,
  ROOTFS_NAME,
} from '../fixtures/image';
