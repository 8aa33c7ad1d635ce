// The shim's command line, parsed the way Go's `flag` package parses it (containerd and the
// runc shim are Go): `-x v`, `-x=v`, `--x v`, `--x=v`; booleans as `-b` or `-b=false`; the
// first non-flag argument (or everything after `--`) ends the flags, and the first of the
// rest is the action. Reference §1.2 and §1.3.
import { InvalidArgumentError } from '../../runtime/errors';

/**
 * The environment variables containerd sets for the shim (§1.3) and the launcher forwards,
 * plus VKERNEL_SHIM_PROTOCOL (grpc|ttrpc|auto: forces the shim protocol, docs/protocol.md),
 * which an operator sets in containerd's environment.
 */
export const SHIM_ENV_NAMES = ['TTRPC_ADDRESS', 'GRPC_ADDRESS', 'NAMESPACE', 'MAX_SHIM_VERSION', 'VKERNEL_SHIM_PROTOCOL'] as const;
export type ShimEnvName = (typeof SHIM_ENV_NAMES)[number];
export type ShimEnv = Partial<Record<ShimEnvName, string>>;

export function pickShimEnv(env: NodeJS.ProcessEnv): ShimEnv {
  const out: ShimEnv = {};
  for (const k of SHIM_ENV_NAMES) if (env[k] !== undefined) out[k] = env[k];
  return out;
}

export interface ShimFlags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
  version: boolean;
  info: boolean;
  help: boolean;
  /** Arguments after the flags; the first is the action. */
  rest: string[];
}

type FlagSpec = { kind: 'string'; key: 'namespace' | 'address' | 'publishBinary' | 'id' | 'bundle' | 'socket' } | { kind: 'bool'; key: 'debug' | 'version' | 'info' };

const FLAGS: Record<string, FlagSpec> = {
  namespace: { kind: 'string', key: 'namespace' },
  address: { kind: 'string', key: 'address' },
  'publish-binary': { kind: 'string', key: 'publishBinary' },
  id: { kind: 'string', key: 'id' },
  bundle: { kind: 'string', key: 'bundle' },
  socket: { kind: 'string', key: 'socket' },
  debug: { kind: 'bool', key: 'debug' },
  v: { kind: 'bool', key: 'version' },
  version: { kind: 'bool', key: 'version' },
  info: { kind: 'bool', key: 'info' },
};

export class ShimUsageError extends InvalidArgumentError {}

/** Go's strconv.ParseBool. */
function parseBool(flag: string, v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new ShimUsageError(`invalid boolean value ${JSON.stringify(v)} for -${flag}: parse error`, flag);
}

/** Parses the arguments after argv[0]. Defaults match the runc shim (publish-binary "containerd"). */
export function parseFlags(args: readonly string[]): ShimFlags {
  const f: ShimFlags = {
    namespace: '',
    address: '',
    publishBinary: 'containerd',
    id: '',
    bundle: '',
    socket: '',
    debug: false,
    version: false,
    info: false,
    help: false,
    rest: [],
  };
  let i = 0;
  while (i < args.length) {
    const s = args[i];
    if (s.length < 2 || s[0] !== '-') break;
    let dashes = 1;
    if (s[1] === '-') {
      dashes = 2;
      if (s.length === 2) {
        i++;
        break;
      }
    }
    let name = s.slice(dashes);
    if (name.length === 0 || name[0] === '-' || name[0] === '=') throw new ShimUsageError(`bad flag syntax: ${s}`);
    i++;
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const spec = FLAGS[name];
    if (!spec) {
      if (name === 'h' || name === 'help') {
        f.help = true;
        continue;
      }
      throw new ShimUsageError(`flag provided but not defined: -${name}`, name);
    }
    if (spec.kind === 'bool') {
      f[spec.key] = value === undefined ? true : parseBool(name, value);
      continue;
    }
    if (value === undefined) {
      if (i >= args.length) throw new ShimUsageError(`flag needs an argument: -${name}`, name);
      value = args[i++];
    }
    f[spec.key] = value;
  }
  f.rest = args.slice(i);
  return f;
}

