// Protobuf codec for every containerd message the shim speaks. The descriptors come from
// proto/bundle.json, generated ahead of time from proto/**/*.proto by proto/generate.ts
// (`make proto`), so a cold shim only runs protobufjs/light's Root.fromJSON (no .proto parser).
//
// Shapes: field names keep their .proto spelling (`exec_id`, `type_url`). `decode` returns
// every field (proto3 defaults), absent sub-messages as null, 64-bit integers and enums as
// numbers, bytes as Buffer; see proto/types.ts for the generated interfaces.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs/light';
import { InvalidArgumentError } from '../runtime/errors';
import { PACKAGE_ROOT } from '../runtime/paths';
import type { ProtoServiceName, ProtoServices, ProtoTypeName, ProtoTypes } from '../proto/types';

export type { ProtoServiceName, ProtoServices, ProtoTypeName, ProtoTypes } from '../proto/types';

/** What `encode` accepts for a message: any field may be left out (or null); bytes as any Uint8Array. */
export type ProtoInput<T> = T extends Uint8Array
  ? Uint8Array
  : T extends ReadonlyArray<infer U>
    ? ReadonlyArray<ProtoInput<U>>
    : T extends object
      ? { [K in keyof T]?: ProtoInput<NonNullable<T[K]>> | null }
      : T;

export type Any = ProtoTypes['google.protobuf.Any'];
export type Timestamp = ProtoTypes['google.protobuf.Timestamp'];

/** containerd.v1.types.Status, the task/process state in State and Tasks.Get. */
export const TaskStatus = { UNKNOWN: 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5 } as const;

/** Where `make proto` writes the bundle: <package root>/proto/bundle.json. */
export const DEFAULT_BUNDLE_PATH = path.join(PACKAGE_ROOT, 'proto', 'bundle.json');

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: true };

let root: protobuf.Root | undefined;
const types = new Map<string, protobuf.Type>();

/**
 * Loads the descriptor bundle (once; later calls return the same root). Types are resolved
 * lazily, on first use of each (Root.fromJSON would resolve all ~130 up front: ~10 ms more at
 * boot). Called implicitly by everything else.
 */
export function loadBundle(file: string = DEFAULT_BUNDLE_PATH): protobuf.Root {
  if (root) return root;
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as protobuf.INamespace;
  const r = new protobuf.Root();
  r.addJSON(json.nested ?? {});
  root = r;
  return r;
}

/** Resolves a type and every message type it contains (fields, features, defaults) before first use. */
function prepare(t: protobuf.Type, seen = new Set<protobuf.Type>()): void {
  if (seen.has(t)) return;
  seen.add(t);
  t.resolveAll();
  for (const f of t.fieldsArray) if (f.resolvedType instanceof protobuf.Type) prepare(f.resolvedType, seen);
}

export function protoRoot(): protobuf.Root {
  return root ?? loadBundle();
}

/** Exact lookup by full name (protobufjs' own lookup also matches partial names anywhere below). */
function lookupExact(fullName: string): protobuf.ReflectionObject | null {
  let cur: protobuf.ReflectionObject | null = protoRoot();
  for (const seg of fullName.split('.')) {
    if (!(cur instanceof protobuf.Namespace)) return null;
    cur = cur.get(seg);
    if (!cur) return null;
  }
  return cur;
}

export function hasType(typeName: string): boolean {
  return types.has(typeName) || lookupExact(typeName) instanceof protobuf.Type;
}

/** The reflected type; throws InvalidArgumentError for a name the bundle does not hold. */
export function lookupType(typeName: string): protobuf.Type {
  let t = types.get(typeName);
  if (!t) {
    const found = lookupExact(typeName);
    if (!(found instanceof protobuf.Type)) throw new InvalidArgumentError(`unknown protobuf type ${typeName}`, 'type');
    t = found;
    prepare(t);
    types.set(typeName, t);
  }
  return t;
}

function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/**
 * Encodes a plain object as `typeName`. Lenient like protobufjs' fromObject: numeric strings
 * are accepted for numbers, enum names for enums, and a string for a bytes field is read as base64.
 */
export function encode<N extends ProtoTypeName>(typeName: N, obj: ProtoInput<ProtoTypes[N]>): Buffer {
  const type = lookupType(typeName);
  try {
    return asBuffer(type.encode(type.fromObject(obj as Record<string, unknown>)).finish());
  } catch (err) {
    throw new InvalidArgumentError(`cannot encode ${typeName}: ${(err as Error).message}`, typeName, { cause: err });
  }
}

