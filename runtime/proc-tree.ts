// Walking a process tree through /proc/<pid>/task/<tid>/children: the supervisors' stop
// paths use it to find every process of a helper (keeper, worker, standby, and one forked
// by a standby that just took over) without reading all of /proc.
import * as fs from 'node:fs';

/**
 * Children of `pid` (every thread's /proc/<pid>/task/<tid>/children); undefined when the
 * kernel has no such files (CONFIG_PROC_CHILDREN off) and the caller must scan /proc.
 */
export function childrenOf(pid: number): number[] | undefined {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return []; // gone
  }
  const out: number[] = [];
  for (const tid of tids) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && fs.existsSync(`/proc/${pid}/task/${tid}`)) return undefined;
      continue; // the thread or process went away
    }
    for (const c of text.split(' ')) if (c.trim() !== '') out.push(Number(c));
  }
  return out;
}
