// SHA-256 and random names without loading node:crypto up front. Loading it (OpenSSL's
// binding) costs ~2.4 MiB of RSS and ~0.5 ms: a warm shim daemon that waits in the pool
// never needs it, so it is loaded on first use (the daemon's first container) instead.
import type * as Crypto from 'node:crypto';

let crypto: typeof Crypto | undefined;

function load(): typeof Crypto {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (crypto ??= require('node:crypto') as typeof Crypto);
}

/** Hex SHA-256 of the parts, hashed in order as one stream. */
export function sha256Hex(...parts: Array<string | Buffer>): string {
  const h = load().createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** `bytes` random bytes as hex (unique temp-file names; not for secrets). */
export function randomHex(bytes: number): string {
  return load().randomBytes(bytes).toString('hex');
}
