import { Logger } from './log';
import { StateStore } from './state/store';
import { realSys, type Sys } from './sys';

/** What every lifecycle verb needs; built once by the CLI or the shim. */
export interface RuntimeContext {
  store: StateStore;
  log: Logger;
  sys: Sys;
  systemdCgroup: boolean;
}

export function makeContext(opts: { root: string; log?: Logger; sys?: Sys; systemdCgroup?: boolean }): RuntimeContext {
  return {
    store: new StateStore(opts.root),
    log: opts.log ?? new Logger(),
    sys: opts.sys ?? realSys,
    systemdCgroup: !!opts.systemdCgroup,
  };
}
