// A gRPC client of containerd's own API (@grpc/grpc-js), for a shim daemon in gRPC mode:
// events (containerd.services.events.v1.Events/Publish) and the keep-alive
// (containerd.services.tasks.v1.Tasks/Get). Every call carries the namespace as
// `containerd-namespace` metadata. A non-OK status, a deadline or an unreachable containerd
// becomes a TtrpcError with the gRPC code, the one RPC error class of the shim (ttrpc/status.ts).
// The channel reconnects by itself after a containerd restart.
import type * as GrpcJs from '@grpc/grpc-js';
import { encode, decode, type ProtoInput, type ProtoTypeName, type ProtoTypes } from '../proto';
import { TtrpcError } from '../ttrpc/status';
import { unixPath } from './h2-unary';
import { GRPC_NAMESPACE_KEY } from './server';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const grpcJs = (): typeof GrpcJs => require('@grpc/grpc-js') as typeof GrpcJs;

export interface GrpcCallOptions {
  /** Default 5000 ms. */
  timeoutMs?: number;
}

export class ContainerdGrpcClient {
  readonly address: string;
  readonly namespace: string;
  readonly #grpc = grpcJs();
  readonly #client: GrpcJs.Client;
  #closed = false;

  /** `address`: containerd's gRPC socket (-address / GRPC_ADDRESS), a path or unix:// address. */
  constructor(address: string, namespace: string) {
    this.address = address;
    this.namespace = namespace;
    this.#client = new this.#grpc.Client(`unix://${unixPath(address)}`, this.#grpc.credentials.createInsecure(), {
      // containerd's own limits (16 MiB); the shim's calls are tiny.
      'grpc.max_receive_message_length': 16 << 20,
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  call<Req extends ProtoTypeName, Res extends ProtoTypeName>(
    service: string,
    method: string,
    requestType: Req,
    request: ProtoInput<ProtoTypes[Req]>,
    responseType: Res,
    opts: GrpcCallOptions = {},
  ): Promise<ProtoTypes[Res]> {
    if (this.#closed) return Promise.reject(new TtrpcError(14, 'grpc: client closed'));
    const md = new this.#grpc.Metadata();
    md.set(GRPC_NAMESPACE_KEY, this.namespace);
    const body = encode(requestType, request);
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        `/${service}/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        body,
        md,
        { deadline: Date.now() + (opts.timeoutMs ?? 5000) },
        (err: GrpcJs.ServiceError | null, res?: Buffer) => {
          if (err) return reject(new TtrpcError(err.code, `${service}/${method}: ${err.details || err.message}`, { cause: err }));
          try {
            resolve(decode(responseType, res ?? Buffer.alloc(0)));
          } catch (e) {
            reject(e);
          }
        },
      );
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }
}
