import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { EventWriter } from '@eventbus/producer';
import { createTopics, KafkaCollector, uniqueName, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { startRelayProcess as startRelay, type RunningRelay } from './relay-process-fixture.js';

let database: TestDatabase;
let pool: pg.Pool;
const children: ChildProcess[] = [];
const collectors: KafkaCollector[] = [];

beforeAll(async () => {
  database = await testDatabase('relayapp');
  pool = new pg.Pool({ connectionString: database.url, max: 8 });
  pool.on('error', () => undefined);
});
// A test that failed half-way leaves its relay running, which would take the next test's
// shards (same database): kill whatever is still alive after each test.
afterEach(async () => {
  const alive = children.filter((child) => child.exitCode === null && child.signalCode === null);
  await Promise.all(alive.map((child) => new Promise((resolve) => child.once('exit', resolve).kill('SIGKILL'))));
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.all(collectors.map((c) => c.stop()));
  await pool?.end();
  await database?.drop();
});

function startRelayProcess(env: Record<string, string>): RunningRelay {
  return startRelay(env, children);
}

function baseEnv(prefix: string): Record<string, string> {
  return {
    DATABASE_URL: database.url,
    KAFKA_BROKERS: testServices().kafkaBrokers.join(','),
    EVENTBUS_TOPIC_PREFIX: prefix,
    RELAY_POLL_INTERVAL_MS: '200',
    RELAY_REBALANCE_INTERVAL_MS: '300',
  };
}

describe('apps/relay as a process', () => {
  it('fails fast with a message naming each bad or missing variable', async () => {
    const relay = startRelayProcess({ KAFKA_BROKERS: 'not-a-broker', RELAY_BATCH_SIZE: 'lots', LOG_LEVEL: 'loud' });
    expect(await relay.exited).toBe(2);
    const out = relay.output();
    expect(out).toMatch(/DATABASE_URL is missing: expected Postgres primary/);
    expect(out).toMatch(/KAFKA_BROKERS entry "not-a-broker" is invalid: expected host:port/);
    expect(out).toMatch(/RELAY_BATCH_SIZE="lots" is invalid: expected an integer from 1 to 10000/);
    expect(out).toMatch(/LOG_LEVEL="loud" is invalid/);
  });

  it('fails fast when the database cannot be reached, without leaking the password', async () => {
    const relay = startRelayProcess({ ...baseEnv('x.'), DATABASE_URL: 'postgres://eventbus:s3cret-pw@127.0.0.1:1/nowhere' });
    expect(await relay.exited).toBe(4);
    expect(relay.output()).toMatch(/relay cannot start: cannot connect to Postgres at postgres:\/\/eventbus:\*\*\*@127\.0\.0\.1:1\/nowhere/);
    expect(relay.output()).not.toContain('s3cret-pw');
  });

  it('serves /livez, /readyz and /metrics, and exits 0 on SIGTERM', async () => {
    const relay = startRelayProcess(baseEnv(`${uniqueName('app.')}.`));
    const port = await waitFor(() => /"port":(\d+)/.exec(relay.output())?.[1], { timeoutMs: 20_000, message: 'relay ready' });
    const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`);
    expect((await get('/livez')).status).toBe(200);
    const ready = await waitFor(
      async () => {
        const res = await get('/readyz');
        return res.status === 200 ? res.json() : undefined;
      },
      { message: '/readyz 200' },
    );
    expect(ready).toMatchObject({ ready: true, checks: { postgres: true, kafka: true, listen: true } });
    const metrics = await (await get('/metrics')).text();
    expect(metrics).toMatch(/^eventbus_relay_published_total \d+$/m);
    expect(metrics).toMatch(/^eventbus_outbox_backlog \d+$/m);
    // An OTel histogram has no series before its first observation; relay-metrics.int.test.ts checks the buckets.
    expect(metrics).toMatch(/^eventbus_relay_batches_total \d+$/m);
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
    expect(relay.output()).toMatch(/"msg":"stopped"/);
  });

  it('SIGKILL mid-stream, then restart: nothing lost, duplicates at most one batch', async () => {
    const prefix = `${uniqueName('kill.')}.`;
    const topic = `${prefix}order`;
    const brokers = testServices().kafkaBrokers;
    await createTopics(brokers, [{ topic }]);
    const collector = await new KafkaCollector(brokers, [topic]).start();
    collectors.push(collector);
    const batch = 100;
    const total = 10_000;
    // The backlog exists before the relay starts, so the kill lands mid-drain.
    const writer = new EventWriter(drizzle(pool));
    const ids: string[] = [];
    for (let i = 0; i < total; i += 500) {
      const results = await writer.writeEventsWithOutbox(
        Array.from({ length: 500 }, (_, j) => ({ tenantId: `t-${(i + j) % 7}`, eventKey: `e-${i + j}`, eventType: 'order.placed', payload: { seq: i + j } })),
      );
      ids.push(...results.map((r) => r.eventLogId));
    }
    const lanes = 2;
    const env = { ...baseEnv(prefix), RELAY_BATCH_SIZE: String(batch), RELAY_LANES: String(lanes) };
    const first = startRelayProcess(env);
    await waitFor(() => collector.messages.length >= 1000, { timeoutMs: 30_000, message: 'first relay mid-stream' });
    first.child.kill('SIGKILL');
    await first.exited;
    // The kill landed mid-drain: rows are still pending (the relay deletes a row only after Kafka's ack).
    expect((await pool.query('SELECT count(*)::int AS n FROM eventbus.outbox')).rows[0].n).toBeGreaterThan(0);
    const second = startRelayProcess(env);
    await collector.waitForEvents(total, 60_000);
    const received = collector.eventIds();
    expect(ids.filter((id) => !received.has(id))).toEqual([]);
    // Let anything in flight land before counting duplicates.
    await waitFor(async () => (await pool.query('SELECT count(*)::int AS n FROM eventbus.outbox')).rows[0].n === 0, { message: 'outbox empty' });
    const duplicates = collector.messages.length - received.size;
    // Each lane may have had one batch sent but not yet committed when the process died.
    expect(duplicates).toBeLessThanOrEqual(batch * lanes);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
