import { Logger } from './log';
import { StateStore } from './state/store';
import { realSys, type Sys } from './sys';
import type { SharedAgent } from './vkernel/syscalls';

/** What every lifecycle verb needs; built once by the CLI or the shim. */
export interface RuntimeContext {
  store: StateStore;
  log: Logger;
  sys: Sys;
  systemdCgroup: boolean;
  /**
   * The vkernel syscall agent shared by the containers this caller creates (a shim daemon's,
   * for its pod): resolves with its socket, starting it on first use. Unset: one agent per
   * container (the CLI).
   */
  vkernelAgent?: () => Promise<SharedAgent>;
}

export function makeContext(opts: { root: string; log?: Logger; sys?: Sys; systemdCgroup?: boolean; vkernelAgent?: () => Promise<SharedAgent> }): RuntimeContext {
  return {
    store: new StateStore(opts.root),
    log: opts.log ?? new Logger(),
    sys: opts.sys ?? realSys,
    systemdCgroup: !!opts.systemdCgroup,
    ...(opts.vkernelAgent ? { vkernelAgent: opts.vkernelAgent } : {}),
  };
}
