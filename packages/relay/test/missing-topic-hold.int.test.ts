import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkPerTenantOrder, createTopics, KafkaCollector, waitFor } from '@eventbus/dev-services';
import { KafkaPublisher, PublishError, type MessagePublisher, type OutboundMessage, type PublishedPosition } from '@eventbus/kafka';
import { RETURN_FOR_RETRY_SQL } from '@eventbus/outbox';
import { EventWriter } from '@eventbus/producer';
import { relayFixture, WatchingPublisher } from './relay-fixture.js';

// A tenant whose event type routes to a topic that does not exist (topic creation off): once
// Kafka said so, the relay holds the topic and stops offering its rows, asking Kafka about the
// topic once per hold instead; the other tenants flow; the rows that waited follow the topic's
// creation in order.

let f: Awaited<ReturnType<typeof relayFixture>>;
beforeAll(async () => {
  f = await relayFixture('topichold');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

/** A real KafkaPublisher underneath, counting what the relay offers per topic and how often it asks whether a topic exists. */
class CountingPublisher implements MessagePublisher {
  readonly offered = new Map<string, number>();
  readonly topicChecks: string[][] = [];
  constructor(private readonly inner: KafkaPublisher) {}
  connect(): Promise<void> {
    return this.inner.connect();
  }
  disconnect(): Promise<void> {
    return this.inner.disconnect();
  }
  publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    for (const m of messages) this.offered.set(m.topic, (this.offered.get(m.topic) ?? 0) + 1);
    return this.inner.publish(messages);
  }
  missingTopics(topics: readonly string[]): Promise<string[]> {
    this.topicChecks.push([...topics]);
    return this.inner.missingTopics(topics);
  }
}

/**
 * A real KafkaPublisher underneath whose answer to "does this topic exist" waits until `answer()`:
 * a metadata request that takes long (a large cluster, a broker in trouble).
 */
class SlowTopicCheckPublisher implements MessagePublisher {
  readonly published = new Set<string>();
  checksStarted = 0;
  private release!: () => void;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));
  constructor(private readonly inner: KafkaPublisher) {}
  connect(): Promise<void> {
    return this.inner.connect();
  }
  disconnect(): Promise<void> {
    return this.inner.disconnect();
  }
  async publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    const positions = await this.inner.publish(messages);
    for (const m of messages) this.published.add(String(m.headers.ce_id));
    return positions;
  }
  async missingTopics(topics: readonly string[]): Promise<string[]> {
    this.checksStarted++;
    await this.released;
    return this.inner.missingTopics(topics);
  }
  answer(): void {
    this.release();
  }
}

const HOLD = { initialMs: 200, maxMs: 800 };
const HEALTHY = Array.from({ length: 6 }, (_, i) => `healthy-${i}`);

/** The most holds that fit in `ms`: 200, 400, 800, 800 … ms. */
function holdsWithin(ms: number): number {
  let n = 0;
  for (let period = HOLD.initialMs, t = 0; t < ms; period = Math.min(HOLD.maxMs, period * 2)) {
    t += period;
    n++;
  }
  return n;
}

