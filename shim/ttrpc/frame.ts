// ttrpc framing (containerd/ttrpc PROTOCOL.md): a 10-byte header, then `length` bytes of data.
//
//   0..3  data length, u32 big-endian (at most 4 MiB, so byte 0 is always 0)
//   4..7  stream id, u32 big-endian (odd: client initiated)
//   8     message type: 1 request, 2 response, 3 data
//   9     flags (request: 1 remote-closed, 2 remote-open; data: 1 remote-closed, 4 no-data)
import { Code, TtrpcError } from './status';

export const FRAME_HEADER_LENGTH = 10;
export const MAX_MESSAGE_LENGTH = 4 << 20;

export const MessageType = { Request: 0x1, Response: 0x2, Data: 0x3 } as const;
export const Flag = { RemoteClosed: 0x1, RemoteOpen: 0x2, NoData: 0x4 } as const;

export interface FrameHeader {
  length: number;
  streamId: number;
  type: number;
  flags: number;
}

export interface Frame extends FrameHeader {
  data: Buffer;
}

/** ResourceExhausted, worded as ttrpc words it. */
export function oversizeError(length: number): TtrpcError {
  return new TtrpcError(Code.ResourceExhausted, `message length ${length} exceed maximum message size of ${MAX_MESSAGE_LENGTH}`);
}

export function encodeHeader(h: FrameHeader, into: Buffer = Buffer.allocUnsafe(FRAME_HEADER_LENGTH), offset = 0): Buffer {
  into.writeUInt32BE(h.length >>> 0, offset);
  into.writeUInt32BE(h.streamId >>> 0, offset + 4);
  into[offset + 8] = h.type & 0xff;
  into[offset + 9] = h.flags & 0xff;
  return into;
}

export function decodeHeader(buf: Buffer, offset = 0): FrameHeader {
  return {
    length: buf.readUInt32BE(offset),
    streamId: buf.readUInt32BE(offset + 4),
    type: buf[offset + 8]!,
    flags: buf[offset + 9]!,
  };
}

/** One frame as bytes. Data over 4 MiB throws the ResourceExhausted TtrpcError ttrpc would send. */
export function encodeFrame(streamId: number, type: number, flags: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  if (data.length > MAX_MESSAGE_LENGTH) throw oversizeError(data.length);
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + data.length);
  encodeHeader({ length: data.length, streamId, type, flags }, out);
  out.set(data, FRAME_HEADER_LENGTH);
  return out;
}

export interface FrameReaderHandlers {
  frame(frame: Frame): void;
  /** A header announced more than 4 MiB; its data is skipped as it arrives (ttrpc answers ResourceExhausted). */
  oversize(header: FrameHeader): void;
}

/**
 * Reassembles frames from a byte stream, however it is split or coalesced. Never buffers more
 * than one frame (plus one read chunk); oversized data is discarded while streaming through.
 * Exceptions thrown by the handlers propagate out of `push`.
 */
export class FrameReader {
  readonly #handlers: FrameReaderHandlers;
  #chunks: Buffer[] = [];
  #head = 0;
  #size = 0;
  #header: FrameHeader | null = null;
  #skip = 0;

  constructor(handlers: FrameReaderHandlers) {
    this.#handlers = handlers;
  }

  /** Bytes held for a frame that is not complete yet. */
  get buffered(): number {
    return this.#size;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    for (;;) {
      if (this.#skip > 0) {
        this.#drop(Math.min(this.#skip, this.#size));
        if (this.#skip > 0) return;
      }
      if (!this.#header) {
        if (this.#size < FRAME_HEADER_LENGTH) return;
        const h = decodeHeader(this.#take(FRAME_HEADER_LENGTH));
        if (h.length > MAX_MESSAGE_LENGTH) {
          this.#skip = h.length;
          this.#handlers.oversize(h);
          continue;
        }
        this.#header = h;
      }
      const h = this.#header;
      if (this.#size < h.length) return;
      this.#header = null;
      const data = h.length ? this.#take(h.length) : Buffer.alloc(0);
      this.#handlers.frame({ ...h, data });
    }
  }

  #take(n: number): Buffer {
    const first = this.#chunks[this.#head]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#advance();
      else this.#chunks[this.#head] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.#chunks[this.#head]!;
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.#advance();
        else this.#chunks[this.#head] = c.subarray(k);
      }
    }
    this.#size -= n;
    return out;
  }

  #drop(n: number): void {
    this.#skip -= n;
    this.#size -= n;
    while (n > 0) {
      const c = this.#chunks[this.#head]!;
      if (c.length <= n) {
        n -= c.length;
        this.#advance();
      } else {
        this.#chunks[this.#head] = c.subarray(n);
        n = 0;
      }
    }
  }

  /** Drops the head chunk; a queue with a moving head, so tiny chunks never cost O(n) shifts. */
  #advance(): void {
    this.#head++;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}
