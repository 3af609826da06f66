import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { createTopics, waitFor } from '@eventbus/dev-services';
import { KafkaPublisher, type MessagePublisher, type OutboundMessage, type PublishedPosition } from '@eventbus/kafka';
import { RECORD_RELAY_DEAD_LETTERS_SQL } from '@eventbus/dead-letters';
import { EventWriter } from '@eventbus/producer';
import { relayFixture, WatchingPublisher } from './relay-fixture.js';

// One tenant whose rows Kafka refuses must not hold back the other tenants of its batch:
// a row that is certainly too large is refused without a send and ends in the DLQ table, a
// topic that does not exist refuses only its own rows, which wait for it (missing-topic-hold.int.test.ts).

let f: Awaited<ReturnType<typeof relayFixture>>;
beforeAll(async () => {
  f = await relayFixture('isolation');
});
afterEach(async () => {
  await f.reset();
  // Rows waiting for a topic that does not exist outlive their test: the next one counts the outbox.
  await f.pool.query('DELETE FROM eventbus.outbox');
});
afterAll(async () => f?.close());

/** A real KafkaPublisher underneath, noting the size of every publish call the relay makes. */
class CountingPublisher implements MessagePublisher {
  readonly calls: number[] = [];
  constructor(private readonly inner: MessagePublisher) {}
  connect(): Promise<void> {
    return this.inner.connect();
  }
  disconnect(): Promise<void> {
    return this.inner.disconnect();
  }
  publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    this.calls.push(messages.length);
    return this.inner.publish(messages);
  }
}

const RETRIES = { maxRetries: 2, initialDelayMs: 100, maxDelayMs: 400, backoffMultiplier: 2 };
const TENANTS = Array.from({ length: 12 }, (_, i) => `healthy-${i}`);

async function deadLetter(eventId: string) {
  return waitFor(
    async () => {
      const { rows } = await f.pool.query('SELECT * FROM eventbus.dead_letters WHERE event_id = $1', [eventId]);
      return rows[0];
    },
    { timeoutMs: 20_000, message: `the DLQ row of ${eventId}` },
  );
}

