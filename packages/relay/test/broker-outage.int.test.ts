import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, KafkaCollector, PrivateBroker, waitFor } from '@eventbus/dev-services';
import { relayFixture } from './relay-fixture.js';

// A broker of this file's own, on its own port, so stopping it disturbs no other test file.
const broker = new PrivateBroker(19392);
let f: Awaited<ReturnType<typeof relayFixture>>;
beforeAll(async () => {
  await broker.start();
  f = await relayFixture('outage');
}, 120_000);
afterAll(async () => {
  await f?.close();
  await broker.destroy();
});

describe('broker outage', () => {
  it('keeps rows pending while the broker is down for 12 s (past the failover threshold), then recovers by itself: zero lost', {
    timeout: 150_000,
  }, async () => {
    // Subscribed by exact name, created up front: a regex subscription sees only topics that exist when it starts.
    const topic = `${f.prefix}order`;
    await createTopics([broker.address], [{ topic }]);
    // A single instance has no one to hand its shards to: past kafkaFailoverMs it must go on retrying.
    const relay = await f.startRelay({ brokers: [broker.address], maxOutageBackoffMs: 2000, kafkaFailoverMs: 8000 });
    const before = await Promise.all(Array.from({ length: 50 }, (_, i) => f.write({ tenantId: `t-${i % 5}`, payload: { phase: 'before', i } })));
    const collector = await new KafkaCollector([broker.address], [topic]).start();
    await collector.waitForEvents(50, 30_000);
    await collector.stop();

    await broker.stop();
    const outageStarted = Date.now();
    const during: string[] = [];
    while (Date.now() - outageStarted < 12_000) {
      during.push((await f.write({ tenantId: `t-${during.length % 5}`, payload: { phase: 'during', i: during.length } })).eventLogId);
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor(() => !relay.health().checks.kafka, { timeoutMs: 20_000, message: 'relay notices the outage' });
    expect(await f.pending()).toBeGreaterThan(0);
    expect(relay.health().live).toBe(true);
    const failuresDuringOutage = relay.metrics.transientFailures;
    // Backing off, not spinning: a handful of attempts in 12 s, not thousands.
    expect(failuresDuringOutage).toBeLessThan(40);

    await broker.start();
    const recovered = Date.now();
    await waitFor(async () => (await f.pending()) === 0, { timeoutMs: 60_000, message: 'outbox drained after the broker returned' });
    const after = new KafkaCollector([broker.address], [topic]);
    await after.start();
    await after.waitForEvents(50 + during.length, 30_000);
    const received = after.eventIds();
    await after.stop();
    const lost = [...before.map((b) => b.eventLogId), ...during].filter((id) => !received.has(id));
    expect(lost).toEqual([]);
    expect(relay.health().checks.kafka).toBe(true);
    console.error(`[outage] ${during.length} events written during a 12 s outage, drained ${Date.now() - recovered} ms after the broker returned`);
  });
});
