import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkPerTenantOrder, createTopics, KafkaCollector, waitFor } from '@eventbus/dev-services';
import { EventWriter } from '@eventbus/producer';
import { KafkaPublisher, PublishError, type MessagePublisher, type OutboundMessage, type PublishedPosition } from '@eventbus/kafka';
import { relayFixture } from './relay-fixture.js';

// The rows a missing topic held back wait in the outbox as rows in backoff (attempts > 0, due
// after parkDelayMs) until a relay finds the topic exists and makes them new rows again
// (LaneTopicHolds.endHolds). design.md promises that they "all wait and then go out in write
// order". These tests take away the in-memory hold of the instance that parked them, the way a
// deploy (a relay replaced while the topic is created) or a failed send in the claim that found
// the topic does, and check that the tenant's later row does not overtake the rows that waited.

let f: Awaited<ReturnType<typeof relayFixture>>;
beforeAll(async () => {
  f = await relayFixture('topicorder');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

/** A real KafkaPublisher whose next publish fails as a transient error (a broker that did not answer), once armed. */
class FailOncePublisher implements MessagePublisher {
  armed = false;
  failed = 0;
  constructor(private readonly inner: KafkaPublisher) {}
  connect(): Promise<void> {
    return this.inner.connect();
  }
  disconnect(): Promise<void> {
    return this.inner.disconnect();
  }
  publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    if (this.armed) {
      this.armed = false;
      this.failed++;
      return Promise.reject(new PublishError('transient', 'injected: the broker did not answer'));
    }
    return this.inner.publish(messages);
  }
  missingTopics(topics: readonly string[]): Promise<string[]> {
    return this.inner.missingTopics(topics);
  }
}

// maxMs 5 s: a parked row waits at least that long, far longer than a claim.
const HOLD = { initialMs: 100, maxMs: 5000 };

async function waitUntilParked(n: number): Promise<void> {
  await waitFor(
    async () => {
      const { rows } = await f.pool.query('SELECT count(*)::int AS n FROM eventbus.outbox WHERE attempts > 0');
      return rows[0].n === n || undefined;
    },
    { timeoutMs: 10_000, message: `${n} rows parked for the missing topic` },
  );
}

describe('rows that waited for a missing topic keep their tenant order (real Postgres, real Kafka)', () => {
  it('when the relay that held the topic is replaced (a deploy) before the topic exists', async () => {
    const topic = `${f.prefix}late`;
    let seq = 0;
    const write = () => f.write({ tenantId: 'late-tenant', eventType: 'late.happened', payload: { seq: seq++ } });
    const first = await f.startRelay({ createTopics: false, lanes: 1, missingTopicHold: HOLD });
    for (let i = 0; i < 3; i++) await write();
    await waitUntilParked(3);
    await first.stop();

    await createTopics(f.brokers, [{ topic }]);
    const collector = await new KafkaCollector(f.brokers, [topic]).start();
    try {
      await f.startRelay({ createTopics: false, lanes: 1, missingTopicHold: HOLD });
      await write(); // seq 3, written after the three that waited
      await waitFor(() => collector.eventIds().size >= seq || undefined, {
        timeoutMs: 30_000,
        message: () => `all ${seq} rows (have ${collector.eventIds().size})`,
      });
      const { inversions } = checkPerTenantOrder(collector.messages, (m) => JSON.parse(m.value!).seq);
      expect(inversions).toEqual([]);
    } finally {
      await collector.stop();
    }
  });

  it('when the send of the claim that found the topic exists fails', async () => {
    const topic = `${f.prefix}flaky`;
    await f.collect(); // the healthy tenant's topic
    const publisher = new FailOncePublisher(new KafkaPublisher({ brokers: f.brokers, createTopics: false }));
    const relay = await f.startRelay({ publisher, createTopics: false, lanes: 1, missingTopicHold: HOLD });
    let seq = 0;
    for (let i = 0; i < 3; i++) await f.write({ tenantId: 'flaky-tenant', eventType: 'flaky.happened', payload: { seq: seq++ } });
    await waitUntilParked(3);
    expect(relay.health().heldTopics).toEqual([topic]);

    await createTopics(f.brokers, [{ topic }]);
    const collector = await new KafkaCollector(f.brokers, [topic]).start();
    try {
      // Past the hold (100 ms, at most two refusals so far): the next row of the topic asks Kafka.
      await new Promise((r) => setTimeout(r, 1000));
      publisher.armed = true;
      // One claim: the tenant's next row (the topic's hold ends, it goes back as a new row) and a
      // row of another tenant, whose send fails, so the claim rolls back.
      await f.db.transaction(async (tx) => {
        const writer = new EventWriter(tx);
        await writer.writeEventWithOutbox({ tenantId: 'healthy', eventKey: 'h-1', eventType: 'order.placed', payload: {} });
        await writer.writeEventWithOutbox({ tenantId: 'flaky-tenant', eventKey: 'f-3', eventType: 'flaky.happened', payload: { seq: seq++ } });
      });
      await waitFor(() => collector.eventIds().size >= seq || undefined, {
        timeoutMs: 30_000,
        message: () => `all ${seq} rows (have ${collector.eventIds().size})`,
      });
      expect(publisher.failed).toBe(1);
      const { inversions } = checkPerTenantOrder(collector.messages, (m) => JSON.parse(m.value!).seq);
      expect(inversions).toEqual([]);
    } finally {
      await collector.stop();
    }
  });
});
