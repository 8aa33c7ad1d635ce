// RLIMIT_* names (as written in config.json) and their Linux resource numbers.

export const RLIMITS: Readonly<Record<string, number>> = Object.freeze({
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
});

/** RLIM_INFINITY as the decimal string the init plan carries. */
export const RLIM_INFINITY = '18446744073709551615';

/** The resource number, or undefined for an unknown name. */
export function rlimitNumber(name: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(RLIMITS, name) ? RLIMITS[name] : undefined;
}

/**
 * A config.json rlimit value as a decimal u64 string. JSON numbers are doubles, so
 * 2^64-1 (RLIM_INFINITY) arrives as 2^64: anything at or above 2^64-1 maps to infinity.
 */
export function rlimitValue(n: number): string {
  if (n >= 2 ** 64 - 1) return RLIM_INFINITY;
  return BigInt(Math.trunc(n)).toString();
}
