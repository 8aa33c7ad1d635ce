// What containerd writes to the shim's stdin on `start` (and `-info`), reference §1.9:
//   1.6–2.2  nothing, or the runtime options as a protobuf google.protobuf.Any
//   2.3+     a containerd.runtime.bootstrap.v1.BootstrapParams (options in `extensions`)
// Both are binary protobuf, and BootstrapParams decodes "successfully" as an Any (instance_id
// lands in type_url, namespace in value). They are told apart by field numbers: an Any has
// only fields 1 and 2, BootstrapParams always sends some of 3..9.
//
// protobufjs (shim/proto) is loaded only when stdin is not empty: `ctr run` sends nothing, and
// a cold `start` should not pay ~20 ms for a codec it does not use.
import { InvalidArgumentError } from '../../runtime/errors';
import type * as ProtoModule from '../proto';
import type { Any, ProtoTypes } from '../proto';

export type BootstrapParams = ProtoTypes['containerd.runtime.bootstrap.v1.BootstrapParams'];

export type StartInput =
  | { kind: 'empty' }
  | { kind: 'options'; options: Any }
  | { kind: 'bootstrap'; params: BootstrapParams; options?: Any };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const proto = (): typeof ProtoModule => require('../proto') as typeof ProtoModule;

/** The type URL of the options containerd builds from a runtime's `options` table (§7). */
export const RUNTIME_OPTIONS_TYPE = 'runtimeoptions.v1.Options';

/**
 * The field numbers at the top level of a protobuf message, in wire order. Throws
 * InvalidArgumentError on anything that is not well-formed proto3 wire data.
 */
export function protoFieldNumbers(buf: Uint8Array): number[] {
  const out: number[] = [];
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new InvalidArgumentError('stdin: truncated protobuf varint');
      const b = buf[pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new InvalidArgumentError('stdin: protobuf varint longer than 10 bytes');
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new InvalidArgumentError('stdin: protobuf field number 0');
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = varint(); // read before adding: `pos += varint()` would use the old pos
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new InvalidArgumentError(`stdin: protobuf wire type ${wire} (field ${field}) is not proto3`);
    }
    if (pos > buf.length) throw new InvalidArgumentError(`stdin: protobuf field ${field} runs past the end`);
    out.push(field);
  }
  return out;
}

/** Classifies and decodes stdin; an empty buffer is `{ kind: 'empty' }`. */
export function decodeStartInput(buf: Uint8Array): StartInput {
  if (buf.length === 0) return { kind: 'empty' };
  const fields = protoFieldNumbers(buf);
  if (fields.some((f) => f >= 3)) {
    const params = proto().decode('containerd.runtime.bootstrap.v1.BootstrapParams', buf);
    const ext = params.extensions.find((e) => e.value && e.value.type_url);
    return { kind: 'bootstrap', params, options: ext?.value ?? undefined };
  }
  const options = proto().decode('google.protobuf.Any', buf);
  if (!options.type_url) throw new InvalidArgumentError('stdin: runtime options Any without a type_url');
  return { kind: 'options', options };
}

/** The options Any of any input form, if one came. */
export function inputOptions(input: StartInput): Any | undefined {
  return input.kind === 'empty' ? undefined : input.options;
}

/**
 * ConfigPath from runtimeoptions.v1.Options (CRI's `options` table, `ctr --runtime-config-path`).
 * Other option types (containerd.runc.v1.Options) carry no vkernel config: undefined.
 */
export function configPathOf(options: Any | undefined): string | undefined {
  if (!options) return undefined;
  const p = proto();
  if (p.anyTypeName(options.type_url) !== RUNTIME_OPTIONS_TYPE) return undefined;
  const o = p.decode(RUNTIME_OPTIONS_TYPE, options.value ?? Buffer.alloc(0));
  return o.config_path || undefined;
}