async function topicExists(topic: string): Promise<boolean> {
  const admin = new Kafka({ brokers: f.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.disconnect();
  }
}

describe('tenant isolation in the relay (real Postgres, real Kafka)', () => {
  it('refuses a row larger than its topic allows without a send and dead-letters it at once; the other tenants of the batch go in the first publish', async () => {
    const tight = `${f.prefix}tight`;
    await createTopics(f.brokers, [{ topic: tight, configEntries: [{ name: 'max.message.bytes', value: '4096' }] }]);
    const collector = await f.collect([`${f.prefix}order`, tight]);
    // Written before the relay starts, so the first claim holds every row in one batch.
    const big = await f.write({ tenantId: 'big-tenant', eventType: 'tight.blob', payload: { blob: 'x'.repeat(8000) } });
    const others = await Promise.all(TENANTS.map((tenantId) => f.write({ tenantId, payload: { ok: true } })));
    const small = await f.write({ tenantId: 'small-on-tight', eventType: 'tight.note', payload: { note: 'fits' } });
    const publisher = new CountingPublisher(new KafkaPublisher({ brokers: f.brokers }));
    const relay = await f.startRelay({ publisher, lanes: 1, retryConfig: RETRIES, routing: { prefix: f.prefix, routes: { 'tight.*': tight } } });
    const wanted = [...others, small].map((e) => e.eventLogId);
    await waitFor(() => wanted.every((id) => collector.eventIds().has(id)), { timeoutMs: 15_000, message: 'the other tenants' });
    const row = await deadLetter(big.eventLogId);
    // Not retried (RETRIES allows two): the same bytes would be refused every time.
    expect(row).toMatchObject({ stage: 'relay', tenant_id: 'big-tenant', topic: tight, attempts: 1 });
    expect(row.error_message).toMatch(/too large/i);
    expect(row.error_message).toContain(tight);
    // One publish of the whole batch (no halving), and none for the big row afterwards.
    await new Promise((r) => setTimeout(r, 1000)); // past the first retry's 100 ms backoff, were there one
    expect(publisher.calls).toEqual([TENANTS.length + 2]);
    expect(collector.eventIds().has(big.eventLogId)).toBe(false);
    expect(relay.metrics.deadLettered).toBe(1);
  });

  it("moves a too-large row to the DLQ table while the rest of its batch is sent, not after: the batch's commit does not wait for that insert", async () => {
    const tight = `${f.prefix}snug`;
    await createTopics(f.brokers, [{ topic: tight, configEntries: [{ name: 'max.message.bytes', value: '4096' }] }]);
    const collector = await f.collect([`${f.prefix}order`, tight]);
    // What the lane's claim connection runs while the batch holding the watched row is being sent.
    let watched: string | undefined;
    let duringSend: string[] | undefined;
    const publisher = new WatchingPublisher(new KafkaPublisher({ brokers: f.brokers }), async (messages) => {
      // Only the first send of the watched row: a refused batch's halves are sent again.
      if (watched === undefined || duringSend !== undefined || !messages.some((m) => String(m.headers.ce_id) === watched)) return;
      duringSend = await f.relayStatementsUntil(RECORD_RELAY_DEAD_LETTERS_SQL);
    });
    const relay = await f.startRelay({ publisher, lanes: 1, retryConfig: RETRIES, routing: { prefix: f.prefix, routes: { 'snug.*': tight } } });
    // A row that fits first: the publisher learns the topic's limit (a topic it has not met is
    // checked within publish, and its refusals come from there).
    const fits = await f.write({ tenantId: 'snug-tenant', eventType: 'snug.note', payload: { note: 'fits' } });
    await waitFor(() => collector.eventIds().has(fits.eventLogId) || undefined, { timeoutMs: 15_000, message: 'the row that fits' });

    const [big, healthy] = await f.db.transaction(async (tx) => {
      const written = await new EventWriter(tx).writeEventsWithOutbox([
        { tenantId: 'snug-tenant', eventKey: 'snug-big', eventType: 'snug.blob', payload: { blob: 'x'.repeat(8000) } },
        { tenantId: 'healthy-snug', eventKey: 'healthy-snug', eventType: 'order.placed', payload: {} },
      ]);
      watched = written[1]!.eventLogId;
      return written;
    });
    await waitFor(() => collector.eventIds().has(healthy!.eventLogId) || undefined, { timeoutMs: 30_000, message: 'the healthy row' });
    expect(await deadLetter(big!.eventLogId)).toMatchObject({ stage: 'relay', tenant_id: 'snug-tenant', topic: tight, attempts: 1 });
    expect(duringSend).toContain(RECORD_RELAY_DEAD_LETTERS_SQL);
    expect(relay.metrics.deadLettered).toBe(1);
  });

  it('a topic that does not exist, with topic creation off, refuses only its rows, well within the publish timeout, and they wait for it, never dead-lettered', async () => {
    const gone = `${f.prefix}gone`;
    const collector = await f.collect();
    const missing = await f.write({ tenantId: 'gone-tenant', eventType: 'gone.happened', payload: {} });
    const others = await Promise.all(TENANTS.map((tenantId) => f.write({ tenantId, payload: { ok: true } })));
    const startedAt = Date.now();
    const relay = await f.startRelay({ createTopics: false, lanes: 1, retryConfig: RETRIES });
    await waitFor(() => others.every((e) => collector.eventIds().has(e.eventLogId)), { timeoutMs: 15_000, message: 'the other tenants' });
    // The publish timeout is 15 s: the healthy rows must not wait for it.
    expect(Date.now() - startedAt).toBeLessThan(5000);
    // The row waits for its topic, past the retries RETRIES allows other refusals.
    await waitFor(() => relay.health().heldTopics.includes(gone), { timeoutMs: 5000, message: 'the missing topic held' });
    await new Promise((r) => setTimeout(r, 1500)); // past RETRIES' three tries (100 + 200 + 400 ms)
    const { rows } = await f.pool.query('SELECT last_error FROM eventbus.outbox WHERE event_id = $1', [missing.eventLogId]);
    expect(rows).toHaveLength(1);
    expect(rows[0].last_error).toContain(gone);
    expect(rows[0].last_error).toMatch(/does not exist/);
    expect(await topicExists(gone)).toBe(false);
    expect(relay.metrics.deadLettered).toBe(0);
  });

  it('recreates a topic deleted under a running relay (topic creation on)', async () => {
    const topic = `${f.prefix}recreated`;
    const relay = await f.startRelay({ lanes: 1, routing: { prefix: f.prefix, routes: { 'recreated.*': topic } } });
    await f.write({ tenantId: 'before-delete', eventType: 'recreated.thing', payload: {} });
    await waitFor(async () => relay.metrics.published === 1 && (await f.pending()) === 0, { timeoutMs: 15_000, message: 'the first event published' });
    const admin = new Kafka({ brokers: f.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [topic] });
      await waitFor(async () => !(await admin.listTopics()).includes(topic), { timeoutMs: 15_000, message: 'the topic deleted' });
      const deletedAt = Date.now();
      await f.write({ tenantId: 'after-delete', eventType: 'recreated.thing', payload: {} });
      await waitFor(async () => relay.metrics.published === 2 && (await f.pending()) === 0, {
        timeoutMs: 40_000,
        message: 'the event after the delete published',
      });
      // This admin's metadata may still name the deleted topic's leader ("not the leader"):
      // asked again, it refreshes it.
      const offsets = await waitFor(() => admin.fetchTopicOffsets(topic).catch(() => undefined), {
        timeoutMs: 10_000,
        message: "the recreated topic's offsets",
      });
      expect(offsets.reduce((sum, o) => sum + Number(o.high), 0)).toBe(1);
      // The publish timeout is 15 s: the send that met the deleted topic does not wait for it.
      expect(Date.now() - deletedAt).toBeLessThan(8000);
    } finally {
      await admin.disconnect();
    }
  });

  it('a topic deleted under a running relay with topic creation off: its rows wait for it, the others stall once at most', async () => {
    const doomed = `${f.prefix}doomed`;
    await createTopics(f.brokers, [{ topic: doomed }]);
    const collector = await f.collect();
    const publishTimeoutMs = 5000;
    const relay = await f.startRelay({
      publisher: new KafkaPublisher({ brokers: f.brokers, createTopics: false, publishTimeoutMs }),
      lanes: 1,
      retryConfig: RETRIES,
      routing: { prefix: f.prefix, routes: { 'doomed.*': doomed } },
    });
    const both = async (label: string) => {
      const [gone, healthy] = await f.writer.writeEventsWithOutbox([
        { tenantId: 'doomed-tenant', eventKey: `${label}-d`, eventType: 'doomed.thing', payload: {} },
        { tenantId: 'healthy-tenant', eventKey: `${label}-h`, eventType: 'order.placed', payload: {} },
      ]);
      return { gone: gone!, healthy: healthy! };
    };
    const before = await both('before');
    await waitFor(() => collector.eventIds().has(before.healthy.eventLogId) && relay.metrics.published === 2, { timeoutMs: 15_000, message: 'both published' });
    const admin = new Kafka({ brokers: f.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [doomed] });
      await waitFor(async () => !(await admin.listTopics()).includes(doomed), { timeoutMs: 15_000, message: 'the topic deleted' });
    } finally {
      await admin.disconnect();
    }
    // Rows written just after the delete may still meet the topic in the producer's metadata
    // (and the broker may even take them while it finishes the delete); the first send that
    // refreshes the metadata waits for its deadline, once. Every batch after it is quick.
    const took: number[] = [];
    let last: Awaited<ReturnType<typeof both>> | undefined;
    for (let round = 0; round < 4; round++) {
      last = await both(`after-${round}`);
      const startedAt = Date.now();
      await waitFor(() => collector.eventIds().has(last!.healthy.eventLogId), { timeoutMs: 30_000, message: `the healthy row of round ${round}` });
      took.push(Date.now() - startedAt);
    }
    expect(Math.max(...took)).toBeLessThan(publishTimeoutMs + 3000);
    expect(took.filter((ms) => ms > 1500).length).toBeLessThanOrEqual(1);
    expect(took.at(-1)).toBeLessThan(1500);
    expect(relay.health().heldTopics).toEqual([doomed]);
    // The collector sees the healthy event at Kafka's acknowledgement, before the lane commits
    // the held row's new state beside it: until then this reads the row as it was written.
    const lastError = await waitFor(
      async () => (await f.pool.query('SELECT last_error FROM eventbus.outbox WHERE event_id = $1', [last!.gone.eventLogId])).rows[0]?.last_error,
      { timeoutMs: 10_000, message: "the held row's last_error" },
    );
    expect(lastError).toMatch(/does not exist/);
    expect(relay.metrics.deadLettered).toBe(0);
    expect(await topicExists(doomed)).toBe(false);
  });
});
