// Events in gRPC mode: containerd.services.events.v1.Events/Publish at containerd's gRPC
// address (GRPC_ADDRESS), namespace as `containerd-namespace` metadata. Publish carries the
// topic and the event Any; containerd stamps the envelope itself when it receives it.
import type { EventTransport, QueuedEvent } from '../events/publisher';
import { ContainerdGrpcClient } from './client';

export const GRPC_EVENTS_SERVICE = 'containerd.services.events.v1.Events';

export class GrpcEventTransport implements EventTransport {
  readonly name = 'gRPC Publish';
  readonly #address: string;
  readonly #clients = new Map<string, ContainerdGrpcClient>();

  /** `address`: containerd's gRPC socket (GRPC_ADDRESS, else -address). */
  constructor(address: string) {
    this.#address = address;
  }

  async send(item: QueuedEvent, namespace: string, timeoutMs: number): Promise<void> {
    let client = this.#clients.get(namespace);
    if (!client) {
      client = new ContainerdGrpcClient(this.#address, namespace);
      this.#clients.set(namespace, client);
    }
    await client.call(GRPC_EVENTS_SERVICE, 'Publish', 'containerd.services.events.v1.PublishRequest', { topic: item.topic, event: item.event }, 'google.protobuf.Empty', {
      timeoutMs,
    });
  }

  async close(): Promise<void> {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}
