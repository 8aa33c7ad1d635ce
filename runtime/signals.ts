import * as os from 'node:os';
import { InvalidArgumentError } from './errors';

const BY_NAME = os.constants.signals as Record<string, number>;

/** Accepts "KILL", "SIGKILL", "kill" or "9", as runc does. */
export function parseSignal(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    // 0 probes for existence (kill(2)), which runc passes through too.
    if (n >= 0 && n <= 64) return n;
  } else {
    const name = t.toUpperCase().startsWith('SIG') ? t.toUpperCase() : `SIG${t.toUpperCase()}`;
    const n = BY_NAME[name];
    if (n !== undefined) return n;
    const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name) ?? /^SIGRTMAX(?:-(\d+))?$/.exec(name);
    if (rt) {
      const off = Number(rt[1] ?? 0);
      const n2 = name.startsWith('SIGRTMIN') ? 34 + off : 64 - off;
      if (n2 >= 34 && n2 <= 64) return n2;
    }
  }
  throw new InvalidArgumentError(`signal: unknown signal ${JSON.stringify(text)}`, 'signal');
}

export function signalName(n: number): string {
  for (const [name, num] of Object.entries(BY_NAME)) if (num === n) return name;
  return `SIG${n}`;
}
