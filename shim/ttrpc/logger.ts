// What the ttrpc server and client log through. runtime/log.ts's Logger fits it.
export interface TtrpcLogger {
  debug(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const silentLogger: TtrpcLogger = {
  debug() {},
  warn() {},
  error() {},
};
