import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkPerTenantOrder, createTopics, TcpProxy, waitFor } from '@eventbus/dev-services';
import { KafkaPublisher } from '@eventbus/kafka';
import { SHARD_COUNT, shardForTenant } from '@eventbus/schema';
import { relayFixture } from './relay-fixture.js';

// Relay "b" reaches the shared broker only through a proxy of its own (every kafkajs socket
// of b, bootstrap or not, is opened to the proxy), relay "a" directly. Cutting the proxy cuts
// b alone from Kafka, as a broken route or expired credentials on one host would.
const FAILOVER_MS = 2000;
let f: Awaited<ReturnType<typeof relayFixture>>;
let proxy: TcpProxy;
beforeAll(async () => {
  f = await relayFixture('kfailover');
  const [host, port] = f.brokers[0]!.split(':');
  proxy = await new TcpProxy(host!, Number(port)).start();
});
afterEach(async () => {
  proxy.setMode('pass');
  await f.reset();
});
afterAll(async () => {
  await f?.close();
  await proxy?.stop();
});

function publisherThroughProxy(): KafkaPublisher {
  return new KafkaPublisher({
    brokers: f.brokers,
    clientId: 'relay-b',
    publishTimeoutMs: 1500,
    kafkajs: {
      socketFactory: ({ onConnect }) => net.connect({ host: '127.0.0.1', port: proxy.port }, onConnect),
      retry: { retries: 1, initialRetryTime: 100 },
    },
  });
}

describe('a relay cut off from Kafka while another instance reaches it', () => {
  it('hands its shards to the other instance after kafkaFailoverMs, loses nothing, keeps per-tenant order, and rejoins once Kafka answers', async () => {
    const topic = `${f.prefix}order`;
    await createTopics(f.brokers, [{ topic, numPartitions: 6 }]);
    const collector = await f.collect([topic]);
    const a = await f.startRelay({ instanceId: 'relay-a', lanes: 1, kafkaFailoverMs: FAILOVER_MS });
    const b = await f.startRelay({
      instanceId: 'relay-b',
      lanes: 2,
      kafkaFailoverMs: FAILOVER_MS,
      maxOutageBackoffMs: 500,
      publisher: publisherThroughProxy(),
    });
    await waitFor(() => a.shards.length + b.shards.length === SHARD_COUNT && b.shards.length > 0 && a.shards.length > 0, {
      timeoutMs: 10_000,
      message: 'shards split',
    });
    expect(proxy.accepted).toBeGreaterThan(0); // b's Kafka client really goes through the proxy

    // Tenants of b's shards and of a's: each gets events before, during and after the cut.
    const tenants = Array.from({ length: 40 }, (_, i) => `tenant-${i}`);
    const ofB = tenants.filter((t) => b.shards.includes(shardForTenant(t)));
    expect(ofB.length).toBeGreaterThan(0);
    let seq = 0;
    const writeRound = async () => {
      const round = seq++;
      for (const tenantId of tenants) await f.write({ tenantId, eventKey: `${tenantId}-${round}`, payload: { seq: round } });
    };
    await writeRound();
    await collector.waitForEvents(tenants.length, 20_000);

    proxy.setMode('drop');
    const cutAt = Date.now();
    // Events keep coming during the cut; b's tenants wait until b hands over.
    for (let i = 0; i < 5; i++) {
      await writeRound();
      await new Promise((r) => setTimeout(r, 300));
    }
    await waitFor(() => a.shards.length === SHARD_COUNT && b.shards.length === 0, { timeoutMs: 20_000, message: 'a holds every shard, b none' });
    const handedOverAfterMs = Date.now() - cutAt;
    // Decided once for the instance: b's two lanes, on the same cut client, do not take back what the other released.
    await new Promise((r) => setTimeout(r, 1500)); // five of the relays' rebalance intervals
    expect(b.shards).toEqual([]);
    expect(a.shards.length).toBe(SHARD_COUNT);
    expect(b.metrics.kafkaFailovers).toBe(1);
    expect(b.health().checks.kafka).toBe(false); // b says it is not ready while it cannot reach Kafka
    await collector.waitForEvents(tenants.length * seq, 20_000);
    // b's failover: its first failing publish (≤ 1.5 s), then FAILOVER_MS, then a's next rebalance (300 ms), with a margin for a loaded machine.
    expect(handedOverAfterMs).toBeLessThan(FAILOVER_MS + 8_000);

    // The route heals: b probes, rejoins, and takes a share again; a releases its surplus.
    proxy.setMode('pass');
    await waitFor(() => b.shards.length > 0 && a.shards.length + b.shards.length === SHARD_COUNT, { timeoutMs: 20_000, message: 'b rejoins the split' });
    await writeRound();
    await collector.waitForEvents(tenants.length * seq, 20_000);
    await waitFor(() => b.health().checks.kafka, { timeoutMs: 10_000, message: 'b ready again' });

    const { inversions, distinct } = checkPerTenantOrder(collector.messages, (m) => JSON.parse(m.value!).seq);
    expect(distinct).toBe(tenants.length * seq);
    expect(inversions).toEqual([]);
    // Every row leaves the outbox: the last batch's delete commits just after Kafka acknowledged
    // it (the collector may see the events first), so wait for it rather than read once.
    await waitFor(async () => (await f.pool.query('SELECT count(*)::int AS n FROM eventbus.outbox')).rows[0].n === 0, {
      timeoutMs: 10_000,
      message: 'the outbox empty',
    });
  }, 120_000);

  it('keeps its shards when no other instance is live to take them (handing over would only stall everything)', async () => {
    const b = await f.startRelay({ instanceId: 'relay-b', lanes: 2, kafkaFailoverMs: 500, maxOutageBackoffMs: 300, publisher: publisherThroughProxy() });
    await waitFor(() => b.shards.length === SHARD_COUNT, { timeoutMs: 10_000, message: 'b holds every shard' });
    proxy.setMode('drop');
    await f.write({ tenantId: 'tenant-1' });
    await waitFor(() => b.metrics.transientFailures >= 3, { timeoutMs: 20_000, message: 'publishes failing for a while' });
    await new Promise((r) => setTimeout(r, 1500)); // well past kafkaFailoverMs
    expect(b.metrics.kafkaFailovers).toBe(0);
    expect(b.shards.length).toBe(SHARD_COUNT);
    proxy.setMode('pass');
    await waitFor(async () => (await f.pending()) === 0, { timeoutMs: 20_000, message: 'the event published after the heal' });
  }, 60_000);
});
