import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { type EventBusError, isEventBusError } from '@eventbus/core';
import type { EventMetric } from '@eventbus/monitor';
import { runMigrations } from '@eventbus/schema';
import { waitFor } from '@eventbus/dev-services';
import { EventConsumer, processOnce } from '../src/index.js';
import { consumerFixture } from './consumer-fixture.js';
import { DatabasesBefore0007 } from './databases-before-0007.js';

// A consumer of this version deployed before `eventbus migrate` applied 0007 (the upgrade order
// the docs ask for, done the other way round): its ctx.processOnce writes a column the inbox
// does not have yet. A schema that is behind is the operator's to fix; it must not turn every
// event whose handler uses the inbox into a dead letter.

let f: Awaited<ReturnType<typeof consumerFixture>>;
const databases = new DatabasesBefore0007();

beforeAll(async () => {
  f = await consumerFixture('inbox-0006');
  databases.open();
});
afterAll(async () => {
  await f?.reset();
  await databases.close();
  await f?.close();
});

/** A new database migrated to 0006. */
const databaseAt0006 = () => databases.create('before');

/** A consumer whose one subscription calls ctx.processOnce, recording what it returned or threw. */
function inboxConsumer(url: string, prefix: string, groupId: string) {
  const metrics: EventMetric[] = [];
  const outcomes: Array<boolean | Error> = [];
  const consumer = new EventConsumer({
    brokers: f.brokers,
    groupId,
    routing: { prefix },
    connectionString: url,
    fromBeginning: true,
    topicPartitions: 3,
    retryConfig: { maxRetries: 5, initialDelayMs: 200 },
    onMetric: (m) => void metrics.push(m),
  });
  consumer.subscribe({
    name: 'billing',
    eventTypes: ['invoice.*'],
    handler: async (_event, ctx) => {
      try {
        outcomes.push(await ctx.processOnce(async () => {}));
      } catch (error) {
        outcomes.push(error as Error);
        throw error;
      }
    },
  });
  return { consumer, metrics, outcomes };
}

describe('a consumer whose database is not migrated to 0007', () => {
  it('refuses to start with MIGRATION_PENDING naming the migration and the fix, consumes nothing, and starts once the database is migrated', async () => {
    const url = await databaseAt0006();
    const prefix = f.prefix();
    const groupId = f.group('before-0007');
    await f.publish(prefix, [{ tenantId: 't1', eventType: 'invoice.issued' }]);

    const early = inboxConsumer(url, prefix, groupId);
    const refused = await early.consumer.start().then(
      () => 'started',
      (error: unknown) => error,
    );
    await early.consumer.stop();
    expect(isEventBusError(refused, 'MIGRATION_PENDING')).toBe(true);
    const error = refused as EventBusError;
    expect(error.retriable).toBe(true);
    expect(error.details).toEqual({ table: 'eventbus.inbox', migration: databases.tag0007, missing: 'column' });
    expect(error.message).toContain(`eventbus.inbox has no column "subscription": the database is not migrated to ${databases.tag0007}`);
    expect(error.message).toContain('`eventbus migrate`, or the relay with RELAY_MIGRATE=true');
    // Refused before it joined the group: no handler call, no attempt, nothing committed or dead-lettered.
    expect({ outcomes: early.outcomes, metrics: early.metrics, groups: await f.groupsStartingWith(groupId) }).toEqual({
      outcomes: [],
      metrics: [],
      groups: [],
    });

    // What the message says to do: migrate, start again. The event is handled once, nothing dead-lettered.
    expect((await runMigrations({ connectionString: url })).applied).toBe(1);
    const migrated = inboxConsumer(url, prefix, groupId);
    try {
      await migrated.consumer.start();
      await waitFor(() => migrated.outcomes.length >= 1 || undefined, { timeoutMs: 30_000, message: 'the event handled after the migration' });
      expect({ outcomes: migrated.outcomes, statuses: migrated.metrics.map((m) => m.status) }).toEqual({ outcomes: [true], statuses: ['success'] });
    } finally {
      await migrated.consumer.stop();
    }
  });

  it('refuses to start while only the column of 0007 was added by hand and the key is still the old one', async () => {
    const url = await databaseAt0006();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      // docs/operators.md's first step for a large inbox, without the migration after it.
      await admin.query(`ALTER TABLE eventbus.inbox ADD COLUMN subscription text NOT NULL DEFAULT ''`);
      await admin.query('CREATE UNIQUE INDEX inbox_group_id_event_id_subscription_pk ON eventbus.inbox (group_id, event_id, subscription)');
    } finally {
      await admin.end();
    }
    const { consumer } = inboxConsumer(url, f.prefix(), f.group('key-0006'));
    const refused = await consumer.start().then(
      () => 'started',
      (error: unknown) => error,
    );
    await consumer.stop();
    expect(isEventBusError(refused, 'MIGRATION_PENDING')).toBe(true);
    expect((refused as EventBusError).details).toEqual({ table: 'eventbus.inbox', migration: databases.tag0007, missing: 'key' });
  });

  it('processOnce on it fails with MIGRATION_PENDING (Postgres 42703 named), and an effect’s own missing table passes through as it is', async () => {
    const url = await databaseAt0006();
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const db = drizzle(pool);
    try {
      const failed = await db
        .transaction((tx) => processOnce(tx, { groupId: 'g', eventId: 'e1', subscription: 'billing' }, async () => {}))
        .catch((e: unknown) => e);
      expect(isEventBusError(failed, 'MIGRATION_PENDING')).toBe(true);
      expect((failed as EventBusError).retriable).toBe(true);
      expect((failed as EventBusError).message).toMatch(
        new RegExp(
          `^processOnce cannot write to eventbus\\.inbox \\(Postgres 42703: column "subscription" of relation "inbox" does not exist\\): .*${databases.tag0007}.*\`eventbus migrate\``,
        ),
      );

      await runMigrations({ connectionString: url });
      const effectError = await db
        .transaction((tx) =>
          processOnce(tx, { groupId: 'g', eventId: 'e2' }, () => tx.execute(sql`INSERT INTO no_such_table VALUES (1)`).then(() => undefined)),
        )
        .catch((e: unknown) => e);
      expect(isEventBusError(effectError)).toBe(false);
      expect(((effectError as Error).cause as { code?: string }).code).toBe('42P01');
    } finally {
      await pool.end();
    }
  });
});

