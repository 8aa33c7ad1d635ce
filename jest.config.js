// Tests are compiled by tsc into dist/ first (make build), so jest runs plain JS.
module.exports = {
  projects: [
    { displayName: 'unit', testMatch: ['<rootDir>/dist/test/unit/**/*.test.js'], testEnvironment: 'node' },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/dist/test/integration/**/*.test.js'],
      testEnvironment: 'node',
      // Integration tests share the host's cgroups, mounts and containerd: run them one file at a time.
      maxWorkers: 1,
    },
  ],
  testTimeout: 60000,
};
