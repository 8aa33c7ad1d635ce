// Reading a bundle: <bundle>/config.json, parsed and validated.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from '../errors';
import type { Spec } from './types';
import { validateSpec } from './validate';

export interface LoadedBundle {
  /** Absolute, symlink-free bundle directory. */
  bundle: string;
  spec: Spec;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * The offset where strict JSON parsing of `text` fails (V8 does not always say), found by
 * a small recursive-descent scanner. Only called after JSON.parse has failed.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const lit = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else fail(); // point at the start of the bad literal
  };
  const str = () => {
    if (text[i] !== '"') fail();
    i++;
    for (;;) {
      if (i >= text.length) fail();
      const c = text[i];
      if (c === '"') {
        i++;
        return;
      }
      if (c.charCodeAt(0) < 0x20) fail();
      if (c === '\\') {
        i++;
        const e = text[i];
        if (e === 'u') {
          for (let k = 1; k <= 4; k++) if (!/[0-9a-fA-F]/.test(text[i + k] ?? '')) { i += k; fail(); }
          i += 5;
          continue;
        }
        if (!'"\\/bfnrt'.includes(e ?? 'x') || e === undefined) fail();
        i++;
        continue;
      }
      i++;
    }
  };
  const num = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m || m[0] === '' || m[0] === '-') fail();
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail();
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) num();
    else fail();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (pos) {
    if (typeof pos === 'number') return pos;
    throw pos;
  }
  return text.length;
}

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return { line, column };
}

/** A JSON.parse failure as "line L, column C: what" (V8's wording, lower-cased, without its own position). */
export function describeJsonError(text: string, err: unknown): string {
  let msg = err instanceof Error ? err.message : String(err);
  const offset = jsonErrorOffset(text);
  const { line, column } = lineCol(text, offset);
  const where = offset >= text.length ? `end of input (line ${line}, column ${column})` : `line ${line}, column ${column}`;
  msg = msg
    .replace(/\s*\(line \d+ column \d+\)/, '')
    .replace(/\s*in JSON at position \d+/, '')
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/\s*at position \d+/, '')
    .replace(/\s+/g, ' ')
    .trim();
  msg = msg.charAt(0).toLowerCase() + msg.slice(1);
  return `${where}: ${msg}`;
}

/**
 * Reads `<bundleDir>/config.json` and validates it (process is required). The returned
 * bundle path is absolute and resolved through symlinks (runc works from the bundle's
 * real path too, as it chdirs there).
 */
export function loadBundle(bundleDir: string): LoadedBundle {
  if (typeof bundleDir !== 'string' || bundleDir === '') {
    throw new InvalidArgumentError(`bundle: a bundle directory is required (got ${JSON.stringify(bundleDir)})`, 'bundle');
  }
  let bundle: string;
  try {
    bundle = fs.realpathSync(path.resolve(bundleDir));
  } catch (err) {
    const code = errCode(err);
    const why = code === 'ENOENT' || code === 'ENOTDIR' ? 'bundle directory does not exist' : `bundle directory cannot be accessed: ${code}`;
    throw new InvalidArgumentError(`bundle: ${why} (got ${JSON.stringify(bundleDir)})`, 'bundle', { cause: err });
  }
  if (!fs.statSync(bundle).isDirectory()) {
    throw new InvalidArgumentError(`bundle: not a directory (got ${JSON.stringify(bundleDir)})`, 'bundle');
  }
  const file = path.join(bundle, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = errCode(err);
    const why =
      code === 'ENOENT' ? 'config.json does not exist in the bundle' :
      code === 'EISDIR' ? 'config.json is a directory' :
      `config.json cannot be read: ${code}`;
    throw new InvalidArgumentError(`config.json: ${why} (got ${JSON.stringify(file)})`, 'config.json', { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`config.json: invalid json: ${describeJsonError(text, err)}`, 'config.json', { cause: err });
  }
  return { bundle, spec: validateSpec(raw, bundle) };
}
