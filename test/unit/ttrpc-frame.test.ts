// ttrpc framing: header layout, reassembly of split and coalesced frames, oversize handling.
import {
  FRAME_HEADER_LENGTH,
  Flag,
  FrameReader,
  MAX_MESSAGE_LENGTH,
  MessageType,
  decodeHeader,
  encodeFrame,
  encodeHeader,
  type Frame,
  type FrameHeader,
} from '../../shim/ttrpc/frame';
import { Code, TtrpcError } from '../../shim/ttrpc/status';

function collect(): { reader: FrameReader; frames: Frame[]; oversize: FrameHeader[] } {
  const frames: Frame[] = [];
  const oversize: FrameHeader[] = [];
  const reader = new FrameReader({ frame: (f) => frames.push(f), oversize: (h) => oversize.push(h) });
  return { reader, frames, oversize };
}

describe('ttrpc frame header', () => {
  test('is 10 bytes: length and stream id big-endian, then type and flags', () => {
    const f = encodeFrame(0x01020304, MessageType.Request, Flag.RemoteOpen, Buffer.from('abc'));
    expect(f.length).toBe(FRAME_HEADER_LENGTH + 3);
    expect([...f.subarray(0, 10)]).toEqual([0, 0, 0, 3, 1, 2, 3, 4, 1, 2]);
    expect(f.subarray(10).toString()).toBe('abc');
    expect(decodeHeader(f)).toEqual({ length: 3, streamId: 0x01020304, type: 1, flags: 2 });
  });

  test('round-trips the largest stream id and all flag bits', () => {
    const h = { length: MAX_MESSAGE_LENGTH, streamId: 0xffffffff, type: 0xff, flags: 0xff };
    expect(decodeHeader(encodeHeader(h))).toEqual(h);
  });

  test('an empty frame is only a header', () => {
    expect(encodeFrame(1, MessageType.Response, 0)).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 2, 0]));
  });

  test('refuses to encode more than 4 MiB of data with ResourceExhausted', () => {
    expect(() => encodeFrame(1, MessageType.Request, 0, Buffer.alloc(MAX_MESSAGE_LENGTH + 1))).toThrow(TtrpcError);
    try {
      encodeFrame(1, MessageType.Request, 0, Buffer.alloc(MAX_MESSAGE_LENGTH + 1));
    } catch (err) {
      expect((err as TtrpcError).grpcCode).toBe(Code.ResourceExhausted);
      expect((err as Error).message).toBe(`message length ${MAX_MESSAGE_LENGTH + 1} exceed maximum message size of 4194304`);
    }
    expect(encodeFrame(1, MessageType.Request, 0, Buffer.alloc(MAX_MESSAGE_LENGTH)).length).toBe(MAX_MESSAGE_LENGTH + 10);
  });
});

describe('FrameReader', () => {
  const frames = [
    encodeFrame(1, MessageType.Request, 0, Buffer.from('hello')),
    encodeFrame(3, MessageType.Request, 0),
    encodeFrame(5, MessageType.Data, Flag.RemoteClosed | Flag.NoData),
    encodeFrame(7, MessageType.Request, 0, Buffer.alloc(70_000, 7)),
  ];
  const stream = Buffer.concat(frames);

  function check(got: Frame[]): void {
    expect(got.map((f) => [f.streamId, f.type, f.flags, f.length, f.data.length])).toEqual([
      [1, 1, 0, 5, 5],
      [3, 1, 0, 0, 0],
      [5, 3, 5, 0, 0],
      [7, 1, 0, 70_000, 70_000],
    ]);
    expect(got[0]!.data.toString()).toBe('hello');
    expect(got[3]!.data.every((b) => b === 7)).toBe(true);
  }

  test('decodes coalesced frames from one chunk', () => {
    const c = collect();
    c.reader.push(stream);
    check(c.frames);
    expect(c.reader.buffered).toBe(0);
  });

  test('decodes frames split byte by byte', () => {
    const c = collect();
    for (let i = 0; i < stream.length; i++) c.reader.push(stream.subarray(i, i + 1));
    check(c.frames);
  });

  test('decodes frames split at every boundary inside a header', () => {
    for (let cut = 1; cut < 24; cut++) {
      const c = collect();
      c.reader.push(stream.subarray(0, cut));
      c.reader.push(stream.subarray(cut));
      check(c.frames);
    }
  });

  test('decodes frames from random chunk sizes', () => {
    let seed = 42;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % n) + 1;
    for (let round = 0; round < 20; round++) {
      const c = collect();
      for (let off = 0; off < stream.length; ) {
        const n = rnd(4000);
        c.reader.push(stream.subarray(off, off + n));
        off += n;
      }
      check(c.frames);
    }
  });

  test('reports an oversized frame at its header and skips its data as it streams in', () => {
    const c = collect();
    const big = MAX_MESSAGE_LENGTH + 100;
    const header = encodeHeader({ length: big, streamId: 9, type: MessageType.Request, flags: 0 });
    c.reader.push(header);
    expect(c.oversize).toEqual([{ length: big, streamId: 9, type: 1, flags: 0 }]);
    // the body arrives in pieces; nothing is kept
    for (let sent = 0; sent < big; sent += 1 << 20) {
      c.reader.push(Buffer.alloc(Math.min(1 << 20, big - sent)));
      expect(c.reader.buffered).toBe(0);
    }
    expect(c.frames).toHaveLength(0);
    c.reader.push(encodeFrame(11, MessageType.Request, 0, Buffer.from('next')));
    expect(c.frames.map((f) => [f.streamId, f.data.toString()])).toEqual([[11, 'next']]);
  });

  test('skips an oversized body that shares a chunk with the next frame', () => {
    const c = collect();
    const big = MAX_MESSAGE_LENGTH + 1;
    c.reader.push(
      Buffer.concat([
        encodeHeader({ length: big, streamId: 1, type: 1, flags: 0 }),
        Buffer.alloc(big),
        encodeFrame(3, MessageType.Request, 0, Buffer.from('x')),
      ]),
    );
    expect(c.oversize.map((h) => h.streamId)).toEqual([1]);
    expect(c.frames.map((f) => f.streamId)).toEqual([3]);
  });

  test('holds a partial frame until the rest arrives', () => {
    const c = collect();
    const f = encodeFrame(1, MessageType.Request, 0, Buffer.alloc(1000));
    c.reader.push(f.subarray(0, 500));
    expect(c.frames).toHaveLength(0);
    expect(c.reader.buffered).toBe(490);
    c.reader.push(f.subarray(500));
    expect(c.frames).toHaveLength(1);
  });
});
