#!/usr/bin/env node
'use strict';
// Runs a bundled entry point (the file named after this one, without "-launch") with a
// V8 code cache beside it, so each exec skips parsing and compiling ~570 KB of JS and
// the functions the last run compiled lazily. The cache is (re)written after a run when
// it was missing or rejected (a new Node or a new bundle); a read-only install just runs
// without it. Plain JS: this file itself is the one thing that is always compiled.
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const Module = require('module');

const file = process.env.VKERNEL_BUNDLE || __filename.replace(/-launch\.js$/, '.js');
const cacheFile = `${file}.${process.version}.cache`;
const source = fs.readFileSync(file, 'utf8');
let cachedData;
try {
  cachedData = fs.readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
const mod = new Module(file, null);
mod.filename = file;
mod.paths = Module._nodeModulePaths(path.dirname(file));
const requireFn = (id) => mod.require(id);
requireFn.resolve = (id) => Module._resolveFilename(id, mod);
requireFn.main = mod;
requireFn.cache = Module._cache;
process.mainModule = mod;
if (cachedData === undefined || script.cachedDataRejected) {
  process.once('exit', () => {
    try {
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    } catch {
      /* read-only install: run uncached */
    }
  });
}
script.runInThisContext()(mod.exports, requireFn, mod, file, path.dirname(file));
