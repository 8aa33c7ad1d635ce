// Run as its own process by shim-reaper.test.ts (the reaper makes its process a child
// subreaper, which must not leak into a shared jest worker). Prints one JSON line.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { Reaper, type ExitStatus } from '../../shim/reaper';

/** Runs sh -c script (which prints a background pid and exits) and returns that pid. */
function orphan(script: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.on('close', () => (out.trim() ? resolve(Number(out.trim())) : reject(new Error('no pid'))));
  });
}

function nodeChildExit(code: number): Promise<number | null> {
  return new Promise((resolve) => spawn('sh', ['-c', `sleep 0.05; exit ${code}`]).on('exit', (c) => resolve(c)));
}

async function main(): Promise<void> {
  // Signal listeners do not keep Node alive (the daemon has its listening socket for that).
  const keepAlive = setInterval(() => undefined, 1000);
  const told: ExitStatus[] = [];
  const reaper = new Reaper({ orphanGraceMs: 200, unclaimedTtlMs: 1500 });
  reaper.subscribe((e) => told.push(e));
  const quick = await orphan('sleep 0.2 >/dev/null & echo $!');
  const quickExit = reaper.watch(quick);
  const seven = await orphan('(sleep 0.1; exit 7) >/dev/null & echo $!');
  const sevenExit = reaper.watch(seven);
  const victim = await orphan('sleep 5 >/dev/null & echo $!');
  const victimExit = reaper.watch(victim);
  // Node's own children exit meanwhile: their 'exit' must still come (no stolen status).
  const nodeCodes = Promise.all([nodeChildExit(3), nodeChildExit(4), nodeChildExit(5)]);
  process.kill(victim, 'SIGKILL');
  const unknown = await orphan('sleep 0.1 >/dev/null & echo $!');
  const results = {
    quick: (await quickExit).status,
    seven: (await sevenExit).status,
    victim: (await victimExit).status,
    nodeCodes: await nodeCodes,
  };
  // The unknown orphan is reaped by the sweep after the grace period...
  const deadline = Date.now() + 3000;
  while (fs.existsSync(`/proc/${unknown}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const orphanGone = !fs.existsSync(`/proc/${unknown}`);
  // ... and a late watch still gets its status.
  const late = await reaper.watch(unknown);
  // Not forever: after the TTL the kept exit is dropped (its pid may belong to a new process).
  const stale = await orphan('sleep 0.1 >/dev/null & echo $!');
  while (fs.existsSync(`/proc/${stale}`) && Date.now() < deadline + 3000) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1600));
  const staleStatus = (await reaper.watch(stale)).status;
  reaper.close();
  clearInterval(keepAlive);
  process.stdout.write(
    JSON.stringify({ ...results, orphanGone, lateStatus: late.status, staleStatus, toldPids: [...new Set(told.map((e) => e.pid))].sort(), pids: [quick, seven, victim, unknown, stale].sort() }) + '\n',
  );
}

main().catch((err) => {
  process.stderr.write(String(err.stack) + '\n');
  process.exit(1);
});
