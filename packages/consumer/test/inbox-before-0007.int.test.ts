import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { EventMetric } from '@eventbus/monitor';
import { migrationsFolder, runMigrations } from '@eventbus/schema';
import { waitFor } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';
import { EventConsumer } from '../src/index.js';
import { consumerFixture } from './consumer-fixture.js';

// A consumer of this version deployed before `eventbus migrate` applied 0007 (the upgrade order
// the docs ask for, done the other way round): its ctx.processOnce writes a column the inbox
// does not have yet. A schema that is behind is the operator's to fix; it must not turn every
// event whose handler uses the inbox into a dead letter.

let f: Awaited<ReturnType<typeof consumerFixture>>;
const serverUrl = testServices().databaseUrl;
let before0007: string;
let url: string;
let dbName: string;

beforeAll(async () => {
  f = await consumerFixture('inbox-0006');
  before0007 = mkdtempSync(join(tmpdir(), 'inbox-0006-'));
  cpSync(migrationsFolder(), before0007, { recursive: true });
  const journalPath = join(before0007, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: Array<{ tag: string }> };
  journal.entries = journal.entries.filter((e) => e.tag < '0007');
  writeFileSync(journalPath, JSON.stringify(journal));
  dbName = `eb_inbox_before_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  await admin.end();
  const u = new URL(serverUrl);
  u.pathname = `/${dbName}`;
  url = u.toString();
  await runMigrations({ connectionString: url, folder: before0007 });
});
afterAll(async () => {
  await f?.reset();
  rmSync(before0007, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  await admin.end();
  await f?.close();
});

describe('a consumer whose database is not migrated to 0007 yet', () => {
  it('does not dead-letter the events its handler calls ctx.processOnce for (or refuses to start, naming the migration)', async () => {
    const prefix = f.prefix();
    const groupId = f.group('before-0007');
    const metrics: EventMetric[] = [];
    const errors: string[] = [];
    const consumer = new EventConsumer({
      brokers: f.brokers,
      groupId,
      routing: { prefix },
      connectionString: url,
      fromBeginning: true,
      topicPartitions: 3,
      retryConfig: { maxRetries: 2, initialDelayMs: 100 },
      onMetric: (m) => void metrics.push(m),
    });
    let calls = 0;
    consumer.subscribe({
      name: 'billing',
      eventTypes: ['invoice.*'],
      handler: async (_event, ctx) => {
        calls++;
        try {
          await ctx.processOnce(async () => {});
        } catch (error) {
          errors.push((error as Error).message);
          throw error;
        }
      },
    });
    const started = await consumer.start().then(
      () => undefined,
      (error: Error) => error,
    );
    try {
      if (started) {
        expect(started.message).toMatch(/0007|eventbus migrate/);
        return;
      }
      await f.publish(prefix, [{ tenantId: 't1', eventType: 'invoice.issued' }]);
      // Three calls (the first and two retries) end in the DLQ when the failure counts as the
      // handler's; a fourth call, or a consumer that stopped, means it did not.
      await waitFor(() => metrics.some((m) => m.status === 'dead_lettered') || calls >= 4 || undefined, {
        timeoutMs: 30_000,
        message: () => `a dead letter or a fourth call (calls ${calls})`,
      });
      expect({ errors: [...new Set(errors)], deadLettered: metrics.filter((m) => m.status === 'dead_lettered').length }).toEqual({
        errors: expect.any(Array),
        deadLettered: 0,
      });
    } finally {
      await consumer.stop();
    }
  });
});
