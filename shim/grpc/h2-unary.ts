// One unary gRPC call over node:http2, without @grpc/grpc-js. `start` uses it to ask
// containerd's Version service which containerd it is talking to: loading grpc-js costs
// 75–250 ms on a cold `start` (grpc-and-start-path.md), node:http2 alone 15–30 ms, and the
// answer is cached per containerd (shim/bootstrap/negotiate.ts), so most starts load neither.
//
// The call: POST <path> with content-type application/grpc, the request as one
// length-prefixed message, half-close; the answer is one length-prefixed message and a
// grpc-status (in the trailers, or in the headers of a trailers-only response). A non-OK
// status becomes a TtrpcError with that code; a dead socket, a timeout or a malformed answer
// become Unavailable / DeadlineExceeded / Internal.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { Code, TtrpcError } from '../ttrpc/status';

export interface H2UnaryOptions {
  /** The whole call, connect included (default 2000 ms). */
  timeoutMs?: number;
  /** Request metadata (e.g. containerd-namespace). */
  metadata?: Record<string, string>;
  /** Largest answer accepted (default 4 MiB). */
  maxResponseBytes?: number;
}

/** The unix socket path of a containerd address: a bare path or unix://path. */
export function unixPath(address: string): string {
  return address.startsWith('unix://') ? address.slice('unix://'.length) : address;
}

/** Prefixes a serialized message the gRPC way: compressed flag (0) and u32 length. */
export function grpcFrame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Calls `path` (e.g. "/containerd.services.version.v1.Version/Version") on a unix socket. */
export function h2Unary(address: string, path: string, request: Uint8Array, opts: H2UnaryOptions = {}): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const maxBytes = opts.maxResponseBytes ?? 4 << 20;
  return new Promise<Buffer>((resolve, reject) => {
    let done = false;
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(unixPath(address)) });
    const finish = (err: Error | undefined, value?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new TtrpcError(Code.DeadlineExceeded, `grpc ${path}: no answer within ${timeoutMs} ms`)), timeoutMs);
    session.on('error', (err) => finish(new TtrpcError(Code.Unavailable, `grpc ${path}: ${err.message}`, { cause: err })));
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(opts.metadata ?? {}),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let status: string | undefined;
    let message: string | undefined;
    const takeStatus = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) {
        status = String(h['grpc-status']);
        message = h['grpc-message'] !== undefined ? decodeURIComponent(String(h['grpc-message'])) : '';
      }
    };
    stream.on('response', (headers) => {
      const http = Number(headers[':status']);
      if (http !== 200) return finish(new TtrpcError(Code.Unavailable, `grpc ${path}: HTTP status ${http}`));
      takeStatus(headers);
    });
    stream.on('trailers', takeStatus);
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) return finish(new TtrpcError(Code.ResourceExhausted, `grpc ${path}: answer larger than ${maxBytes} bytes`));
      chunks.push(chunk);
    });
    stream.on('error', (err) => finish(new TtrpcError(Code.Unavailable, `grpc ${path}: ${err.message}`, { cause: err })));
    stream.on('end', () => {
      if (status === undefined) return finish(new TtrpcError(Code.Internal, `grpc ${path}: no grpc-status in the answer`));
      if (status !== '0') return finish(new TtrpcError(Number(status), message ?? ''));
      const body = Buffer.concat(chunks);
      if (body.length < 5) return finish(new TtrpcError(Code.Internal, `grpc ${path}: OK without a message`));
      if (body[0] !== 0) return finish(new TtrpcError(Code.Internal, `grpc ${path}: compressed answers are not supported`));
      const len = body.readUInt32BE(1);
      if (body.length < 5 + len) return finish(new TtrpcError(Code.Internal, `grpc ${path}: truncated answer`));
      finish(undefined, body.subarray(5, 5 + len));
    });
    // 'end' comes before 'close' on a complete answer; a stream reset or a dropped connection only closes.
    stream.on('close', () => setImmediate(() => finish(new TtrpcError(Code.Unavailable, `grpc ${path}: stream closed before an answer`))));
    stream.end(grpcFrame(request));
  });
}

/**
 * The string fields of a flat protobuf message by field number (e.g. VersionResponse:
 * 1 version, 2 revision), without a protobuf library. Other wire types are skipped.
 */
export function protoStrings(buf: Uint8Array): Map<number, string> {
  const out = new Map<number, string>();
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new TtrpcError(Code.Internal, 'protobuf: truncated varint');
      const b = buf[pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new TtrpcError(Code.Internal, 'protobuf: varint longer than 10 bytes');
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    switch (key % 8) {
      case 0:
        varint();
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = varint();
        if (pos + len > buf.length) throw new TtrpcError(Code.Internal, `protobuf: field ${field} runs past the end`);
        out.set(field, Buffer.from(buf.buffer, buf.byteOffset + pos, len).toString('utf8'));
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new TtrpcError(Code.Internal, `protobuf: wire type ${key % 8} is not proto3`);
    }
  }
  if (pos > buf.length) throw new TtrpcError(Code.Internal, 'protobuf: message runs past the end');
  return out;
}
