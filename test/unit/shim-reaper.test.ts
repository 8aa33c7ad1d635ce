// The reaper in a process of its own (it becomes a child subreaper): orphans it watches are
// reaped with the right status (exit code, 128+signal), Node's own children keep their exit
// events, and unknown orphans are swept after the grace period without losing their status
// (for a while: a late watch after the TTL gets the unknown status, never a stale one).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

it('reaps watched orphans and unknown ones, and leaves Node its own children', () => {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'shim-reaper-scenario.js')], { encoding: 'utf8', timeout: 20_000 });
  const r = JSON.parse(out);
  expect(r.quick).toBe(0);
  expect(r.seven).toBe(7);
  expect(r.victim).toBe(137);
  expect(r.nodeCodes).toEqual([3, 4, 5]);
  expect(r.orphanGone).toBe(true);
  expect(r.lateStatus).toBe(0);
  expect(r.staleStatus).toBe(255); // kept past its TTL: dropped, the status is unknown
  expect(r.toldPids).toEqual(r.pids);
});
