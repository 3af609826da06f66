import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { uuidv7 } from '@eventbus/core';
import { runMigrations } from '@eventbus/schema';
import { waitFor } from '@eventbus/dev-services';
import { processOnce, type InboxKey } from '../src/index.js';
import { consumerFixture } from './consumer-fixture.js';
import { DatabasesBefore0007 } from './databases-before-0007.js';

// The inbox key is (group, event, subscription); '' is the group-wide key, which every row
// written before migration 0007 has.

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('inbox-subs');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

/** processOnce in a transaction of its own on `db`; whether the effect ran. */
function once(db: NodePgDatabase, key: InboxKey): Promise<boolean> {
  return db.transaction((tx) => processOnce(tx, key, async () => {}));
}

/** The statement processOnce ran before migration 0007 (its key had no subscription): what an older consumer still runs during a rolling upgrade. */
const OLDER_CONSUMER_SQL = 'INSERT INTO eventbus.inbox (group_id, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1 AS inserted';

describe('ctx.processOnce per subscription (real Kafka, real Postgres)', () => {
  it('runs the effect of every subscription that matches the event, not only the first', async () => {
    const prefix = f.prefix();
    const groupId = f.group('two-subs');
    const ran: Array<{ subscription: string; ran: boolean }> = [];
    const handler = (subscription: string) => async (_event: unknown, ctx: { processOnce: (e: () => Promise<void>) => Promise<boolean> }) => {
      ran.push({ subscription, ran: await ctx.processOnce(async () => {}) });
    };
    await f.consumer({ groupId, routing: { prefix }, connectionString: f.database.url }, [
      { name: 'index', eventTypes: ['invoice.*'], handler: handler('index') },
      { name: 'bill', eventTypes: ['invoice.*'], handler: handler('bill') },
    ]);
    const [id] = await f.publish(prefix, [{ tenantId: 't1', eventType: 'invoice.issued' }]);
    await waitFor(() => ran.length >= 2, { timeoutMs: 20_000, message: 'both subscriptions called' });
    // Each subscription's effect is its own, as its retries and dead letters are.
    expect(ran.sort((a, b) => a.subscription.localeCompare(b.subscription))).toEqual([
      { subscription: 'bill', ran: true },
      { subscription: 'index', ran: true },
    ]);
    const rows = await f.pool.query('SELECT subscription FROM eventbus.inbox WHERE group_id = $1 AND event_id = $2 ORDER BY 1', [groupId, id]);
    expect(rows.rows.map((r) => r.subscription)).toEqual(['bill', 'index']);
  });
});

describe('processOnce: subscription and group-wide keys', () => {
  it('keys each subscription on its own; a group-wide row counts for every subscription, and a group-wide call finds any row of the group', async () => {
    const groupId = f.group('keys');
    const [first, second] = [uuidv7(), uuidv7()];
    expect(await once(f.db, { groupId, eventId: first, subscription: 'index' })).toBe(true);
    expect(await once(f.db, { groupId, eventId: first, subscription: 'index' })).toBe(false);
    expect(await once(f.db, { groupId, eventId: first, subscription: 'bill' })).toBe(true);
    // Without a subscription: the group already processed the event.
    expect(await once(f.db, { groupId, eventId: first })).toBe(false);
    expect(await once(f.db, { groupId: f.group('other'), eventId: first, subscription: 'index' })).toBe(true);

    expect(await once(f.db, { groupId, eventId: second })).toBe(true);
    expect(await once(f.db, { groupId, eventId: second, subscription: '' })).toBe(false);
    expect(await once(f.db, { groupId, eventId: second, subscription: 'index' })).toBe(false);
    const rows = await f.pool.query('SELECT event_id, subscription FROM eventbus.inbox WHERE group_id = $1 ORDER BY 1, 2', [groupId]);
    expect(rows.rows).toEqual([
      { event_id: first, subscription: 'bill' },
      { event_id: first, subscription: 'index' },
      { event_id: second, subscription: '' },
    ]);
  });
});

