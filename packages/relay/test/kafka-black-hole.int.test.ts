import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, KafkaCollector, PrivateBroker, TcpProxy, waitFor } from '@eventbus/dev-services';
import { KafkaPublisher } from '@eventbus/kafka';
import { relayFixture } from './relay-fixture.js';

// A broker of this file's own that advertises the port of a proxy in front of it, so every
// Kafka connection of the relay (bootstrap or not) goes through the proxy and the test can
// turn the network into a black hole: connections stay open, no byte gets through.
const BROKER_PORT = 19492;
const PUBLISH_TIMEOUT_MS = 3000;
const proxy = new TcpProxy('127.0.0.1', BROKER_PORT);
let broker: PrivateBroker | undefined;
let f: Awaited<ReturnType<typeof relayFixture>>;
beforeAll(async () => {
  // Forwarding before the broker starts: its readiness check already goes through the proxy.
  await proxy.start();
  broker = new PrivateBroker(BROKER_PORT, { advertisedPort: proxy.port });
  await broker.start();
  f = await relayFixture('blackhole');
}, 120_000);
afterAll(async () => {
  await f?.close();
  await broker?.destroy();
  await proxy.stop();
});

/** The oldest open transaction of the relay's claim connections, in ms (0 when none is open). */
async function oldestClaimTransactionMs(): Promise<number> {
  const { rows } = await f.pool.query(
    `SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start) * 1000), 0)::float8 AS ms
     FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'eventbus-relay %' AND xact_start IS NOT NULL`,
  );
  return Number(rows[0].ms);
}

describe('Kafka black hole', () => {
  it('keeps a claim transaction open no longer than the publish timeout per attempt, and delivers everything after the heal', {
    timeout: 120_000,
  }, async () => {
    const topic = `${f.prefix}order`;
    const brokers = [broker!.address];
    await createTopics(brokers, [{ topic }]);
    const relay = await f.startRelay({
      brokers,
      publisher: new KafkaPublisher({ brokers, publishTimeoutMs: PUBLISH_TIMEOUT_MS }),
      lanes: 1,
      maxOutageBackoffMs: 500,
    });
    const written = [(await f.write({ tenantId: 't-0', payload: { phase: 'before' } })).eventLogId];
    await waitFor(async () => (await f.pending()) === 0, { timeoutMs: 30_000, message: 'first event published' });

    proxy.setMode('stall');
    // Before the fix the second attempt first waited for the timed-out request inside
    // kafkajs' disconnect (up to its 10 s request timeout), with the rows still claimed.
    const stallEnds = Date.now() + 15_000;
    let oldestMs = 0;
    while (Date.now() < stallEnds) {
      written.push((await f.write({ tenantId: `t-${written.length % 3}`, payload: { phase: 'during' } })).eventLogId);
      oldestMs = Math.max(oldestMs, await oldestClaimTransactionMs());
      await new Promise((r) => setTimeout(r, 200));
    }
    // Several failed attempts, so the reconnect of a failed producer ran inside the stall too.
    expect(relay.metrics.transientFailures).toBeGreaterThanOrEqual(2);
    expect(oldestMs).toBeGreaterThan(PUBLISH_TIMEOUT_MS * 0.8);
    expect(oldestMs).toBeLessThan(PUBLISH_TIMEOUT_MS + 2500);

    proxy.setMode('pass');
    await waitFor(async () => (await f.pending()) === 0, { timeoutMs: 60_000, message: 'outbox drained after the heal' });
    const collector = await new KafkaCollector(brokers, [topic]).start();
    try {
      await collector.waitForEvents(written.length, 30_000);
      expect(written.filter((id) => !collector.eventIds().has(id))).toEqual([]);
    } finally {
      await collector.stop();
    }
    expect(relay.health().checks.kafka).toBe(true);
  });
});
