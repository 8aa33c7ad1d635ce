// Foreground run/exec: signals sent to us go to the workload, as runc's signal proxy does.
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGCONT', 'SIGWINCH'];

export function forwardSignals(): { target(pid: number): void; dispose(): void } {
  let pid = 0;
  const pending: NodeJS.Signals[] = [];
  const handler = (sig: NodeJS.Signals) => {
    if (sig === 'SIGWINCH') return; // the pty proxy in vkinit follows window size itself
    if (pid) sendTo(pid, sig);
    else pending.push(sig);
  };
  for (const s of FORWARDED) process.on(s, handler);
  return {
    target(p) {
      pid = p;
      for (const s of pending.splice(0)) sendTo(pid, s);
    },
    dispose() {
      for (const s of FORWARDED) process.off(s, handler);
    },
  };
}

function sendTo(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}
