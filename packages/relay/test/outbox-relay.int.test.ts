import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { createTopics, waitFor } from '@eventbus/dev-services';
import { EventWriter } from '@eventbus/producer';
import { SHARD_COUNT, SLEEP_LOCK_NAMESPACE, shardForTenant } from '@eventbus/schema';
import { parseShardMask } from '../src/index.js';
import { relayFixture } from './relay-fixture.js';

let f: Awaited<ReturnType<typeof relayFixture>>;
beforeAll(async () => {
  f = await relayFixture('relay');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

describe('OutboxRelay (real Postgres, real Kafka)', () => {
  it('notifies once per transaction, naming exactly the shards of the rows it inserted whose lane sleeps', async () => {
    const listener = new pg.Client({ connectionString: f.database.url });
    await listener.connect();
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.query('LISTEN eventbus_outbox');
    try {
      const tenants = ['tenant-a', 'tenant-b', 'tenant-c'];
      const awakeTenant = 'awake-tenant';
      const shardsOf = (ts: string[]) => ts.map(shardForTenant);
      expect(shardsOf([...tenants, 'tenant-z'])).not.toContain(shardForTenant(awakeTenant));
      // This connection plays a lane asleep on the shards of tenants a, b, c and z (sql/shard-sleep.ts).
      await listener.query('SELECT pg_advisory_lock($1, s) FROM unnest($2::int[]) AS s', [SLEEP_LOCK_NAMESPACE, shardsOf([...tenants, 'tenant-z'])]);
      await new EventWriter(f.db).writeEventsWithOutbox(
        [...tenants, awakeTenant].map((tenantId, i) => ({ tenantId, eventKey: `mask-${i}`, eventType: 'order.placed', payload: {} })),
      );
      await f.write({ tenantId: awakeTenant, eventKey: 'mask-awake' }); // no lane sleeps there: no notification
      await f.write({ tenantId: 'tenant-z', eventKey: 'mask-z' });
      // A statement over more than 8 shards notifies for all of them, whether their lanes sleep or not.
      const wide: string[] = [];
      for (let i = 0; wide.length < 9; i++) {
        const tenant = `wide-${i}`;
        if (!wide.some((t) => shardForTenant(t) === shardForTenant(tenant))) wide.push(tenant);
      }
      await new EventWriter(f.db).writeEventsWithOutbox(
        wide.map((tenantId, i) => ({ tenantId, eventKey: `wide-${i}`, eventType: 'order.placed', payload: {} })),
      );
      await waitFor(() => payloads.length >= 3, { timeoutMs: 5000, message: 'three notifications' });
      const expected = (ts: string[]) => ts.reduce((mask, t) => mask | (1n << BigInt(shardForTenant(t))), 0n);
      expect(payloads.map(parseShardMask)).toEqual([expected(tenants), expected(['tenant-z']), expected(wide)]);
    } finally {
      await listener.end();
      await f.pool.query('DELETE FROM eventbus.outbox'); // no relay ran: the next test's must not publish these
    }
  });

  it('publishes a committed event with the topic, key, CloudEvents headers and payload', async () => {
    const topic = `${f.prefix}order`;
    await createTopics(f.brokers, [{ topic }]);
    const collector = await f.collect([topic]);
    const relay = await f.startRelay();
    const written = await f.write({
      tenantId: 'tenant-1',
      projectId: 'p-9',
      eventKey: 'order-1-placed',
      eventType: 'order.placed',
      payload: { orderId: 1, total: 42.5, tags: ['a'] },
      correlationId: 'corr-1',
      causationId: 'cmd-1',
      version: 2,
    });
    await collector.waitForEvents(1, 15_000);
    const message = collector.messages[0]!;
    expect(message.topic).toBe(topic);
    expect(message.key).toBe('tenant-1');
    expect(JSON.parse(message.value!)).toEqual({ orderId: 1, total: 42.5, tags: ['a'] });
    expect(message.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_id: written.eventLogId,
      ce_type: 'order.placed',
      ce_source: '/tenants/tenant-1',
      ce_tenantid: 'tenant-1',
      ce_projectid: 'p-9',
      ce_eventkey: 'order-1-placed',
      ce_eventversion: '2',
      ce_correlationid: 'corr-1',
      ce_causationid: 'cmd-1',
      'content-type': 'application/json',
    });
    // ce_time is the stored created_at to the millisecond, as the replay path (node-postgres' Date) gives it.
    const stored = await f.pool.query(
      `SELECT created_at, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS iso FROM eventbus.event_log WHERE id = $1`,
      [written.eventLogId],
    );
    expect(message.headers.ce_time).toBe(stored.rows[0].iso);
    expect(message.headers.ce_time).toBe((stored.rows[0].created_at as Date).toISOString());
    await waitFor(async () => (await f.pending()) === 0, { message: 'outbox drained' });
    // The relay counts after its COMMIT returns, which can be a moment after another
    // connection already sees the outbox empty.
    await waitFor(() => relay.metrics.published >= 1, { timeoutMs: 5000, message: 'the relay counted the publish' });
    expect(relay.health()).toMatchObject({ live: true, ready: true, checks: { postgres: true, kafka: true, listen: true } });
    expect(relay.shards).toHaveLength(SHARD_COUNT);
    await relay.stop();
    await relay.stop(); // idempotent
    expect(relay.health().live).toBe(false);
  });

  it('publishes the event of a transaction held open while later events commit (no skipped rows)', async () => {
    const collector = await f.collect();
    await f.startRelay();
    const client = await f.pool.connect();
    const { drizzle } = await import('drizzle-orm/node-postgres');
    let held: { eventLogId: string };
    try {
      await client.query('BEGIN');
      held = await new EventWriter(drizzle(client)).writeEventWithOutbox({
        tenantId: 'slow',
        eventKey: 'held-open',
        eventType: 'order.placed',
        payload: { held: true },
      });
      // Later rows (higher ids) commit and are published while the low id is invisible.
      const later = await Promise.all(Array.from({ length: 20 }, (_, i) => f.write({ tenantId: `fast-${i % 4}`, payload: { i } })));
      await waitFor(() => later.every((w) => collector.eventIds().has(w.eventLogId)), { timeoutMs: 15_000, message: 'later events published' });
      expect(collector.eventIds().has(held.eventLogId)).toBe(false);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await waitFor(() => collector.eventIds().has(held!.eventLogId), { timeoutMs: 5_000, message: 'the held event after commit' });
  });

  it('never publishes the events of a rolled-back transaction', async () => {
    const collector = await f.collect();
    await f.startRelay();
    const { drizzle } = await import('drizzle-orm/node-postgres');
    const client = await f.pool.connect();
    let rolledBack: { eventLogId: string };
    try {
      await client.query('BEGIN');
      rolledBack = await new EventWriter(drizzle(client)).writeEventWithOutbox({ tenantId: 'rb', eventKey: 'rb-1', eventType: 'order.placed', payload: {} });
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const marker = await f.write({ tenantId: 'rb', payload: { marker: true } });
    await waitFor(() => collector.eventIds().has(marker.eventLogId), { timeoutMs: 15_000, message: 'marker event' });
    expect(collector.eventIds().has(rolledBack!.eventLogId)).toBe(false);
  });

  it('moves a row larger than its topic accepts to the DLQ table at once, while other rows keep flowing', async () => {
    // A topic whose size limit the "big" events exceed: Kafka refuses them for their own sake.
    const bigTopic = `${f.prefix}bigtopic`;
    await createTopics(f.brokers, [{ topic: bigTopic, configEntries: [{ name: 'max.message.bytes', value: '1024' }] }]);
    const collector = await f.collect();
    const relay = await f.startRelay({
      retryConfig: { maxRetries: 2, initialDelayMs: 100, maxDelayMs: 400, backoffMultiplier: 2 },
      routing: { prefix: f.prefix, routes: { 'media.*': bigTopic } },
    });
    const poison = await f.write({ tenantId: 'dlq-tenant', eventType: 'media.uploaded', payload: { blob: 'x'.repeat(4000) } });
    const sameTenantLater = await f.write({ tenantId: 'dlq-tenant', payload: { after: true } });
    const otherTenant = await f.write({ tenantId: 'other-tenant', payload: { other: true } });
    await waitFor(() => collector.eventIds().has(sameTenantLater.eventLogId) && collector.eventIds().has(otherTenant.eventLogId), {
      timeoutMs: 15_000,
      message: 'the other rows',
    });
    const row = await waitFor(
      async () => {
        const { rows } = await f.pool.query(`SELECT * FROM eventbus.dead_letters WHERE event_id = $1`, [poison.eventLogId]);
        return rows[0];
      },
      { timeoutMs: 20_000, message: 'the DLQ row' },
    );
    expect(row).toMatchObject({
      stage: 'relay',
      tenant_id: 'dlq-tenant',
      event_type: 'media.uploaded',
      topic: bigTopic,
      attempts: 1,
      status: 'pending',
      message_key: 'dlq-tenant',
    });
    expect(row.error_message).toMatch(/too large|MESSAGE_TOO_LARGE|larger/i);
    expect(row.headers.ce_id).toBe(poison.eventLogId);
    expect(JSON.parse(row.value)).toEqual({ blob: 'x'.repeat(4000) });
    expect(row.first_failed_at.getTime()).toBeLessThanOrEqual(row.last_failed_at.getTime());
    const { rows: left } = await f.pool.query('SELECT count(*)::int AS n FROM eventbus.outbox WHERE event_id = $1', [poison.eventLogId]);
    expect(left[0].n).toBe(0);
    expect(collector.eventIds().has(poison.eventLogId)).toBe(false);
    expect(relay.metrics.deadLettered).toBe(1);
    expect(relay.metrics.publishFailures).toBe(1);
  });

  it('reconnects the LISTEN connection after pg_terminate_backend and sweeps what was written meanwhile', async () => {
    const collector = await f.collect();
    // A long poll, so only the reconnect sweep or a notification can publish quickly.
    const relay = await f.startRelay({ pollIntervalMs: 10_000, rebalanceIntervalMs: 10_000 });
    const admin = new pg.Client({ connectionString: f.database.url });
    await admin.connect();
    try {
      const terminate = async () => {
        const { rows } = await admin.query(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'eventbus-relay-listen' AND datname = current_database()`,
        );
        return rows.length;
      };
      expect(await terminate()).toBeGreaterThanOrEqual(1);
      const meanwhile = await f.write({ tenantId: 'listen', payload: { meanwhile: true } });
      await waitFor(() => collector.eventIds().has(meanwhile.eventLogId), { timeoutMs: 8_000, message: 'event written while the listener was down' });
      await waitFor(() => relay.health().checks.listen, { timeoutMs: 8_000, message: 'listener reconnected' });
      const after = await f.write({ tenantId: 'listen', payload: { after: true } });
      const started = Date.now();
      await waitFor(() => collector.eventIds().has(after.eventLogId), { timeoutMs: 5_000, message: 'event after reconnect' });
      expect(Date.now() - started).toBeLessThan(3_000); // woken by NOTIFY, not the 10 s poll
    } finally {
      await admin.end();
    }
  });

  it('claims by the notified shards, yet a row that came without a notification is swept within one poll interval', async () => {
    const collector = await f.collect();
    // A lane woken by a notification probes only the shards it names (relay-lane.ts). A row
    // written with eventbus.notify = 'off' is named by nobody: the sweep must still find it.
    const relay = await f.startRelay({ pollIntervalMs: 1500, rebalanceIntervalMs: 10_000, lanes: 1 });
    await waitFor(() => relay.shards.length === SHARD_COUNT, { timeoutMs: 5000, message: 'the relay holds every shard' });
    const [silentTenant, loudTenant] = ['silent-tenant', 'loud-tenant'];
    expect(shardForTenant(silentTenant)).not.toBe(shardForTenant(loudTenant));
    const silent = await f.db.transaction(async (tx) => {
      await tx.execute(sql`SET LOCAL eventbus.notify = 'off'`);
      return new EventWriter(tx).writeEventWithOutbox({ tenantId: silentTenant, eventKey: 'silent', eventType: 'order.placed', payload: {} });
    });
    const written = Date.now();
    // Meanwhile, notified rows of another shard keep the lane busy with narrow claims.
    for (let i = 0; i < 5; i++) {
      const loud = await f.write({ tenantId: loudTenant });
      await waitFor(() => collector.eventIds().has(loud.eventLogId), { timeoutMs: 3000, message: `notified event ${i}` });
    }
    await waitFor(() => collector.eventIds().has(silent.eventLogId), { timeoutMs: 5000, message: 'the un-notified event' });
    expect(Date.now() - written).toBeLessThan(1500 + 1500); // one poll interval, plus a claim and Kafka's round trip
  });

  it('a lane that holds no shard waits for the poll or the next rebalance instead of spinning', async () => {
    const holder = await f.startRelay({ lanes: 1, rebalanceIntervalMs: 60_000 });
    await waitFor(() => holder.shards.length === SHARD_COUNT, { timeoutMs: 5000, message: 'the first relay holds every shard' });
    // The second relay's first rebalance finds no free shard, and the holder keeps them all
    // for a minute: its lane has nothing to claim. Count how often it goes back to sleep.
    const idle = await f.startRelay({ lanes: 1, rebalanceIntervalMs: 60_000, pollIntervalMs: 500 });
    const lane = (idle as unknown as { lanes: Array<{ wakeup: { wait: (ms: number, signal?: AbortSignal) => Promise<void> } }> }).lanes[0]!;
    let waits = 0;
    const wait = lane.wakeup.wait.bind(lane.wakeup);
    lane.wakeup.wait = (ms, signal) => {
      waits++;
      return wait(ms, signal);
    };
    await new Promise((r) => setTimeout(r, 2000));
    expect(idle.shards).toEqual([]);
    expect(waits).toBeLessThanOrEqual(6); // one per 500 ms poll; a spinning loop makes hundreds
  });

  it('rejects bad options with a typed error naming the setting', async () => {
    const { OutboxRelay } = await import('../src/index.js');
    expect(() => new OutboxRelay({ connectionString: 'mysql://x', brokers: ['a:1'] })).toThrow(/connectionString: expected a postgres:\/\//);
    expect(() => new OutboxRelay({ connectionString: f.database.url, brokers: [] })).toThrow(/brokers: expected at least one host:port/);
    expect(() => new OutboxRelay({ connectionString: f.database.url, brokers: ['nohost'] })).toThrow(/brokers: expected host:port/);
    expect(() => new OutboxRelay({ connectionString: f.database.url, brokers: ['a:1'], batchSize: 0 })).toThrow(
      /batchSize: expected an integer from 1 to 10000/,
    );
    expect(() => new OutboxRelay({ connectionString: f.database.url, brokers: ['a:1'], retryConfig: { maxRetries: -1 } })).toThrow(/retryConfig.maxRetries/);
    const unstarted = new OutboxRelay({ connectionString: f.database.url, brokers: f.brokers });
    await unstarted.stop(); // safe before start
  });
});
