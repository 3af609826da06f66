import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestDatabase, uniqueName } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('pnpm demo (as a subprocess, short duration)', () => {
  it('runs the whole pipeline, loses nothing, and prints a summary with where to look next', async () => {
    const { databaseUrl, kafkaBrokers } = testServices();
    const database = await createTestDatabase(databaseUrl, 'demo');
    try {
      const { stdout, stderr } = await run(process.execPath, [MAIN, '--duration', '3', '--rate', '100', '--json'], {
        // Its own topics and groups: the other demo test may run at the same time on this broker.
        env: {
          ...process.env,
          DATABASE_URL: database.url,
          KAFKA_BROKERS: kafkaBrokers.join(','),
          EVENTBUS_TOPIC_PREFIX: `${uniqueName('demo-')}.`,
          DEMO_GROUP_PREFIX: `${uniqueName('d')}-`,
        },
        timeout: 60_000,
      });
      const summary = JSON.parse(stdout.trim());
      expect(summary.written).toBeGreaterThan(20); // the rate is a target; a loaded machine writes fewer
      expect(summary.published).toBe(summary.written);
      expect(summary.consumedByBilling).toBe(summary.written);
      expect(summary.lost).toBe(0);
      expect(summary.deadLettered).toBeGreaterThan(0);
      expect(summary.shippedOk + summary.deadLettered).toBe(summary.written);
      // Billing applied its effect once per order through the inbox.
      expect(summary.invoices).toBe(summary.written);
      // Shipping's failures were retried, and every dead letter reached the DLQ table through the mirror.
      expect(summary.retries).toBeGreaterThan(0);
      expect(summary.mirroredToTable).toBe(summary.deadLettered);
      expect(stderr).toMatch(/written \d+\/s\s+published \d+\/s/);
      expect(stderr).toMatch(/summary: \d+ orders written/);
      expect(stderr).toMatch(/look further/);
      expect(stderr).toMatch(/console: http:\/\/127\.0\.0\.1:\d+\//);
    } finally {
      await database.drop();
    }
  });
});
