// The launcher ⇄ manager wire format (shim/launcher/launcher.c is the other side). One request
// and one reply per connection, each a single framed message:
//
//   magic (4 bytes: "VKS1" request, "VKR1" reply) | payload length (u32 big-endian) | payload
//   payload = records: tag (1 byte) | length (u32 big-endian) | bytes
//
//   request tags  A  one argv element (argv[0] first, in order)
//                 C  working directory
//                 E  one "NAME=value" (only TTRPC_ADDRESS, GRPC_ADDRESS, NAMESPACE, MAX_SHIM_VERSION,
//                    VKERNEL_SHIM_PROTOCOL)
//                 I  all of stdin (absent: empty)
//                 P  the launcher's parent pid (containerd), decimal
//                 R  the launcher's package root (a manager of another package declines)
//   reply tags    O  stdout bytes
//                 E  stderr bytes (only when there are any)
//                 X  exit code, decimal; a reply without X is incomplete
//
// The launcher writes nothing until it holds a complete reply. A manager that cannot or will
// not answer (unknown magic, shutting down, stale code) closes the connection without one,
// and the launcher runs the cold path instead. Unknown tags are skipped (forward compatible).
import { InvalidArgumentError } from '../../runtime/errors';

export const REQUEST_MAGIC = 'VKS1';
export const REPLY_MAGIC = 'VKR1';
export const HEADER_LENGTH = 8;
/** Largest payload either side accepts (stdin is a few hundred bytes in practice). */
export const MAX_PAYLOAD = 16 << 20;

export interface LauncherRequest {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  stdin: Buffer;
  ppid: number;
  /** The launcher's package root (absent from older launchers). */
  pkgroot?: string;
}

export interface LauncherReply {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

function record(tag: string, data: Buffer | string): Buffer[] {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const head = Buffer.alloc(5);
  head.write(tag, 0, 'latin1');
  head.writeUInt32BE(body.length, 1);
  return [head, body];
}

function frame(magic: string, records: Buffer[]): Buffer {
  const payload = Buffer.concat(records);
  if (payload.length > MAX_PAYLOAD) throw new InvalidArgumentError(`shim manager message of ${payload.length} bytes is too large`);
  const head = Buffer.alloc(HEADER_LENGTH);
  head.write(magic, 0, 'latin1');
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

function* records(payload: Buffer): Generator<[string, Buffer]> {
  let pos = 0;
  while (pos < payload.length) {
    if (pos + 5 > payload.length) throw new InvalidArgumentError('shim manager message: truncated record header');
    const tag = String.fromCharCode(payload[pos]);
    const len = payload.readUInt32BE(pos + 1);
    pos += 5;
    if (pos + len > payload.length) throw new InvalidArgumentError(`shim manager message: record ${tag} runs past the end`);
    yield [tag, payload.subarray(pos, pos + len)];
    pos += len;
  }
}

function payloadOf(magic: string, msg: Buffer): Buffer {
  if (msg.length < HEADER_LENGTH || msg.toString('latin1', 0, 4) !== magic) {
    throw new InvalidArgumentError(`shim manager message: expected magic ${magic}`);
  }
  const len = msg.readUInt32BE(4);
  if (msg.length !== HEADER_LENGTH + len) throw new InvalidArgumentError('shim manager message: length does not match');
  return msg.subarray(HEADER_LENGTH);
}

export function encodeRequest(r: LauncherRequest): Buffer {
  const recs: Buffer[] = [];
  for (const a of r.argv) recs.push(...record('A', a));
  recs.push(...record('C', r.cwd));
  for (const [k, v] of Object.entries(r.env)) recs.push(...record('E', `${k}=${v}`));
  if (r.stdin.length > 0) recs.push(...record('I', r.stdin));
  recs.push(...record('P', String(r.ppid)));
  if (r.pkgroot !== undefined) recs.push(...record('R', r.pkgroot));
  return frame(REQUEST_MAGIC, recs);
}

export function decodeRequest(msg: Buffer): LauncherRequest {
  const r: LauncherRequest = { argv: [], cwd: '', env: {}, stdin: Buffer.alloc(0), ppid: 0 };
  for (const [tag, data] of records(payloadOf(REQUEST_MAGIC, msg))) {
    switch (tag) {
      case 'A':
        r.argv.push(data.toString());
        break;
      case 'C':
        r.cwd = data.toString();
        break;
      case 'E': {
        const s = data.toString();
        const eq = s.indexOf('=');
        if (eq > 0) r.env[s.slice(0, eq)] = s.slice(eq + 1);
        break;
      }
      case 'I':
        r.stdin = Buffer.from(data);
        break;
      case 'P':
        r.ppid = Number(data.toString()) || 0;
        break;
      case 'R':
        r.pkgroot = data.toString();
        break;
      default:
        break;
    }
  }
  if (r.argv.length === 0) throw new InvalidArgumentError('shim manager request without argv');
  return r;
}

export function encodeReply(r: LauncherReply): Buffer {
  const recs = [...record('O', r.stdout)];
  if (r.stderr.length > 0) recs.push(...record('E', r.stderr));
  recs.push(...record('X', String(r.exitCode)));
  return frame(REPLY_MAGIC, recs);
}

export function decodeReply(msg: Buffer): LauncherReply {
  const r: LauncherReply = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), exitCode: -1 };
  let complete = false;
  for (const [tag, data] of records(payloadOf(REPLY_MAGIC, msg))) {
    if (tag === 'O') r.stdout = Buffer.from(data);
    else if (tag === 'E') r.stderr = Buffer.from(data);
    else if (tag === 'X') {
      r.exitCode = Number(data.toString());
      complete = Number.isInteger(r.exitCode);
    }
  }
  if (!complete) throw new InvalidArgumentError('shim manager reply without an exit code');
  return r;
}

/** Collects stream chunks until one whole message (header + payload) has arrived. */
export class MessageReader {
  #chunks: Buffer[] = [];
  #have = 0;
  #need = -1;

  constructor(private readonly magic: string) {}

  /** The complete message once it is there; throws on a bad header or an oversized payload. */
  push(chunk: Buffer): Buffer | undefined {
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    if (this.#need < 0 && this.#have >= HEADER_LENGTH) {
      const head = Buffer.concat(this.#chunks);
      this.#chunks = [head];
      if (head.toString('latin1', 0, 4) !== this.magic) throw new InvalidArgumentError(`shim manager message: expected magic ${this.magic}`);
      const len = head.readUInt32BE(4);
      if (len > MAX_PAYLOAD) throw new InvalidArgumentError(`shim manager message of ${len} bytes is too large`);
      this.#need = HEADER_LENGTH + len;
    }
    if (this.#need >= 0 && this.#have >= this.#need) {
      if (this.#have > this.#need) throw new InvalidArgumentError('shim manager message: data after the message');
      return Buffer.concat(this.#chunks);
    }
    return undefined;
  }
}
