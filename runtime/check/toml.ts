// smol-toml, loaded on first use: only `check` (reading containerd's config) and
// `containerd-config` (writing snippets) need it, not every CLI start.
import { InternalError } from '../errors';

interface SmolToml {
  parse(text: string): Record<string, unknown>;
  stringify(value: Record<string, unknown>): string;
}

export function toml(): SmolToml {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('smol-toml') as SmolToml;
  } catch (err) {
    throw new InternalError('TOML support needs the smol-toml package (npm dependency)', { cause: err });
  }
}

/** obj[k1][k2]… when every step is a table, else undefined. */
export function tableAt(obj: unknown, keys: string[]): Record<string, unknown> | undefined {
  let cur: unknown = obj;
  for (const k of keys) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>) : undefined;
}
