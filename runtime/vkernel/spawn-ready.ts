// The vkernel helpers (vkfs serve, vkagent serve/trace) start the same way: detached, cwd /,
// stdout and stderr appended to a log file, and a pipe on fd 3 where the helper writes
// "ok <pid>\n" once it serves (or "error[:] <message>\n"). The caller waits for that line,
// so a helper that dies or hangs during start-up fails the start with its own message.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';

export interface SpawnReadyOptions {
  binary: string;
  /** Arguments before `--ready-fd 3` (added here). */
  args: string[];
  /** Appended to (created 0644): the helper's stdout and stderr. */
  logFile: string;
  /** How errors name the helper, e.g. "vkfs" or "vkagent serve". */
  name: string;
  timeoutMs?: number;
}

/** Resolves with the pid the helper reports (its long-lived process); rejects, killing it, otherwise. */
export function spawnReady(o: SpawnReadyOptions): Promise<number> {
  const timeoutMs = o.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const log = fs.openSync(o.logFile, 'a', 0o644);
    let child;
    try {
      child = spawn(o.binary, [...o.args, '--ready-fd', '3'], { detached: true, stdio: ['ignore', log, log, 'pipe'], cwd: '/' });
    } finally {
      fs.closeSync(log);
    }
    let text = '';
    let done = false;
    const pipe = child.stdio[3] as Readable;
    const finish = (err: Error | undefined, pid?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      pipe.destroy();
      child.unref();
      if (err) {
        if (child.exitCode === null && child.pid) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        reject(err);
      } else resolve(pid!);
    };
    const timer = setTimeout(() => finish(new Error(`${o.name} did not answer within ${timeoutMs} ms`)), timeoutMs);
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => {
      text += d;
      const ok = /^ok (\d+)\n/.exec(text);
      const bad = /^error:? (.*)\n/.exec(text);
      if (ok) finish(undefined, Number(ok[1]));
      else if (bad) finish(new Error(`${o.name}: ${bad[1]}`));
    });
    pipe.on('end', () => finish(new Error(`${o.name} exited before it was ready${text ? `: ${text.trim()}` : ''}`)));
    child.on('error', (e) => finish(e));
  });
}
