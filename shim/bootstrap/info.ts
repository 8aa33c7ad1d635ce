// `-info` (reference §1.1, §8.5).
import { features } from '../../runtime/features';
import { VKERNEL_VERSION } from '../../runtime/paths';
import { CAPABILITIES } from '../../runtime/spec/capabilities';
import { encode } from '../proto';
import { RUNTIME_TYPE } from './paths';
import { decodeStartInput, inputOptions } from './stdin';
import { shimRevision } from './version';

/**
 * The type URL containerd registers for the OCI features document (runtime-spec's
 * specs-go/features.Features, a JSON-typed Any), as the runc shim sends it.
 */
export const FEATURES_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/features/Features';

/**
 * `-info`: containerd.types.RuntimeInfo with our name and version, the options Any containerd
 * sent on stdin (echoed, as the runc shim does after parsing them), and the `vkernel features`
 * document as a JSON Any.
 */
export function runtimeInfo(stdin: Uint8Array): Buffer {
  const options = inputOptions(decodeStartInput(stdin));
  const doc = features(Object.keys(CAPABILITIES));
  return encode('containerd.types.RuntimeInfo', {
    name: RUNTIME_TYPE,
    version: { version: VKERNEL_VERSION, revision: shimRevision() || undefined },
    options: options ?? null,
    features: { type_url: FEATURES_TYPE_URL, value: Buffer.from(JSON.stringify(doc)) },
  });
}
