// `vkernel check`: a host preflight (docs/containerd.md). The public surface of runtime/check.
//
//   const r = await runChecks({ address: '/run/containerd/containerd.sock' });
//   process.stdout.write(formatReport(r));   // or JSON.stringify(r)
//   process.exitCode = exitCode(r);          // 1 when a row failed
import { DEFAULT_ADDRESS } from './containerd-config';
import { containerdRows } from './containerd-rows';
import { hostRows } from './host-rows';
import { realProbe, type CheckProbe } from './probe';
import { report, type CheckReport } from './report';

export { exitCode, formatReport, type CheckReport, type CheckRow, type CheckStatus } from './report';
export type { CheckProbe } from './probe';
export * from './containerd-config';
export { shimConfigExample } from './shim-config-example';

export interface CheckOptions {
  /** containerd's gRPC socket (default /run/containerd/containerd.sock). */
  address?: string;
  /** The host seam (default: the real machine). */
  probe?: CheckProbe;
}

export async function runChecks(o: CheckOptions = {}): Promise<CheckReport> {
  const p = o.probe ?? realProbe();
  const [host, containerd] = await Promise.all([hostRows(p), containerdRows(p, o.address ?? DEFAULT_ADDRESS)]);
  return report([...host, ...containerd]);
}
