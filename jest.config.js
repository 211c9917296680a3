/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // Tests run from TypeScript sources; no build is needed first.
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json' }] },
  moduleNameMapper: { '^@mailfront/([a-z0-9-]+)$': '<rootDir>/packages/$1/src' },
  testMatch: ['<rootDir>/packages/*/test/**/*.test.ts'],
  testTimeout: 60000,
  // Integration suites start their own Dovecot; two cores here.
  maxWorkers: 2,
};
