// `-v`: the version text, laid out like the runc shim's (which prints the Go version where we
// print Node's). Kept apart from info.ts so `-v` loads no protobuf codec.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT, VKERNEL_VERSION } from '../../runtime/paths';
import { SHIM_BINARY_NAME } from './paths';

let revision: string | undefined;

/** The source revision, from build/revision (written at build time; empty when absent). */
export function shimRevision(): string {
  if (revision === undefined) {
    try {
      revision = fs.readFileSync(path.join(PACKAGE_ROOT, 'build', 'revision'), 'utf8').trim();
    } catch {
      revision = '';
    }
  }
  return revision;
}

export function versionText(): string {
  return `${SHIM_BINARY_NAME}:\n  Version:  ${VKERNEL_VERSION}\n  Revision: ${shimRevision()}\n  Node.js version: ${process.version}\n\n`;
}
