import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkPerTenantOrder, createTopics, waitFor } from '@eventbus/dev-services';
import { SHARD_COUNT } from '@eventbus/schema';
import { relayFixture } from './relay-fixture.js';

let f: Awaited<ReturnType<typeof relayFixture>>;
beforeAll(async () => {
  f = await relayFixture('multi');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

describe('several relay instances', () => {
  it('20 tenants × 150 events from concurrent writers through two relays: all arrive, per tenant in write order; a stopped instance’s shards are taken over within 10 s', async () => {
    const topic = `${f.prefix}order`;
    await createTopics(f.brokers, [{ topic, numPartitions: 6 }]);
    const collector = await f.collect([topic]);
    const a = await f.startRelay({ batchSize: 200, instanceId: 'relay-a' });
    const b = await f.startRelay({ batchSize: 200, instanceId: 'relay-b' });
    await waitFor(() => a.shards.length + b.shards.length === SHARD_COUNT && a.shards.length > 0 && b.shards.length > 0, {
      timeoutMs: 10_000,
      message: 'shards split between the two instances',
    });
    expect(a.shards.filter((s) => b.shards.includes(s))).toEqual([]);

    // 4 writers, each writing its 5 tenants' events sequentially (write order = seq).
    const tenants = Array.from({ length: 20 }, (_, i) => `tenant-${i}`);
    const perTenant = 150;
    await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        const mine = tenants.filter((_, i) => i % 4 === w);
        for (let seq = 0; seq < perTenant; seq++) {
          for (const tenantId of mine) await f.write({ tenantId, eventKey: `${tenantId}-${seq}`, payload: { seq } });
        }
      }),
    );
    await collector.waitForEvents(tenants.length * perTenant, 60_000);
    const { inversions, distinct } = checkPerTenantOrder(collector.messages, (m) => JSON.parse(m.value!).seq);
    expect(distinct).toBe(tenants.length * perTenant);
    expect(inversions).toEqual([]);
    expect(a.metrics.published).toBeGreaterThan(0);
    expect(b.metrics.published).toBeGreaterThan(0);

    // A graceful stop hands b's shards over; apps/relay/test/shard-takeover.int.test.ts covers a SIGKILLed instance.
    await b.stop();
    const killedAt = Date.now();
    await waitFor(() => a.shards.length === SHARD_COUNT, { timeoutMs: 10_000, message: 'a takes over every shard' });
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    const after = await f.write({ tenantId: 'tenant-0', payload: { seq: perTenant } });
    await waitFor(() => collector.eventIds().has(after.eventLogId), { timeoutMs: 10_000, message: 'event after takeover' });
  }, 120_000); // 3,000 sequential transactions: slow on a loaded 2-core machine

  it('one very busy tenant does not starve the others', async () => {
    const topic = `${f.prefix}load`;
    await createTopics(f.brokers, [{ topic }]);
    const collector = await f.collect([topic]);
    // A backlog of 20k rows for one tenant, written before any relay runs.
    await f.pool.query(`
      WITH e AS (
        INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id)
        SELECT gen_random_uuid(), 'busy', 'busy-' || g, 'load.generated', jsonb_build_object('seq', g), 'c' FROM generate_series(1, 20000) g
        RETURNING id, event_key)
      INSERT INTO eventbus.outbox (event_id, shard)
      SELECT id, ${(await import('@eventbus/schema')).shardForTenant('busy')} FROM e ORDER BY substring(event_key from 6)::int`);
    const relay = await f.startRelay({ batchSize: 500 });
    // A quiet tenant in another shard writes one event while the backlog drains.
    const { shardForTenant } = await import('@eventbus/schema');
    let quietTenant = 'quiet-0';
    for (let i = 0; shardForTenant(quietTenant) === shardForTenant('busy'); i++) quietTenant = `quiet-${i}`;
    await waitFor(() => relay.metrics.published > 1000, { timeoutMs: 20_000, message: 'drain under way' });
    const quiet = await f.write({ tenantId: quietTenant, eventType: 'load.generated', payload: { seq: 0 } });
    await waitFor(() => collector.eventIds().has(quiet.eventLogId), { timeoutMs: 20_000, message: 'the quiet tenant’s event' });
    const busyBefore = collector.messages.filter((m) => m.key === 'busy').length;
    // The quiet event was not queued behind the rest of the busy backlog.
    expect(busyBefore).toBeLessThan(20_000);
    await collector.waitForEvents(20_001, 60_000);
  });
});