export const USAGE = `Usage of containerd-shim-vkernel-v2:
  -address string
    	grpc address back to main containerd
  -bundle string
    	path to the bundle if not workdir
  -debug
    	enable debug output in logs
  -id string
    	id of the task
  -info
    	get the option protobuf from stdin, print the shim info protobuf to stdout, and exit
  -namespace string
    	namespace that owns the shim
  -publish-binary string
    	path to publish binary (used for publishing events) (default "containerd")
  -socket string
    	socket path to serve
  -v	show the shim version and exit
actions: start, delete
`;

export type ShimAction = 'start' | 'delete' | 'version' | 'info' | 'help';

/** One invocation, validated for its action, with the environment folded in. */
export interface ShimInvocation {
  action: ShimAction;
  namespace: string;
  /** containerd's gRPC socket path (-address), no scheme. */
  address: string;
  /** TTRPC_ADDRESS, or `<address>.ttrpc` when containerd did not set it. */
  ttrpcAddress: string;
  /** GRPC_ADDRESS (containerd 1.7+). */
  grpcAddress?: string;
  publishBinary: string;
  id: string;
  /** -bundle, else the working directory (containerd runs the shim in the bundle). */
  bundle: string;
  debug: boolean;
  socket: string;
  maxShimVersion?: number;
  /** VKERNEL_SHIM_PROTOCOL, as set (validated by the negotiation, shim/bootstrap/negotiate.ts). */
  shimProtocol?: string;
}

/**
 * The action and its inputs. Flags win over the environment (NAMESPACE is only a fallback
 * for -namespace). Errors name what is missing: start needs -namespace, -id and -address;
 * delete needs -namespace and -id.
 */
export function resolveInvocation(args: readonly string[], env: ShimEnv, cwd: string): ShimInvocation {
  const f = parseFlags(args);
  const namespace = f.namespace || env.NAMESPACE || '';
  let action: ShimAction;
  if (f.help) action = 'help';
  else if (f.version) action = 'version';
  else if (f.info) action = 'info';
  else {
    const word = f.rest[0];
    if (word === undefined) throw new ShimUsageError('missing action: expected start or delete (or -v, -info)');
    if (word !== 'start' && word !== 'delete') throw new ShimUsageError(`unknown action ${JSON.stringify(word)}: expected start or delete`);
    action = word;
  }
  const max = env.MAX_SHIM_VERSION !== undefined ? Number(env.MAX_SHIM_VERSION) : undefined;
  const inv: ShimInvocation = {
    action,
    namespace,
    address: f.address,
    ttrpcAddress: env.TTRPC_ADDRESS || (f.address ? `${f.address}.ttrpc` : ''),
    grpcAddress: env.GRPC_ADDRESS || undefined,
    publishBinary: f.publishBinary,
    id: f.id,
    bundle: f.bundle || cwd,
    debug: f.debug,
    socket: f.socket,
    maxShimVersion: max !== undefined && Number.isFinite(max) ? max : undefined,
  };
  if (env.VKERNEL_SHIM_PROTOCOL) inv.shimProtocol = env.VKERNEL_SHIM_PROTOCOL;
  if (action === 'start' || action === 'delete') {
    if (!namespace) throw new ShimUsageError('shim namespace cannot be empty (-namespace)', 'namespace');
    if (!inv.id) throw new ShimUsageError(`${action}: -id is required`, 'id');
    if (inv.id.includes('\0') || namespace.includes('\0') || namespace.includes('/') || namespace === '.' || namespace === '..') {
      throw new ShimUsageError(`${action}: invalid -id or -namespace`, 'id');
    }
    if (!inv.bundle) throw new ShimUsageError(`${action}: no bundle (-bundle or the working directory)`, 'bundle');
  }
  if (action === 'start' && !inv.address) throw new ShimUsageError('start: -address is required', 'address');
  return inv;
}
