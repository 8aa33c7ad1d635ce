// ttrpc request metadata: the repeated KeyValue list of ttrpc.Request (field 5). Keys are
// case-insensitive (stored lower-case); a key may repeat. containerd sends
// `containerd-namespace-ttrpc: <namespace>` and, from 2.x, OpenTelemetry `traceparent`.

/** The metadata key containerd uses for the namespace on ttrpc (gRPC uses `containerd-namespace`). */
export const NAMESPACE_KEY = 'containerd-namespace-ttrpc';

export type MetadataInit = Record<string, string | readonly string[]> | ReadonlyArray<{ key: string; value: string }>;

export class Metadata {
  readonly #map = new Map<string, string[]>();

  constructor(init?: MetadataInit) {
    if (!init) return;
    if (Array.isArray(init)) {
      for (const kv of init as ReadonlyArray<{ key: string; value: string }>) this.append(kv.key, kv.value);
    } else {
      for (const [k, v] of Object.entries(init as Record<string, string | readonly string[]>)) {
        for (const one of typeof v === 'string' ? [v] : v) this.append(k, one);
      }
    }
  }

  append(key: string, value: string): this {
    const k = key.toLowerCase();
    const list = this.#map.get(k);
    if (list) list.push(value);
    else this.#map.set(k, [value]);
    return this;
  }

  set(key: string, value: string): this {
    this.#map.set(key.toLowerCase(), [value]);
    return this;
  }

  /** The first value of `key`. */
  get(key: string): string | undefined {
    return this.#map.get(key.toLowerCase())?.[0];
  }

  getAll(key: string): string[] {
    return [...(this.#map.get(key.toLowerCase()) ?? [])];
  }

  has(key: string): boolean {
    return this.#map.has(key.toLowerCase());
  }

  get size(): number {
    return this.#map.size;
  }

  /** As the wire's KeyValue list. */
  toPairs(): Array<{ key: string; value: string }> {
    const out: Array<{ key: string; value: string }> = [];
    for (const [key, values] of this.#map) for (const value of values) out.push({ key, value });
    return out;
  }

  toObject(): Record<string, string[]> {
    return Object.fromEntries([...this.#map].map(([k, v]) => [k, [...v]]));
  }

  /** This metadata with `other`'s keys replacing its own. */
  merge(other?: MetadataInit | Metadata): Metadata {
    const out = new Metadata();
    for (const [k, v] of this.#map) for (const one of v) out.append(k, one);
    if (!other) return out;
    const o = other instanceof Metadata ? other : new Metadata(other);
    for (const [k, v] of o.#map) out.#map.set(k, [...v]);
    return out;
  }
}
