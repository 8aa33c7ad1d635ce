#!/usr/bin/env node
// Prints jest's totals as one plain closing line ("N passed, N failed, N skipped") that CI
// tools read, plus the names of failed tests. Usage: test-summary.js <jest --json output>...
// (several files: one per jest pass of `make test`, summed).
const fs = require('fs');
const total = { passed: 0, failed: 0, skipped: 0 };
for (const file of process.argv.slice(2)) {
  let r;
  try {
    r = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    console.log(`test-summary: no jest results in ${file}: ${err.message}`);
    total.failed++;
    continue;
  }
  for (const suite of r.testResults || []) {
    for (const t of suite.assertionResults || []) {
      if (t.status === 'failed') console.log(`FAILED: ${t.fullName}`);
    }
    if (suite.status === 'failed' && (!suite.assertionResults || suite.assertionResults.length === 0)) {
      console.log(`FAILED SUITE: ${suite.name}: ${(suite.message || '').split('\n')[0]}`);
    }
  }
  total.passed += r.numPassedTests || 0;
  total.failed += (r.numFailedTests || 0) + (r.numRuntimeErrorTestSuites || 0);
  total.skipped += (r.numPendingTests || 0) + (r.numTodoTests || 0);
}
console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
// Under CI every dependency is installed by .ci/run: a skipped test there is a failure.
if (process.env.CI === 'true' && total.skipped > 0) {
  console.log(`test-summary: ${total.skipped} test(s) skipped under CI=true`);
  process.exit(1);
}
if (total.failed > 0) process.exit(1);
