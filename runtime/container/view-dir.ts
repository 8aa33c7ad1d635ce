import * as path from 'node:path';
import type { StateStore } from '../state/store';

/** The vkernel view's own state (FUSE mountpoint or snapshot files) inside the container's dir. */
export function viewDir(store: StateStore, id: string): string {
  return path.join(store.dir(id), 'view');
}