/** Decodes `buf` as `typeName`; malformed input throws InvalidArgumentError. Unknown fields are skipped. */
export function decode<N extends ProtoTypeName>(typeName: N, buf: Uint8Array): ProtoTypes[N] {
  const type = lookupType(typeName);
  let msg: protobuf.Message;
  try {
    // The base Reader, not protobufjs' Node BufferReader: that one silently truncates a string
    // whose length runs past the end instead of failing.
    msg = type.decode(new protobuf.Reader(buf));
  } catch (err) {
    throw new InvalidArgumentError(`malformed ${typeName}: ${(err as Error).message}`, typeName, { cause: err });
  }
  return type.toObject(msg, TO_OBJECT) as ProtoTypes[N];
}

/** The message name an Any type URL refers to: the part after the last '/' (bare URLs are names already). */
export function anyTypeName(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/**
 * Packs `obj` (encoded as `typeName`) into an Any with `typeUrl`. containerd expects bare names
 * ("containerd.events.TaskExit", "io.containerd.cgroups.v1.Metrics"): 1.6 cannot resolve
 * "type.googleapis.com/..." URLs.
 */
export function anyPack<N extends ProtoTypeName>(typeUrl: string, typeName: N, obj: ProtoInput<ProtoTypes[N]>): Any {
  return { type_url: typeUrl, value: encode(typeName, obj) };
}

/** anyPack with the bare type name as the URL, which is what containerd uses. */
export function anyOf<N extends ProtoTypeName>(typeName: N, obj: ProtoInput<ProtoTypes[N]>): Any {
  return anyPack(typeName, typeName, obj);
}

/** Unpacks an Any that must hold `typeName` (bare or prefixed URL); anything else is InvalidArgument. */
export function anyUnpack<N extends ProtoTypeName>(any: ProtoInput<Any>, typeName: N): ProtoTypes[N] {
  const url = any.type_url ?? '';
  if (anyTypeName(url) !== typeName) {
    throw new InvalidArgumentError(`any: expected ${typeName}, got type_url ${JSON.stringify(url)}`, 'type_url');
  }
  return decode(typeName, any.value ?? Buffer.alloc(0));
}

/** Unpacks an Any by its own type URL; throws InvalidArgumentError when the bundle lacks that type. */
export function anyDecode(any: ProtoInput<Any>): { typeName: string; value: unknown } {
  const typeName = anyTypeName(any.type_url ?? '');
  if (!typeName || !hasType(typeName)) {
    throw new InvalidArgumentError(`any: unknown type_url ${JSON.stringify(any.type_url ?? '')}`, 'type_url');
  }
  return { typeName, value: decode(typeName as ProtoTypeName, any.value ?? Buffer.alloc(0)) };
}

/** A Timestamp for a Date or epoch milliseconds (default: now). */
export function timestamp(at: Date | number = Date.now()): Timestamp {
  const ms = typeof at === 'number' ? at : at.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** A Timestamp from epoch nanoseconds, without losing precision. */
export function timestampFromNanos(ns: bigint): Timestamp {
  const seconds = ns / 1_000_000_000n;
  let nanos = ns % 1_000_000_000n;
  if (nanos < 0n) return { seconds: Number(seconds - 1n), nanos: Number(nanos + 1_000_000_000n) };
  return { seconds: Number(seconds), nanos: Number(nanos) };
}

/** The Date of a Timestamp; null for an absent or zero one (containerd's "never"). */
export function toDate(ts: ProtoInput<Timestamp> | null | undefined): Date | null {
  if (!ts) return null;
  const seconds = Number(ts.seconds ?? 0);
  const nanos = Number(ts.nanos ?? 0);
  if (seconds === 0 && nanos === 0) return null;
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
}

/** Request and response type names of one method of a bundled service. */
export function methodTypes(serviceName: string, method: string): { requestType: ProtoTypeName; responseType: ProtoTypeName } {
  const svc = lookupExact(serviceName);
  const m = svc instanceof protobuf.Service ? svc.methods[method] : undefined;
  if (!m) throw new InvalidArgumentError(`unknown method ${serviceName}/${method}`, 'method');
  m.resolve();
  const name = (t: protobuf.Type | null | undefined, fallback: string): ProtoTypeName =>
    (t ? t.fullName.replace(/^\./, '') : fallback) as ProtoTypeName;
  return { requestType: name(m.resolvedRequestType, m.requestType), responseType: name(m.resolvedResponseType, m.responseType) };
}

/** Method names of a bundled service. */
export function serviceMethods<S extends ProtoServiceName>(serviceName: S): Array<keyof ProtoServices[S] & string> {
  const svc = lookupExact(serviceName);
  if (!(svc instanceof protobuf.Service)) throw new InvalidArgumentError(`unknown service ${serviceName}`, 'service');
  return Object.keys(svc.methods) as Array<keyof ProtoServices[S] & string>;
}