describe('a consumer whose database does not answer', () => {
  it('refuses to start with a retriable DATABASE_UNAVAILABLE naming the connectionString', async () => {
    // Port 1: nothing listens, the connection is refused at once.
    const { consumer, metrics } = inboxConsumer('postgres://eventbus@127.0.0.1:1/none', f.prefix(), f.group('no-db'));
    const refused = await consumer.start().then(
      () => 'started',
      (error: unknown) => error,
    );
    await consumer.stop();
    expect(isEventBusError(refused, 'DATABASE_UNAVAILABLE')).toBe(true);
    expect((refused as EventBusError).retriable).toBe(true);
    expect((refused as EventBusError).message).toMatch(/^the consumer's connectionString \(for ctx\.processOnce\): cannot connect to Postgres: /);
    expect(metrics).toEqual([]);
  });
});

describe('a running consumer whose inbox table goes away', () => {
  it('fails the attempt with a retriable MIGRATION_PENDING naming the inbox, and the retry after the table is back succeeds: nothing dead-lettered', async () => {
    const prefix = f.prefix();
    const groupId = f.group('inbox-gone');
    const { consumer, metrics, outcomes } = inboxConsumer(f.database.url, prefix, groupId);
    try {
      await consumer.start();
      await f.pool.query('ALTER TABLE eventbus.inbox RENAME TO inbox_away');
      try {
        await f.publish(prefix, [{ tenantId: 't1', eventType: 'invoice.issued' }]);
        await waitFor(() => outcomes.length >= 1 || undefined, { timeoutMs: 30_000, message: 'the first attempt' });
      } finally {
        await f.pool.query('ALTER TABLE eventbus.inbox_away RENAME TO inbox');
      }
      await waitFor(() => outcomes.includes(true) || metrics.some((m) => m.status === 'dead_lettered') || undefined, {
        timeoutMs: 30_000,
        message: () => `a retry that succeeds (outcomes ${outcomes.map(String).join(', ')})`,
      });
      const first = outcomes[0] as EventBusError;
      expect(isEventBusError(first, 'MIGRATION_PENDING')).toBe(true);
      expect(first.retriable).toBe(true);
      expect(first.message).toContain('processOnce cannot write to eventbus.inbox (Postgres 42P01: relation "eventbus.inbox" does not exist)');
      expect(first.message).toContain(databases.tag0007);
      expect({ last: outcomes.at(-1), deadLettered: metrics.filter((m) => m.status === 'dead_lettered').length }).toEqual({ last: true, deadLettered: 0 });
    } finally {
      await consumer.stop();
    }
  });
});
