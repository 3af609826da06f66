import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { EventWriter } from '@eventbus/producer';
import { SHARD_COUNT, SHARD_LOCK_NAMESPACE } from '@eventbus/schema';
import { checkPerTenantOrder, createTopics, KafkaCollector, uniqueName, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { startRelayProcess } from './relay-process-fixture.js';

let database: TestDatabase;
let pool: pg.Pool;
const children: ChildProcess[] = [];
let collector: KafkaCollector | undefined;

beforeAll(async () => {
  database = await testDatabase('takeover');
  pool = new pg.Pool({ connectionString: database.url, max: 6 });
  pool.on('error', () => undefined);
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await collector?.stop();
  await pool?.end();
  await database?.drop();
});

/**
 * Shard locks held right now, per relay instance. Read from Postgres itself (pg_locks joined
 * to the connections' application_name), not from what the relays say about themselves.
 */
async function shardLocksByInstance(): Promise<Map<string, number>> {
  const { rows } = await pool.query(
    `SELECT substring(a.application_name from '^eventbus-relay ([^/]+)') AS instance, count(*)::int AS shards
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objsubid = 2 AND l.objid::bigint < $2
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     GROUP BY 1`,
    [SHARD_LOCK_NAMESPACE, SHARD_COUNT],
  );
  return new Map(rows.map((r) => [r.instance as string, r.shards as number]));
}

describe('shard takeover after an instance dies', () => {
  it('SIGKILL one of two relays under load: the survivor holds all 64 shards within 10 s; nothing lost, per-tenant order kept', async () => {
    const prefix = `${uniqueName('takeover.')}.`;
    const topic = `${prefix}order`;
    const brokers = testServices().kafkaBrokers;
    await createTopics(brokers, [{ topic, numPartitions: 6 }]);
    collector = await new KafkaCollector(brokers, [topic]).start();
    // Default rebalance interval (2 s): the promise is about the shipped settings.
    const env = (id: string) => ({
      DATABASE_URL: database.url,
      KAFKA_BROKERS: brokers.join(','),
      EVENTBUS_TOPIC_PREFIX: prefix,
      RELAY_INSTANCE_ID: id,
      RELAY_BATCH_SIZE: '50',
    });
    const a = startRelayProcess(env('relay-a'), children);
    await waitFor(() => /relay ready/.test(a.output()), { timeoutMs: 30_000, message: 'relay-a ready' });
    const b = startRelayProcess(env('relay-b'), children);
    await waitFor(
      async () => {
        const held = await shardLocksByInstance();
        return (held.get('relay-a') ?? 0) > 0 && (held.get('relay-b') ?? 0) > 0 && (held.get('relay-a') ?? 0) + (held.get('relay-b') ?? 0) === SHARD_COUNT;
      },
      { timeoutMs: 20_000, message: 'shards split between relay-a and relay-b' },
    );

    // Writers keep going through the kill: 16 tenants, each written sequentially.
    const writer = new EventWriter(drizzle(pool));
    const tenants = Array.from({ length: 16 }, (_, i) => `tenant-${i}`);
    const written: string[] = [];
    let writing = true;
    const writers = Promise.all(
      [0, 1].map(async (w) => {
        const mine = tenants.filter((_, i) => i % 2 === w);
        for (let seq = 0; writing || seq < 20; seq++) {
          for (const tenantId of mine) {
            const r = await writer.writeEventWithOutbox({ tenantId, eventKey: `${tenantId}-${seq}`, eventType: 'order.placed', payload: { seq } });
            written.push(r.eventLogId);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }),
    );
    await waitFor(() => collector!.messages.length >= 200, { timeoutMs: 30_000, message: 'events flowing through both relays' });

    b.child.kill('SIGKILL');
    await b.exited;
    const killedAt = Date.now();
    await waitFor(async () => (await shardLocksByInstance()).get('relay-a') === SHARD_COUNT, {
      timeoutMs: 15_000,
      intervalMs: 100,
      message: 'relay-a holds every shard',
    });
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan(10_000);
    expect((await shardLocksByInstance()).has('relay-b')).toBe(false);

    writing = false;
    await writers;
    await waitFor(() => written.every((id) => collector!.eventIds().has(id)), { timeoutMs: 30_000, message: 'every written event delivered' });
    const { inversions, distinct } = checkPerTenantOrder(collector.messages, (m) => JSON.parse(m.value!).seq);
    expect(distinct).toBe(written.length);
    expect(inversions).toEqual([]);
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
  });
});