describe('a missing topic is held, not retried row by row (real Postgres, real Kafka)', () => {
  it('offers its rows to Kafka once, asks about the topic once per hold, lets the other tenants flow, and delivers the waiting rows in order once the topic exists', async () => {
    const gone = `${f.prefix}gone`;
    const collector = await f.collect();
    const publisher = new CountingPublisher(new KafkaPublisher({ brokers: f.brokers, createTopics: false }));
    const relay = await f.startRelay({ publisher, createTopics: false, lanes: 2, missingTopicHold: HOLD });
    const startedAt = Date.now();

    // 4 s of writes, up to 40/s each: the tenant of the missing topic, and the healthy tenants between its rows.
    let goneSeq = 0;
    const healthy: string[] = [];
    const writeFor = async (ms: number) => {
      const until = Date.now() + ms;
      for (let i = 0; Date.now() < until; i++) {
        await f.write({ tenantId: 'gone-tenant', eventType: 'gone.happened', payload: { seq: goneSeq++ } });
        healthy.push((await f.write({ tenantId: HEALTHY[i % HEALTHY.length]!, payload: { i } })).eventLogId);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    await writeFor(4000);
    await waitFor(() => healthy.every((id) => collector.eventIds().has(id)), { timeoutMs: 10_000, message: 'the healthy tenants' });
    const elapsed = Date.now() - startedAt;

    // (1) Kafka refused the topic's first rows; after that no row of it was offered, and the
    // topic was asked about once per hold at most (a second lane may ask in the same instant).
    expect(goneSeq).toBeGreaterThan(50);
    expect(publisher.offered.get(gone) ?? 0).toBeLessThanOrEqual(3);
    expect(relay.metrics.publishFailures).toBeLessThanOrEqual(3);
    const checks = publisher.topicChecks.filter((topics) => topics.includes(gone)).length;
    expect(checks).toBeGreaterThanOrEqual(2);
    expect(checks).toBeLessThanOrEqual(holdsWithin(elapsed) + 2);
    expect(relay.metrics.heldBack).toBeGreaterThan(0);
    expect(relay.health().heldTopics).toEqual([gone]);
    // (2) The healthy tenants went through meanwhile (waited for above), and nothing was dead-lettered.
    const { rows: dead } = await f.pool.query('SELECT count(*)::int AS n FROM eventbus.dead_letters');
    expect(dead[0].n).toBe(0);

    // (3) The topic appears while the tenant keeps writing: every row arrives once, in order.
    await createTopics(f.brokers, [{ topic: gone }]);
    const createdAt = Date.now();
    const goneCollector = await new KafkaCollector(f.brokers, [gone]).start();
    try {
      await writeFor(1000);
      const written = goneSeq;
      await waitFor(() => goneCollector.eventIds().size >= written, {
        timeoutMs: 20_000,
        message: () => `all ${written} rows of the missing topic (have ${goneCollector.eventIds().size})`,
      });
      // Within a hold and the check after it, not a row's own backoff.
      expect(Date.now() - createdAt).toBeLessThan(10_000);
      const { inversions, duplicates } = checkPerTenantOrder(goneCollector.messages, (m) => JSON.parse(m.value!).seq);
      expect(inversions).toEqual([]);
      expect(duplicates).toBe(0);
      expect(goneCollector.eventIds().size).toBe(written);
      expect(relay.health().heldTopics).toEqual([]);
      await waitFor(async () => (await f.pending()) === 0, { timeoutMs: 10_000, message: 'an empty outbox' });
    } finally {
      await goneCollector.stop();
    }
  });

  it("does not hold up the other tenants of a batch while it asks Kafka whether a held topic exists (the answer only decides how the topic's rows go back)", async () => {
    const topic = `${f.prefix}dim`; // never created
    await createTopics(f.brokers, [{ topic: `${f.prefix}order` }]); // the other tenant's
    const publisher = new SlowTopicCheckPublisher(new KafkaPublisher({ brokers: f.brokers, createTopics: false }));
    // One lane: the two rows written together below are claimed in one batch. A long longest
    // hold parks the held rows out of the way of the claims.
    const relay = await f.startRelay({ publisher, createTopics: false, lanes: 1, missingTopicHold: { initialMs: 100, maxMs: 60_000 } });
    try {
      // Kafka refuses the first row (the publish finds the topic missing): a 100 ms hold starts.
      await f.write({ tenantId: 'dim-tenant', eventType: 'dim.happened', payload: { seq: 0 } });
      const heldAt = await waitFor(() => (relay.health().heldTopics.includes(topic) ? Date.now() : undefined), {
        timeoutMs: 10_000,
        message: 'the topic held',
      });
      await waitFor(() => Date.now() - heldAt > 500 || undefined, { timeoutMs: 2000, message: 'the hold run out' });
      // One commit: the tenant's next row, whose claim asks Kafka about the topic, and another tenant's.
      const [dim, healthy] = await f.db.transaction((tx) =>
        new EventWriter(tx).writeEventsWithOutbox([
          { tenantId: 'dim-tenant', eventKey: 'dim-1', eventType: 'dim.happened', payload: { seq: 1 } },
          { tenantId: 'healthy-0', eventKey: 'healthy-1', eventType: 'order.placed', payload: {} },
        ]),
      );
      await waitFor(() => publisher.checksStarted > 0 || undefined, { timeoutMs: 10_000, message: 'the check of the topic' });
      // The other tenant's row is published while Kafka has not answered.
      await waitFor(() => publisher.published.has(healthy!.eventLogId) || undefined, {
        timeoutMs: 5000,
        message: "the other tenant's row published before Kafka said whether the topic exists",
      });
      expect(publisher.published.has(dim!.eventLogId)).toBe(false);
      publisher.answer();
      // Kafka says the topic is still missing: both of its rows wait in the outbox, nothing dead-lettered.
      await waitFor(async () => ((await f.pending()) === 2 && relay.metrics.heldBack > 0) || undefined, {
        timeoutMs: 30_000,
        message: "the tenant's two rows back in the outbox",
      });
      const { rows } = await f.pool.query(
        'SELECT e.event_key FROM eventbus.outbox o JOIN eventbus.event_log e ON e.id = o.event_id WHERE e.tenant_id = $1 ORDER BY o.id',
        ['dim-tenant'],
      );
      expect(rows.map((r) => r.event_key)).toHaveLength(2);
      expect(relay.health().heldTopics).toEqual([topic]);
      const { rows: dead } = await f.pool.query('SELECT count(*)::int AS n FROM eventbus.dead_letters');
      expect(dead[0].n).toBe(0);
    } finally {
      publisher.answer();
      // Its parked rows would make the next test's relay hold this topic too (restoreFromOutbox).
      await relay.stop();
      await f.pool.query('DELETE FROM eventbus.outbox');
    }
  });

  it('puts the rows of a held topic back in the outbox while the rest of their batch is sent, not after', async () => {
    const topic = `${f.prefix}faint`; // never created
    await createTopics(f.brokers, [{ topic: `${f.prefix}order` }]); // the other tenant's
    // What the lane's claim connection runs while the batch holding `healthy` is being sent.
    let watched: string | undefined;
    let duringSend: string[] | undefined;
    const publisher = new WatchingPublisher(new KafkaPublisher({ brokers: f.brokers, createTopics: false }), async (messages) => {
      // Only the first send of the watched row: a refused batch's halves are sent again.
      if (watched === undefined || duringSend !== undefined || !messages.some((m) => String(m.headers.ce_id) === watched)) return;
      duringSend = await f.relayStatementsUntil(RETURN_FOR_RETRY_SQL);
    });
    // One lane, so the two rows written together below are one batch; a long hold, so the
    // second row of the topic is held back by it (not the check when a hold runs out).
    const relay = await f.startRelay({ publisher, createTopics: false, lanes: 1, missingTopicHold: { initialMs: 30_000, maxMs: 60_000 } });
    try {
      await f.write({ tenantId: 'faint-tenant', eventType: 'faint.happened', payload: { seq: 0 } });
      await waitFor(() => relay.health().heldTopics.includes(topic) || undefined, { timeoutMs: 10_000, message: 'the topic held' });
      const [, healthy] = await f.db.transaction(async (tx) => {
        const written = await new EventWriter(tx).writeEventsWithOutbox([
          { tenantId: 'faint-tenant', eventKey: 'faint-1', eventType: 'faint.happened', payload: { seq: 1 } },
          { tenantId: 'healthy-0', eventKey: 'healthy-faint', eventType: 'order.placed', payload: {} },
        ]);
        watched = written[1]!.eventLogId;
        return written;
      });
      await waitFor(async () => ((await f.pending()) === 2 && relay.metrics.heldBack > 0) || undefined, {
        timeoutMs: 30_000,
        message: "the tenant's second row held back",
      });
      expect(healthy!.eventLogId).toBe(watched);
      expect(duringSend).toContain(RETURN_FOR_RETRY_SQL);
      const { rows } = await f.pool.query(
        "SELECT o.attempts, o.last_error FROM eventbus.outbox o JOIN eventbus.event_log e ON e.id = o.event_id WHERE e.event_key = 'faint-1'",
      );
      expect(rows).toHaveLength(1);
      expect(rows[0].last_error).toMatch(new RegExp(`^topic ${topic.replaceAll('.', '\\.')} does not exist`));
    } finally {
      await relay.stop();
      await f.pool.query('DELETE FROM eventbus.outbox'); // parked rows would make the next test's relay hold the topic
    }
  });

  it('counts a row held back once it is back in the outbox, not again for a claim of it whose send failed and rolled back', async () => {
    const topic = `${f.prefix}twice`; // never created
    await createTopics(f.brokers, [{ topic: `${f.prefix}order` }]);
    // The send of the batch holding `watched` fails once, as a broker that did not answer.
    let watched: string | undefined;
    let failed = 0;
    const publisher = new WatchingPublisher(new KafkaPublisher({ brokers: f.brokers, createTopics: false }), async (messages) => {
      if (watched === undefined || failed > 0 || !messages.some((m) => String(m.headers.ce_id) === watched)) return;
      failed++;
      throw new PublishError('transient', 'injected: the broker did not answer');
    });
    // One lane, so the two rows written together below are one batch; a long hold, so the
    // second row of the topic is held back by it on both claims.
    const relay = await f.startRelay({ publisher, createTopics: false, lanes: 1, missingTopicHold: { initialMs: 30_000, maxMs: 60_000 } });
    try {
      await f.write({ tenantId: 'twice-tenant', eventType: 'twice.happened', payload: { seq: 0 } });
      await waitFor(async () => ((await f.pending()) === 1 && relay.health().heldTopics.includes(topic)) || undefined, {
        timeoutMs: 10_000,
        message: 'the topic held and its first row parked',
      });
      const before = relay.metrics.heldBack;
      await f.db.transaction(async (tx) => {
        const writer = new EventWriter(tx);
        await writer.writeEventWithOutbox({ tenantId: 'twice-tenant', eventKey: 'twice-1', eventType: 'twice.happened', payload: { seq: 1 } });
        watched = (await writer.writeEventWithOutbox({ tenantId: 'healthy-twice', eventKey: 'healthy-twice', eventType: 'order.placed', payload: {} }))
          .eventLogId;
      });
      // Committed: the healthy row gone, the held row parked beside the first.
      await waitFor(async () => (await f.pending()) === 2 || undefined, { timeoutMs: 10_000, message: 'the batch sent and committed' });
      expect(failed).toBe(1);
      expect(relay.metrics.heldBack - before).toBe(1);
    } finally {
      await relay.stop();
      await f.pool.query('DELETE FROM eventbus.outbox'); // parked rows would make the next test's relay hold the topic
    }
  });

  it('reports a topic missing past alertAfterMs as a problem (health degraded, one error line) while its rows keep waiting', { timeout: 60_000 }, async () => {
    const gone = `${f.prefix}lost`; // not the first test's topic, created there
    const errors: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (fields: Record<string, unknown>, message: string) => void errors.push({ fields, message }) };
    const alertAfterMs = 2500;
    const relay = await f.startRelay({ createTopics: false, missingTopicHold: { initialMs: 100, maxMs: 400, alertAfterMs }, logger });
    const written: string[] = [];
    const write = async () =>
      written.push((await f.write({ tenantId: 'gone-tenant', eventType: 'lost.happened', payload: { seq: written.length } })).eventLogId);
    await write();
    const heldAt = await waitFor(() => (relay.health().heldTopics.includes(gone) ? Date.now() : undefined), { timeoutMs: 10_000, message: 'the topic held' });
    // Held, not yet for alertAfterMs: informational only.
    expect(relay.health()).toMatchObject({ ready: true, degraded: false, problems: [] });

    // The tenant keeps writing; past alertAfterMs the relay reports the topic.
    const writing = (async () => {
      while (Date.now() - heldAt < alertAfterMs + 2000) {
        await write();
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await waitFor(() => relay.health().degraded || undefined, { timeoutMs: 15_000, message: 'health degraded by the missing topic' });
    const health = relay.health();
    expect(Date.now() - heldAt).toBeGreaterThanOrEqual(alertAfterMs - 500); // not before (the hold started a poll or so before heldAt)
    expect(health.ready).toBe(true); // the relay works: a missing topic is not a reason to take it out
    expect(health.problems).toHaveLength(1);
    expect(health.problems[0]).toMatch(
      new RegExp(`^topic ${gone.replaceAll('.', '\\.')} missing for \\d+ s .*rows of lost\\.happened wait in the outbox until it exists$`),
    );
    expect(relay.overdueHeldTopics).toEqual([gone]);
    await writing;
    // One error line for the topic, however many holds and rows since.
    const lines = errors.filter((e) => e.fields.topic === gone);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.message).toContain('missing for longer than missingTopicHold.alertAfterMs');
    expect(lines[0]!.fields).toMatchObject({ alertAfterMs, eventTypes: ['lost.happened'] });
    // Never dropped: every row still waits in the outbox, none dead-lettered.
    expect(await f.pending()).toBe(written.length);
    const { rows: dead } = await f.pool.query('SELECT count(*)::int AS n FROM eventbus.dead_letters');
    expect(dead[0].n).toBe(0);

    // Created: the rows go out and the problem is gone.
    await createTopics(f.brokers, [{ topic: gone }]);
    const goneCollector = await new KafkaCollector(f.brokers, [gone]).start();
    try {
      await waitFor(() => goneCollector.eventIds().size >= written.length || undefined, { timeoutMs: 20_000, message: `all ${written.length} waiting rows` });
      expect(relay.health()).toMatchObject({ degraded: false, problems: [], heldTopics: [] });
    } finally {
      await goneCollector.stop();
    }
  });
});
