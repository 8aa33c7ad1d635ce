// The event publisher against a real ttrpc server on a temp socket standing in for
// containerd's Events service: order, bare type URLs, non-zero timestamps, namespace,
// retry in place, bounded attempts, and redial after the server comes back.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UnavailableError, InvalidArgumentError } from '../../runtime/errors';
import { EventPublisher, emit } from '../../shim/events';
import { decode, type ProtoTypes } from '../../shim/proto';
import { TtrpcServer } from '../../shim/ttrpc';

type Envelope = ProtoTypes['containerd.services.events.ttrpc.v1.Envelope'];

class FakeContainerd {
  readonly received: Envelope[] = [];
  /** Fail the next n calls with this error. */
  failNext = 0;
  failWith: () => Error = () => new UnavailableError('containerd is restarting');
  server!: TtrpcServer;

  constructor(readonly socket: string) {}

  async start(): Promise<void> {
    this.server = new TtrpcServer();
    this.server.registerService('containerd.services.events.ttrpc.v1.Events', {
      Forward: (req) => {
        if (this.failNext > 0) {
          this.failNext--;
          throw this.failWith();
        }
        this.received.push(req.envelope!);
        return {};
      },
    });
    await this.server.listen(this.socket);
  }

  async stop(): Promise<void> {
    await this.server.destroy();
    fs.rmSync(this.socket, { force: true });
  }
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-pub-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function publisher(socket: string, extra: Partial<ConstructorParameters<typeof EventPublisher>[0]> = {}): EventPublisher {
  return new EventPublisher({ address: `unix://${socket}`, namespace: 'ns1', retryDelayMs: 20, ...extra });
}

describe('EventPublisher', () => {
  it('forwards events in order with bare type URLs, the namespace and non-zero timestamps', async () => {
    const cd = new FakeContainerd(path.join(dir, 'c.sock'));
    await cd.start();
    const pub = publisher(cd.socket);
    emit(pub, '/tasks/create', { container_id: 'c1', pid: 10 });
    emit(pub, '/tasks/start', { container_id: 'c1', pid: 10 });
    emit(pub, '/tasks/exit', { container_id: 'c1', id: 'c1', pid: 10, exit_status: 7, exited_at: { seconds: 5, nanos: 0 } });
    await pub.flush();
    expect(cd.received.map((e) => e.topic)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit']);
    for (const e of cd.received) {
      expect(e.namespace).toBe('ns1');
      expect(e.timestamp!.seconds).toBeGreaterThan(0);
      expect(e.event!.type_url).toMatch(/^containerd\.events\.Task/);
    }
    expect(decode('containerd.events.TaskExit', cd.received[2].event!.value)).toMatchObject({ container_id: 'c1', exit_status: 7 });
    await pub.close();
    await cd.stop();
  });

  it('retries a failing event in place, so later events never overtake it', async () => {
    const cd = new FakeContainerd(path.join(dir, 'c.sock'));
    await cd.start();
    cd.failNext = 2;
    const pub = publisher(cd.socket);
    emit(pub, '/tasks/start', { container_id: 'c1', pid: 1 });
    emit(pub, '/tasks/exit', { container_id: 'c1', id: 'c1', pid: 1 });
    await pub.flush();
    expect(cd.received.map((e) => e.topic)).toEqual(['/tasks/start', '/tasks/exit']);
    expect(pub.stats).toEqual({ sent: 2, dropped: 0, retries: 2 });
    await pub.close();
    await cd.stop();
  });

  it('drops an event after the last attempt, and at once when containerd refuses it', async () => {
    const cd = new FakeContainerd(path.join(dir, 'c.sock'));
    await cd.start();
    const pub = publisher(cd.socket, { maxAttempts: 3 });
    cd.failNext = 3;
    emit(pub, '/tasks/oom', { container_id: 'lost' });
    emit(pub, '/tasks/oom', { container_id: 'kept' });
    await pub.flush();
    cd.failNext = 1;
    cd.failWith = () => new InvalidArgumentError('envelope timestamp must not be zero');
    emit(pub, '/tasks/oom', { container_id: 'refused' });
    await pub.flush();
    expect(cd.received.map((e) => decode('containerd.events.TaskOOM', e.event!.value).container_id)).toEqual(['kept']);
    expect(pub.stats).toEqual({ sent: 1, dropped: 2, retries: 2 });
    await pub.close();
    await cd.stop();
  });

  it('redials after containerd went away and came back (a restart)', async () => {
    const socket = path.join(dir, 'c.sock');
    const first = new FakeContainerd(socket);
    await first.start();
    const pub = publisher(socket, { retryDelayMs: 50 });
    emit(pub, '/tasks/create', { container_id: 'a' });
    await pub.flush();
    await first.stop();
    emit(pub, '/tasks/start', { container_id: 'a' }); // containerd is down now
    const second = new FakeContainerd(socket);
    setTimeout(() => void second.start(), 80);
    await pub.flush();
    expect(second.received.map((e) => e.topic)).toEqual(['/tasks/start']);
    await pub.close();
    await second.stop();
  });

  it('close() gives up on an unreachable containerd within its timeout', async () => {
    const pub = publisher(path.join(dir, 'nobody.sock'), { retryDelayMs: 1000 });
    emit(pub, '/tasks/oom', { container_id: 'x' });
    const t0 = Date.now();
    await pub.close(200);
    expect(Date.now() - t0).toBeLessThan(1500);
    emit(pub, '/tasks/oom', { container_id: 'after-close' }); // ignored, no throw
  });
});