describe('upgrade to migration 0007 (the inbox key gains the subscription)', () => {
  // The migrations up to 0006: what a database that has not been upgraded yet has.
  const databases = new DatabasesBefore0007();
  beforeAll(() => databases.open());
  afterAll(() => databases.close());
  const databaseAt0006 = (label: string) => databases.create(label);

  it.each([
    ['as the migration builds the key', false],
    ['when the operator built the key concurrently beforehand', true],
  ])('an event processed before the upgrade is not processed again after it (%s)', async (_label, prebuilt) => {
    const url = await databaseAt0006(prebuilt ? 'prebuilt' : 'plain');
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    const db = drizzle(pool);
    try {
      const groupId = f.group('upgraded');
      const [before, after, concurrent] = [uuidv7(), uuidv7(), uuidv7()];
      expect((await pool.query(OLDER_CONSUMER_SQL, [groupId, before])).rows).toEqual([{ inserted: 1 }]);
      if (prebuilt) {
        // docs/operators.md: for a large inbox, these two first; the migration then skips them.
        await pool.query(`ALTER TABLE eventbus.inbox ADD COLUMN subscription text NOT NULL DEFAULT ''`);
        expect((await pool.query(OLDER_CONSUMER_SQL, [groupId, concurrent])).rows).toEqual([{ inserted: 1 }]);
        await pool.query('CREATE UNIQUE INDEX CONCURRENTLY inbox_group_id_event_id_subscription_pk ON eventbus.inbox (group_id, event_id, subscription)');
      }
      expect((await runMigrations({ connectionString: url })).applied).toBe(1);
      const key = await pool.query(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'eventbus.inbox'::regclass AND contype = 'p'`);
      expect(key.rows).toEqual([{ def: 'PRIMARY KEY (group_id, event_id, subscription)' }]);

      // The row from before the upgrade has the group-wide key: done for every subscription.
      expect(await once(db, { groupId, eventId: before, subscription: 'index' })).toBe(false);
      expect(await once(db, { groupId, eventId: before, subscription: 'bill' })).toBe(false);
      if (prebuilt) expect(await once(db, { groupId, eventId: concurrent, subscription: 'index' })).toBe(false);
      expect(await once(db, { groupId, eventId: after, subscription: 'index' })).toBe(true);
      expect(await once(db, { groupId, eventId: after, subscription: 'bill' })).toBe(true);

      // An older consumer still running during the rolling upgrade: it finds the event a newer
      // member processed under its subscription's key, and still processes new events once.
      expect((await pool.query(OLDER_CONSUMER_SQL, [groupId, after])).rows).toEqual([]);
      const fresh = uuidv7();
      expect((await pool.query(OLDER_CONSUMER_SQL, [groupId, fresh])).rows).toEqual([{ inserted: 1 }]);
      expect((await pool.query(OLDER_CONSUMER_SQL, [groupId, fresh])).rows).toEqual([]);
      expect(await once(db, { groupId, eventId: fresh, subscription: 'index' })).toBe(false);
    } finally {
      await pool.end();
    }
  });

  it("a consumer on the upgraded database skips an event its group processed before the upgrade, and runs each subscription's effect for a new one", async () => {
    const url = await databaseAt0006('consumer');
    const prefix = f.prefix();
    const groupId = f.group('upgraded');
    const before = uuidv7();
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      await pool.query(OLDER_CONSUMER_SQL, [groupId, before]);
      await runMigrations({ connectionString: url });
    } finally {
      await pool.end();
    }
    const ran: string[] = [];
    const handler = (subscription: string) => async (event: { id: string }, ctx: { processOnce: (e: () => Promise<void>) => Promise<boolean> }) => {
      ran.push(`${subscription} ${event.id === before ? 'before' : 'after'} ${await ctx.processOnce(async () => {})}`);
    };
    await f.consumer({ groupId, routing: { prefix }, connectionString: url }, [
      { name: 'index', eventTypes: ['invoice.*'], handler: handler('index') },
      { name: 'bill', eventTypes: ['invoice.*'], handler: handler('bill') },
    ]);
    await f.publish(prefix, [
      { tenantId: 't1', eventType: 'invoice.issued', id: before },
      { tenantId: 't1', eventType: 'invoice.issued' },
    ]);
    await waitFor(() => ran.length >= 4, { timeoutMs: 20_000, message: 'both events in both subscriptions' });
    expect(ran.sort()).toEqual(['bill after true', 'bill before false', 'index after true', 'index before false']);
  });
});
