// VKERNEL_TRACE=1: one stderr line per phase with the milliseconds since the process
// started, so `make bench` can say where each millisecond of `vkernel run` goes. A process
// whose stderr goes nowhere (the shim daemon) sends the lines elsewhere with setTraceSink.

const enabled = !!process.env.VKERNEL_TRACE;
let last = 0;
let sink: ((line: string) => void) | undefined;

export function traceEnabled(): boolean {
  return enabled;
}

/** Where trace lines go instead of stderr (undefined: back to stderr). */
export function setTraceSink(fn: ((line: string) => void) | undefined): void {
  sink = fn;
}

/**
 * Milliseconds since the process started. process.uptime, not perf_hooks' performance.now:
 * loading perf_hooks costs every shim daemon ~1 MiB of RSS for a clock.
 */
export function traceNow(): number {
  return process.uptime() * 1000;
}

export function trace(phase: string): void {
  if (!enabled) return;
  const now = traceNow();
  const line = `vkernel-trace ${phase} ${now.toFixed(1)} +${(now - last).toFixed(1)}`;
  last = now;
  if (sink) sink(line);
  else process.stderr.write(`${line}\n`);
}
