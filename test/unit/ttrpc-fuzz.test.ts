// Bounded fuzz of the ttrpc server: random bytes, random frames and mutated valid requests on
// many connections. The server must never crash, must only ever answer with well-formed
// Response frames, and must keep serving a well-behaved client afterwards.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { decode, encode } from '../../shim/proto';
import { TtrpcClient } from '../../shim/ttrpc/client';
import { FrameReader, MAX_MESSAGE_LENGTH, MessageType, encodeFrame, encodeHeader } from '../../shim/ttrpc/frame';
import { TtrpcServer, unary } from '../../shim/ttrpc/server';

const TASK = 'containerd.task.v2.Task';
const MAX_FRAMES = 2000;
const MAX_MS = 10_000;

/** xorshift32: reproducible from the seed printed on failure. */
function rng(seed: number): { int(n: number): number; bytes(n: number): Buffer; pick<T>(a: readonly T[]): T } {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return {
    int: (n) => next() % n,
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
    pick: (a) => a[next() % a.length]!,
  };
}

let dir: string;
let sockPath: string;
let server: TtrpcServer;
let handled = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vk-ttrpc-fuzz-'));
  sockPath = path.join(dir, 'fuzz.sock');
  server = new TtrpcServer({ maxConcurrentRequests: 64 });
  server.registerService(TASK, {
    State: (req) => {
      handled++;
      return { id: req.id, pid: 1, status: 2 };
    },
    Kill: (req) => {
      handled++;
      if (req.signal % 2) throw new Error('odd signal');
      return {};
    },
    Wait: () => new Promise(() => undefined), // never answers: exercises in-flight cleanup
  });
  server.register('vk.test.Echo', { Echo: unary('ttrpc.KeyValue', 'ttrpc.KeyValue', (r) => ({ key: r.key, value: r.value })) });
  await server.listen(sockPath);
});

afterAll(async () => {
  await server.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

function validRequest(r: ReturnType<typeof rng>, id: number): Buffer {
  const method = r.pick(['State', 'Kill', 'Wait', 'Nope', 'Create']);
  const payload =
    method === 'Kill'
      ? encode('containerd.task.v2.KillRequest', { id: 'c', signal: r.int(40) })
      : encode('containerd.task.v2.StateRequest', { id: r.bytes(r.int(8)).toString('hex'), exec_id: 'e' });
  const body = encode('ttrpc.Request', {
    service: r.pick([TASK, TASK, 'vk.test.Echo', 'x', '']),
    method,
    payload,
    timeout_nano: r.pick([0, 0, 1e6, 1e9, -5]),
    metadata: r.int(3) ? [] : [{ key: 'containerd-namespace-ttrpc', value: 'ns' }],
  });
  return encodeFrame(id, MessageType.Request, r.pick([0, 0, 0, 1, 2, 4]), body);
}

/** Flips a few bytes of a valid frame; in chaos mode the header too, and sometimes truncates it. */
function mutate(r: ReturnType<typeof rng>, buf: Buffer, chaos: boolean): Buffer {
  const out = Buffer.from(buf);
  const from = chaos ? 0 : 10;
  const n = 1 + r.int(4);
  for (let i = 0; i < n && out.length > from; i++) out[from + r.int(out.length - from)] = r.int(256);
  if (chaos && r.int(5) === 0) return out.subarray(0, r.int(out.length + 1));
  return out;
}

/** One frame. Structured mode keeps the framing intact so the bytes reach the protobuf decoders. */
function randomFrame(r: ReturnType<typeof rng>, id: number, chaos: boolean): Buffer {
  switch (r.int(chaos ? 6 : 4)) {
    case 0:
      return validRequest(r, id);
    case 1: {
      const data = r.bytes(r.int(300));
      return encodeFrame(r.int(2) ? id : r.int(0xffffffff), r.int(5), r.int(256), data);
    }
    case 2:
      return mutate(r, validRequest(r, id), chaos);
    case 3:
      return validRequest(r, id);
    case 4:
      return r.bytes(r.int(64)); // not even a frame
    default:
      // a header announcing more than 4 MiB, with a little of its body
      return Buffer.concat([
        encodeHeader({ length: MAX_MESSAGE_LENGTH + 1 + r.int(1 << 30), streamId: id, type: 1, flags: 0 }),
        r.bytes(r.int(100)),
      ]);
  }
}

/** Resolves once `sock` has been quiet for 5 ms (at most 50 ms). */
function quiet(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    let t = setTimeout(done, 5);
    const cap = setTimeout(done, 50);
    const bump = (): void => {
      clearTimeout(t);
      t = setTimeout(done, 5);
    };
    sock.on('data', bump);
    function done(): void {
      clearTimeout(t);
      clearTimeout(cap);
      sock.off('data', bump);
      resolve();
    }
  });
}

test('random and mutated frames never crash the server, and a good client is served afterwards', async () => {
  const seed = Number(process.env.TTRPC_FUZZ_SEED ?? Date.now() % 0x7fffffff);
  const r = rng(seed);
  const started = Date.now();
  let frames = 0;
  let responses = 0;
  const errors: string[] = [];
  try {
    while (frames < MAX_FRAMES && Date.now() - started < MAX_MS) {
      const sock = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.createConnection({ path: sockPath }, () => resolve(s));
        s.once('error', reject);
      });
      sock.on('error', () => undefined);
      const reader = new FrameReader({
        frame: (f) => {
          responses++;
          try {
            if (f.type !== MessageType.Response || f.flags !== 0) throw new Error(`bad frame type ${f.type} flags ${f.flags}`);
            decode('ttrpc.Response', f.data);
          } catch (err) {
            errors.push(`seed ${seed}: ${(err as Error).message}`);
          }
        },
        oversize: () => errors.push(`seed ${seed}: oversized response`),
      });
      sock.on('data', (c: Buffer) => reader.push(c));
      const chaos = r.int(10) < 3;
      const n = 1 + r.int(20);
      let id = 1;
      for (let i = 0; i < n && frames < MAX_FRAMES; i++, frames++) {
        sock.write(randomFrame(r, id, chaos));
        id += r.int(8) ? 2 : r.int(3); // mostly valid ids, sometimes reused or even
      }
      if (r.int(4)) await quiet(sock);
      if (r.int(2)) sock.end();
      else sock.destroy();
    }
  } finally {
    console.log(`ttrpc fuzz: seed ${seed}, ${frames} frames in ${Date.now() - started} ms, ${responses} responses, ${handled} handled`);
  }
  expect(errors).toEqual([]);
  expect(frames).toBeGreaterThan(100);

  const c = await TtrpcClient.connect(sockPath);
  try {
    const calls = Array.from({ length: 20 }, (_, i) =>
      c.call(TASK, 'State', 'containerd.task.v2.StateRequest', { id: `after-${i}` }, 'containerd.task.v2.StateResponse'),
    );
    expect((await Promise.all(calls)).map((x) => x.id)).toEqual(calls.map((_, i) => `after-${i}`));
    expect(await c.call('vk.test.Echo', 'Echo', 'ttrpc.KeyValue', { key: 'k', value: 'v' }, 'ttrpc.KeyValue')).toEqual({ key: 'k', value: 'v' });
  } finally {
    await c.destroy();
  }
  // every fuzz connection is gone once its peer is
  const until = Date.now() + 5000;
  while (server.connections > 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
  expect(server.connections).toBe(0);
});
