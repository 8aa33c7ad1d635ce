import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The package root (where package.json and build/ live). Found by walking up from this
 * file, so it is right for dist/runtime/paths.js, for a bundle in build/, and for an
 * installed copy under $PREFIX/lib/vkernel.
 */
export const PACKAGE_ROOT = findPackageRoot(__dirname);

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'build'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..', '..');
  }
}

/** A helper binary built into build/ (vkinit, vkseccomp, ...), overridable for tests. */
export function buildPath(name: string): string {
  return path.join(PACKAGE_ROOT, 'build', name);
}

/** An installed copy (make install) has no Makefile beside build/; a source tree does. */
export function isInstalledCopy(): boolean {
  return !fs.existsSync(path.join(PACKAGE_ROOT, 'Makefile'));
}

/** What to do about a missing helper binary: rebuild in a source tree, reinstall an installed copy. */
export const BUILD_HINT = 'make native';
export const INSTALLED_HINT = 'reinstall vkernel (make install)';

export function missingHelperFix(installed = isInstalledCopy()): string {
  return installed ? INSTALLED_HINT : BUILD_HINT;
}

/** runc's default is /run/runc; ours mirrors it. */
export const DEFAULT_ROOT = '/run/vkernel';

export const OCI_VERSION = '1.0.2-dev';
export const VKERNEL_VERSION = '0.1.0';
