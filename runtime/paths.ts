import * as path from 'node:path';

/** The package root: dist/runtime/paths.js lives two levels below it. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** runc's default is /run/runc; ours mirrors it. */
export const DEFAULT_ROOT = '/run/vkernel';

export const OCI_VERSION = '1.0.2-dev';
export const VKERNEL_VERSION = '0.1.0';
