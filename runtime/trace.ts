// VKERNEL_TRACE=1: one stderr line per phase with the milliseconds since the process
// started, so `make bench` can say where each millisecond of `vkernel run` goes.
import { performance } from 'node:perf_hooks';

const enabled = !!process.env.VKERNEL_TRACE;
let last = 0;

export function trace(phase: string): void {
  if (!enabled) return;
  const now = performance.now();
  process.stderr.write(`vkernel-trace ${phase} ${now.toFixed(1)} +${(now - last).toFixed(1)}\n`);
  last = now;
}
