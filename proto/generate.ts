// Regenerates proto/bundle.json (the descriptor shim/proto.ts loads at startup, so the shim
// never parses .proto text at runtime) and proto/types.ts (TypeScript shapes of every message,
// as shim/proto.ts decodes them) from proto/**/*.proto.
//
//   make proto        # = npx tsc -p proto/tsconfig.json && node dist/proto/generate.js
//   node dist/proto/generate.js --check   # exit 1 if the committed files are stale
//
// Field names keep their .proto spelling (keepCase), as containerd's JSON and Go code do.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

/** The proto/ source directory, from both proto/generate.ts and dist/proto/generate.js. */
export function protoDir(): string {
  for (const dir of [__dirname, path.resolve(__dirname, '..', '..', 'proto')]) {
    if (fs.existsSync(path.join(dir, 'ttrpc', 'request.proto'))) return dir;
  }
  throw new Error(`cannot find the proto/ directory from ${__dirname}`);
}

/** Sub-directories of proto/ that are not the shim's: cri/ is the CRI API the tests speak (test/harness/cri.ts). */
const NOT_BUNDLED = new Set(['cri']);

function protoFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && d === dir && NOT_BUNDLED.has(e.name)) continue;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.proto')) out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Parses every .proto under `dir` into one resolved Root. */
export function loadProtoSources(dir: string = protoDir()): protobuf.Root {
  const root = new protobuf.Root();
  // Imports are written relative to proto/ (google/protobuf/* come bundled with protobufjs).
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(dir, target));
  root.loadSync(protoFiles(dir), { keepCase: true });
  root.resolveAll();
  return root;
}

/** The JSON text of proto/bundle.json. */
export function bundleJson(root: protobuf.Root): string {
  return JSON.stringify(root.toJSON({ keepComments: false })) + '\n';
}

// ---- proto/types.ts ---------------------------------------------------------------------

const SCALARS: Record<string, string> = {
  double: 'number',
  float: 'number',
  int32: 'number',
  uint32: 'number',
  sint32: 'number',
  fixed32: 'number',
  sfixed32: 'number',
  // 64-bit integers decode as JS numbers (exact up to 2^53).
  int64: 'number',
  uint64: 'number',
  sint64: 'number',
  fixed64: 'number',
  sfixed64: 'number',
  bool: 'boolean',
  string: 'string',
  bytes: 'Uint8Array',
};

/** Type expression for a field's element. Messages go through ProtoTypes, so a name inside
 *  a namespace can never be shadowed (io.containerd.* vs containerd.*). */
function refType(field: protobuf.Field): string {
  const scalar = SCALARS[field.type];
  if (scalar && !field.resolvedType) return scalar;
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) return 'number';
  if (t instanceof protobuf.Type) return `ProtoTypes['${t.fullName.replace(/^\./, '')}']`;
  throw new Error(`unresolved type ${field.type} of ${field.fullName}`);
}

function fieldType(field: protobuf.Field): { optional: boolean; ts: string } {
  if (field instanceof protobuf.MapField) {
    const v = refType(field);
    return { optional: false, ts: `{ [key: string]: ${v} }` };
  }
  const base = refType(field);
  if (field.repeated) return { optional: false, ts: `${base}[]` };
  // proto3 `optional` fields live in a synthetic oneof and are absent when unset.
  if (field.partOf) return { optional: true, ts: base };
  if (field.resolvedType instanceof protobuf.Type) return { optional: false, ts: `${base} | null` };
  return { optional: false, ts: base };
}

interface NsNode {
  children: Map<string, NsNode>;
  lines: string[];
}

function collect(ns: protobuf.NamespaceBase, node: NsNode, types: protobuf.Type[], services: protobuf.Service[]): void {
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Type) {
      types.push(obj);
      const lines = [`interface ${obj.name} {`];
      for (const f of obj.fieldsArray) {
        const { optional, ts } = fieldType(f);
        lines.push(`  ${f.name}${optional ? '?' : ''}: ${ts};`);
      }
      lines.push('}');
      node.lines.push(...lines);
      if (obj.nestedArray.length) {
        const child: NsNode = { children: new Map(), lines: [] };
        node.children.set(obj.name, child);
        collect(obj, child, types, services);
      }
    } else if (obj instanceof protobuf.Service) {
      services.push(obj);
    } else if (obj instanceof protobuf.Namespace && !(obj instanceof protobuf.Enum)) {
      let child = node.children.get(obj.name);
      if (!child) {
        child = { children: new Map(), lines: [] };
        node.children.set(obj.name, child);
      }
      collect(obj, child, types, services);
    }
  }
}

function renderNs(name: string, node: NsNode, indent: string, top: boolean): string[] {
  const out = [`${indent}${top ? 'export declare namespace' : 'namespace'} ${name} {`];
  for (const l of node.lines) out.push(indent + '  ' + l);
  for (const [child, n] of node.children) out.push(...renderNs(child, n, indent + '  ', false));
  out.push(`${indent}}`);
  return out;
}

/** The text of proto/types.ts. */
export function typesTs(root: protobuf.Root): string {
  const top: NsNode = { children: new Map(), lines: [] };
  const types: protobuf.Type[] = [];
  const services: protobuf.Service[] = [];
  collect(root, top, types, services);
  const out = [
    '// Generated by proto/generate.ts from proto/**/*.proto: do not edit, run `make proto`.',
    '// Shapes are what shim/proto.ts `decode` returns: every field present (proto3 defaults),',
    '// absent messages as null, 64-bit integers and enums as numbers, bytes as Uint8Array.',
    '',
  ];
  for (const [name, node] of top.children) out.push(...renderNs(name, node, '', true), '');
  out.push('/** Every message, by full protobuf name. */', 'export interface ProtoTypes {');
  for (const t of types) {
    const full = t.fullName.replace(/^\./, '');
    out.push(`  '${full}': ${full};`);
  }
  out.push('}', '', 'export type ProtoTypeName = keyof ProtoTypes;', '');
  out.push('/** Every service: method name -> full request and response type names. */', 'export interface ProtoServices {');
  for (const s of services) {
    out.push(`  '${s.fullName.replace(/^\./, '')}': {`);
    for (const m of s.methodsArray) {
      const req = m.resolvedRequestType!.fullName.replace(/^\./, '');
      const res = m.resolvedResponseType!.fullName.replace(/^\./, '');
      const streaming = m.requestStream || m.responseStream ? ' streaming: true;' : '';
      out.push(`    ${m.name}: { request: '${req}'; response: '${res}';${streaming} };`);
    }
    out.push('  };');
  }
  out.push('}', '', 'export type ProtoServiceName = keyof ProtoServices;', '');
  return out.join('\n');
}

export function main(argv: string[]): number {
  const dir = protoDir();
  const root = loadProtoSources(dir);
  const outputs: Array<[string, string]> = [
    [path.join(dir, 'bundle.json'), bundleJson(root)],
    [path.join(dir, 'types.ts'), typesTs(root)],
  ];
  const check = argv.includes('--check');
  let stale = 0;
  for (const [file, text] of outputs) {
    const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (old === text) continue;
    if (check) {
      process.stderr.write(`${path.relative(process.cwd(), file)} is stale: run make proto\n`);
      stale++;
      continue;
    }
    fs.writeFileSync(file + '.tmp', text);
    fs.renameSync(file + '.tmp', file);
    process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
  }
  return stale ? 1 : 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
