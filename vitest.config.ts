import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

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

// The integration files that take about half a minute or more on a 2-core machine, longest first.
// vitest starts files in the order of the last run's durations when it has them
// (node_modules/.vite), and largest first on a fresh clone such as CI's, where the fault matrix
// and the broker outage (small files) came last, and whichever ended last ran alone while the
// other worker had nothing to do. Started first, they overlap with the many short files
// instead; those two still run side by side (as they did at the end), apart from the
// CPU-heavy npm install and CLI files.
const LONG_FILES = [
  'apps/cli/test/cli-audit-memory.int.test.ts',
  'faults/test/fault-matrix.int.test.ts',
  'apps/cli/test/packed-install.int.test.ts',
  'apps/cli/test/cli-start-up.int.test.ts',
  'apps/cli/test/cli-status.int.test.ts',
  'packages/consumer/test/crash-redelivery.int.test.ts',
  'packages/relay/test/broker-outage.int.test.ts',
  'apps/cli/test/cli-replay.int.test.ts',
  'apps/cli/test/cli-prune.int.test.ts',
];

/** vitest's order (projects by groupOrder, then its own order of files), with LONG_FILES moved to the front of their project. */
class LongFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const at = LONG_FILES.findIndex((file) => spec.moduleId.endsWith(`/${file}`));
      return at === -1 ? LONG_FILES.length : at;
    };
    // vitest keeps each project's files together; the order of the projects stays as it is.
    const projectAt = new Map<string, number>();
    for (const [index, spec] of sorted.entries()) if (!projectAt.has(spec.project.name)) projectAt.set(spec.project.name, index);
    return sorted
      .map((spec, index) => ({ spec, key: [projectAt.get(spec.project.name)!, rank(spec), index] }))
      .sort((a, b) => a.key[0]! - b.key[0]! || a.key[1]! - b.key[1]! || a.key[2]! - b.key[2]!)
      .map(({ spec }) => spec);
  }
}

export default defineConfig({
  test: {
    sequence: { sequencer: LongFilesFirst },
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
