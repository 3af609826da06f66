import { defineConfig } from 'vitest/config';

// One runner for the whole repo. Workspace packages resolve to their TypeScript sources
// (the "source" export condition), so tests need no build of the libraries; apps that tests
// start as subprocesses run from dist/ (`pnpm test` builds first).
const resolve = { conditions: ['source'] };
const ssr = { resolve: { conditions: ['source'], externalConditions: ['source'] } };
const exclude = ['**/node_modules/**', '**/dist/**'];
// The 3-node cluster project (scripts/kafka-local.sh cluster-*: three JVMs, a JDK and Maven even
// where Docker is available) runs only when asked for: `--project cluster` (`pnpm test:cluster`)
// or KAFKA_CLUSTER_TESTS=1. The fast suite stays on the single broker.
const argv = process.argv;
const clusterRequested =
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: read by vitest, which turbo does not run
  process.env.KAFKA_CLUSTER_TESTS === '1' || argv.some((a, i) => a === '--project=cluster' || (a === '--project' && argv[i + 1] === 'cluster'));

export default defineConfig({
  test: {
    projects: [
      {
        resolve,
        ssr,
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['{packages,apps}/*/src/**/*.test.ts', 'faults/src/**/*.test.ts'],
          exclude: [...exclude, '**/*.int.test.ts'],
        },
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
      ...(clusterRequested
        ? [
            {
              resolve,
              ssr,
              test: {
                name: 'cluster',
                sequence: { groupOrder: 2 },
                include: ['{packages,apps}/*/test-cluster/**/*.int.test.ts', 'faults/test-cluster/**/*.int.test.ts'],
                exclude,
                // Each file starts (or reuses) the cluster on 29092-29097 and stops its nodes: one file at a time.
                testTimeout: 90_000,
                hookTimeout: 240_000,
                maxWorkers: 1,
                fileParallelism: false,
              },
            },
          ]
        : []),
    ],
  },
});
