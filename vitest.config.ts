import { defineConfig } from 'vitest/config';

// One runner for the whole repo. Workspace packages resolve to their TypeScript sources
// (the "source" export condition), so tests need no build of the libraries; apps that tests
// start as subprocesses run from dist/ (`pnpm test` builds first).
const resolve = { conditions: ['source'] };
const ssr = { resolve: { conditions: ['source'], externalConditions: ['source'] } };
const exclude = ['**/node_modules/**', '**/dist/**'];

export default defineConfig({
  test: {
    projects: [
      {
        resolve,
        ssr,
        test: { name: 'unit', sequence: { groupOrder: 0 }, include: ['{packages,apps}/*/src/**/*.test.ts', 'faults/src/**/*.test.ts'], exclude: [...exclude, '**/*.int.test.ts'] },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['{packages,apps}/*/src/**/*.int.test.ts', '{packages,apps}/*/test/**/*.int.test.ts', 'faults/test/**/*.int.test.ts'],
          exclude,
          // Starts (or finds) Postgres and Kafka once; each test file then makes its own
          // database and topics, so files run in parallel without seeing each other.
          globalSetup: ['packages/dev-services/src/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          maxWorkers: 2,
        },
      },
    ],
  },
});
