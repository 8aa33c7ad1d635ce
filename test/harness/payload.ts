// Helpers for the in-container payload (/vktest, test/payload/vktest.c) and its output.

/** Path of the payload inside the test rootfs. */
export const VKTEST = '/vktest';

/** process.args for a payload command: vktest('caps') → ['/vktest', 'caps']. */
export function vktest(...args: (string | number)[]): string[] {
  return [VKTEST, ...args.map(String)];
}

/** Parses `key=value` lines (split at the first '='; other lines are ignored). */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Non-empty lines. */
export function parseLines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** The outcome of the probe commands `mknod` and `tryopen`: errno 0 means success. */
export function parseErrno(text: string): { errno: number; errname: string } {
  const kv = parseKeyValues(text);
  if (kv.errno === undefined) throw new Error(`no errno= line in payload output: ${JSON.stringify(text)}`);
  return { errno: Number(kv.errno), errname: kv.errname ?? '' };
}

/** A capability mask from `vktest caps` (hex) as a bigint. */
export function capMask(hex: string): bigint {
  return BigInt(`0x${hex}`);
}

/** `vktest rlimits` line value "soft:hard" → numbers (Infinity for unlimited). */
export function parseRlimit(value: string): { soft: number; hard: number } {
  const [soft, hard] = value.split(':').map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft, hard };
}

/** One line of /proc/self/mountinfo (`vktest mounts`), the fields tests look at. */
export interface MountInfo {
  mountId: number;
  parentId: number;
  majorMinor: string;
  root: string;
  mountPoint: string;
  options: string[];
  optionalFields: string[];
  fstype: string;
  source: string;
  superOptions: string[];
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountInfo[] {
  return parseLines(text).map((line) => {
    const [pre, post] = line.split(' - ');
    const f = pre.split(' ');
    const [fstype, source, superOpts] = (post ?? '').split(' ');
    return {
      mountId: Number(f[0]),
      parentId: Number(f[1]),
      majorMinor: f[2],
      root: unescape(f[3]),
      mountPoint: unescape(f[4]),
      options: (f[5] ?? '').split(','),
      optionalFields: f.slice(6),
      fstype,
      source: unescape(source ?? ''),
      superOptions: (superOpts ?? '').split(','),
    };
  });
}
