// The one seam for kernel facts and calls the TypeScript side needs. Pure logic takes a
// `Sys` so unit tests can hand in a fake; everything else uses `realSys`.
import * as fs from 'node:fs';

export interface ProcStat {
  /** One-letter state from /proc/<pid>/stat (R, S, D, Z, X, T ...). */
  state: string;
  /** Start time in clock ticks since boot (field 22), as a string to keep it exact. */
  startTime: string;
  ppid: number;
}

export interface Sys {
  procStat(pid: number): ProcStat | undefined;
  /** Sends a signal; returns false when the process does not exist (ESRCH). */
  kill(pid: number, signal: number): boolean;
  capLastCap(): number;
  mountinfo(): string;
}

export function parseProcStat(text: string): ProcStat | undefined {
  // comm (field 2) may hold spaces and parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
  if (rest.length < 20) return undefined;
  return { state: rest[0], ppid: Number(rest[1]), startTime: rest[19] };
}

export const realSys: Sys = {
  procStat(pid) {
    try {
      return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return undefined;
    }
  },
  kill(pid, signal) {
    try {
      process.kill(pid, signal);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw err;
    }
  },
  capLastCap() {
    try {
      return Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
    } catch {
      return 40;
    }
  },
  mountinfo() {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8');
  },
};

/** A process is the one we started only if it exists, is not a zombie, and started when we recorded. */
export function isSameLiveProcess(sys: Sys, pid: number, startTime: string): boolean {
  if (!pid) return false;
  const st = sys.procStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X' && st.startTime === startTime;
}
