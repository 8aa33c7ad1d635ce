export { openProcessIO, type ProcessIO, type ProcessIOOptions, type ChildStdio } from './process-io';
export { parseStdio, type StdioRequest, type StdioSpec, type OutputSpec } from './uri';
export { BinaryLogger } from './binary';
export { ConsoleSocket, ConsoleCopy } from './console';
