// `vkernel containerd-config --shim-config`: an example of the shim's own config file
// (/etc/vkernel/config.toml, the runtime entry's ConfigPath), written with smol-toml plus a
// comment per key.
import { DEFAULT_SHIM_CONFIG, SHIM_CONFIG_KEYS, type ShimProtocolSetting } from '../../shim/config';
import { DEFAULT_VKERNEL_CONFIG } from './containerd-config';
import { toml } from './toml';

/** The shim's [shim] keys in its own order, with their one-line docs (shim/config.ts). */
const SHIM_KEYS: ReadonlyArray<[key: string, field: string, why: string]> = Object.entries(SHIM_CONFIG_KEYS).map(([key, k]) => [key, k.field, k.doc]);

/** An example /etc/vkernel/config.toml: the defaults, with `protocol` if given. */
export function shimConfigExample(protocol?: ShimProtocolSetting): string {
  const values: Record<string, unknown> = { ...DEFAULT_SHIM_CONFIG, ...(protocol ? { protocol } : {}) };
  const known = SHIM_KEYS.filter(([, field]) => field in values);
  const shim = Object.fromEntries(known.map(([key, field]) => [key, values[field]]));
  const comments = new Map(known.map(([key, , why]) => [key, why]));
  const body = toml()
    .stringify({ shim })
    .split('\n')
    .map((line) => {
      const why = comments.get(line.split(' = ')[0]);
      return why ? `${line}  # ${why}` : line;
    });
  return `# vkernel shim config (${DEFAULT_VKERNEL_CONFIG}; the runtime entry's ConfigPath): the defaults${protocol ? `, protocol = "${protocol}"` : ''}\n${body.join('\n')}`;
}
