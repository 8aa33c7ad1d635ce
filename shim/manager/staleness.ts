// Noticing that the code a long-running manager (and its warm daemons) loaded has been
// replaced: `make`, `tsc`, `make install` or a package upgrade rewrites files under dist/,
// build/ or proto/. A manager serving old code would answer with old start/delete logic and
// hand out daemons running the old task service, so it shuts down instead and the next
// invocation (cold) starts a fresh one. inotify, through one non-recursive fs.watch per
// directory: no polling, nothing kept alive.
import * as fs from 'node:fs';
import * as path from 'node:path';

const CODE_FILE = /\.(js|node|json)$|^vkinit$|^vkseccomp$/;
const MAX_DEPTH = 6;

function directories(root: string, depth = 0, out: string[] = []): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch {
    return out;
  }
  out.push(root);
  if (depth >= MAX_DEPTH) return out;
  for (const e of entries) {
    if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'fixtures' && !e.name.startsWith('.')) {
      directories(path.join(root, e.name), depth + 1, out);
    }
  }
  return out;
}

/** Calls onChange (once) when a code file under `roots` is written, replaced or removed. Returns the stop function. */
export function watchForUpdates(roots: string[], onChange: (file: string) => void): () => void {
  const watchers: fs.FSWatcher[] = [];
  let fired = false;
  const stop = (): void => {
    for (const w of watchers.splice(0)) w.close();
  };
  for (const dir of roots.flatMap((r) => directories(r))) {
    try {
      const w = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (fired || !name || !CODE_FILE.test(String(name))) return;
        fired = true;
        stop();
        onChange(path.join(dir, String(name)));
      });
      w.on('error', () => undefined);
      watchers.push(w);
    } catch {
      // vanished meanwhile
    }
  }
  return stop;
}
