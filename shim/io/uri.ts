// How a process's stdio is given to the shim (containerd cio): three strings. The scheme of
// stdout decides for stdout and stderr: no scheme or fifo:// → FIFOs at those paths,
// file:///path → both appended to that file, binary:///path?k=v → a logging binary. An
// empty string means no such stream; all empty is null IO (the CRI pause container).
import { InvalidArgumentError } from '../../runtime/errors';

export type OutputSpec =
  | { kind: 'null' }
  | { kind: 'fifo'; stdout: string; stderr: string }
  | { kind: 'file'; path: string }
  | { kind: 'binary'; path: string; args: string[] };

export interface StdioSpec {
  stdin: string;
  output: OutputSpec;
  terminal: boolean;
}

export interface StdioRequest {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

function fifoPath(p: string, field: string): string {
  if (p.startsWith('fifo://')) return p.slice('fifo://'.length);
  if (p !== '' && !p.startsWith('/')) throw new InvalidArgumentError(`${field}: expected an absolute FIFO path or URI (got ${JSON.stringify(p)})`, field);
  return p;
}

export function parseStdio(req: StdioRequest): StdioSpec {
  const stdin = fifoPath(req.stdin, 'stdin');
  const out = req.stdout;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(out)?.[1]?.toLowerCase();
  let output: OutputSpec;
  if (scheme === undefined || scheme === 'fifo') {
    const stdout = fifoPath(out, 'stdout');
    const stderr = req.terminal ? '' : fifoPath(req.stderr, 'stderr');
    output = stdout === '' && stderr === '' ? { kind: 'null' } : { kind: 'fifo', stdout, stderr };
  } else if (scheme === 'file') {
    const url = parseUrl(out, 'stdout');
    output = { kind: 'file', path: decodeURIComponent(url.pathname) };
  } else if (scheme === 'binary' || scheme === 'binary-v2') {
    const url = parseUrl(out, 'stdout');
    const args: string[] = [];
    // containerd: each query key, then its first value when not empty.
    for (const key of new Set(url.searchParams.keys())) {
      args.push(key);
      const v = url.searchParams.get(key);
      if (v) args.push(v);
    }
    output = { kind: 'binary', path: decodeURIComponent(url.pathname), args };
  } else {
    throw new InvalidArgumentError(`stdout: unsupported stdio scheme ${JSON.stringify(scheme)}`, 'stdout');
  }
  if ((output.kind === 'file' || output.kind === 'binary') && !output.path.startsWith('/')) {
    throw new InvalidArgumentError(`stdout: ${output.kind} URI needs an absolute path (got ${JSON.stringify(out)})`, 'stdout');
  }
  return { stdin, output, terminal: req.terminal };
}

function parseUrl(text: string, field: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new InvalidArgumentError(`${field}: malformed URI ${JSON.stringify(text)}`, field);
  }
}
