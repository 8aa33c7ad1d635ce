#!/usr/bin/env node
// Prints jest's totals as one plain closing line ("N passed, N failed, N skipped") that CI
// tools read, plus the names of failed tests. Usage: test-summary.js <jest --json output>.
const fs = require('fs');
const file = process.argv[2];
let r;
try {
  r = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`test-summary: no jest results in ${file}: ${err.message}`);
  process.exit(0);
}
for (const suite of r.testResults || []) {
  for (const t of suite.assertionResults || []) {
    if (t.status === 'failed') console.log(`FAILED: ${t.fullName}`);
  }
  if (suite.status === 'failed' && (!suite.assertionResults || suite.assertionResults.length === 0)) {
    console.log(`FAILED SUITE: ${suite.name}: ${(suite.message || '').split('\n')[0]}`);
  }
}
const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests + (r.numRuntimeErrorTestSuites || 0)} failed, ${skipped} skipped`);
// Under CI every dependency is installed by .ci/run: a skipped test there is a failure.
if (process.env.CI === 'true' && skipped > 0) {
  console.log(`test-summary: ${skipped} test(s) skipped under CI=true`);
  process.exit(1);
}
