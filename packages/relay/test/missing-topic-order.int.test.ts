import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkPerTenantOrder, createTopics, KafkaCollector, waitFor } from '@eventbus/dev-services';
import { EventWriter } from '@eventbus/producer';
import { shardForTenant } from '@eventbus/schema';
import { KafkaPublisher, PublishError, type MessagePublisher, type OutboundMessage, type PublishedPosition } from '@eventbus/kafka';
import { relayFixture, WatchingPublisher } from './relay-fixture.js';

// The rows a missing topic held back wait in the outbox as rows in backoff (attempts > 0, due
// after parkDelayMs) until a relay finds the topic exists and makes them new rows again
// (LaneTopicHolds.endHolds). design.md promises that they "all wait and then go out in write
// order". These tests take away the in-memory hold of the instance that parked them, the way a
// deploy (a relay replaced while the topic is created), a second instance taking over shards
// while the first still holds the topic, another lane ending the hold while a batch parks rows,
// a failed send in the claim that found the topic, or a failed wake of the parked rows does, and check that the tenant's later row does not overtake the rows that waited.

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

  it('when another instance takes over the shards of parked rows while the first still holds the topic', async () => {
    const topic = `${f.prefix}moved`;
    // Tenants on many shards: the instance that joins takes half of them, whichever they are.
    const tenants = Array.from({ length: 24 }, (_, i) => `moved-tenant-${i}`);
    const seqs = new Map(tenants.map((t) => [t, 0]));
    const write = (tenantId: string) => {
      const seq = seqs.get(tenantId)!;
      seqs.set(tenantId, seq + 1);
      return f.write({ tenantId, eventType: 'moved.happened', payload: { seq } });
    };
    const first = await f.startRelay({ createTopics: false, lanes: 1, missingTopicHold: HOLD });
    for (let round = 0; round < 3; round++) for (const tenant of tenants) await write(tenant);
    await waitUntilParked(3 * tenants.length);
    expect(first.health().heldTopics).toEqual([topic]);

    // The second instance gets the shards the first gives up at its next rebalance; it never
    // saw Kafka refuse the topic, and the first keeps holding it meanwhile.
    const second = await f.startRelay({ createTopics: false, lanes: 1, missingTopicHold: HOLD });
    await waitFor(() => (first.shards.length === 32 && second.shards.length === 32) || undefined, {
      timeoutMs: 15_000,
      message: () => `the shards split between the instances (have ${first.shards.length} and ${second.shards.length})`,
    });
    const movedTenants = tenants.filter((t) => second.shards.includes(shardForTenant(t)));
    expect(movedTenants.length).toBeGreaterThan(0);

    await createTopics(f.brokers, [{ topic }]);
    const collector = await new KafkaCollector(f.brokers, [topic]).start();
    try {
      // Seq 3 of the moved tenants only, after the three that waited: the first instance has no
      // row of the topic to offer, so only the second can find that the topic exists now.
      for (const tenant of movedTenants) await write(tenant);
      const total = 3 * tenants.length + movedTenants.length;
      await waitFor(() => collector.eventIds().size >= total || undefined, {
        timeoutMs: 30_000,
        message: () => `all ${total} rows (have ${collector.eventIds().size})`,
      });
      const { inversions } = checkPerTenantOrder(collector.messages, (m) => JSON.parse(m.value!).seq);
      expect(inversions).toEqual([]);
    } finally {
      await collector.stop();
    }
  });

  it('when the wake of the parked rows fails after the topic was found', async () => {
    const topic = `${f.prefix}wakefail`;
    let seq = 0;
    const write = () => f.write({ tenantId: 'wake-tenant', eventType: 'wakefail.happened', payload: { seq: seq++ } });
    const relay = await f.startRelay({ createTopics: false, lanes: 1, missingTopicHold: HOLD });
    for (let i = 0; i < 3; i++) await write();
    await waitUntilParked(3);
    expect(relay.health().heldTopics).toEqual([topic]);

    // Two things keep the order here: the hold stays when its wake fails (endHolds), and the lane,
    // which starts over from a new connection, holds again the topics of the rows parked in the
    // shards it takes (restoreFromOutbox). Either alone is enough; without both, seq 3 overtakes.
    // Postgres refuses the wake (the one statement that makes parked rows new rows again), and
    // counts the refusals in a sequence, which a rolled-back statement does not take back.
    await f.pool.query(`
      CREATE SEQUENCE wake_refusals;
      CREATE FUNCTION refuse_wake() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM nextval('wake_refusals'); RAISE EXCEPTION 'injected: the wake fails'; END $$;
      CREATE TRIGGER refuse_wake BEFORE UPDATE ON eventbus.outbox
        FOR EACH ROW WHEN (OLD.attempts > 0 AND NEW.attempts = 0) EXECUTE FUNCTION refuse_wake();`);
    await createTopics(f.brokers, [{ topic }]);
    const collector = await new KafkaCollector(f.brokers, [topic]).start();
    try {
      await new Promise((r) => setTimeout(r, 1000)); // past the hold: the next row asks Kafka
      await write(); // seq 3: finds the topic exists; the wake after its claim fails
      await waitFor(
        async () => {
          const { rows } = await f.pool.query(`SELECT last_value, is_called FROM wake_refusals`);
          return rows[0].is_called || undefined;
        },
        { timeoutMs: 10_000, message: 'the relay tried to wake the parked rows' },
      );
      await f.pool.query('DROP TRIGGER refuse_wake ON eventbus.outbox');
      await waitFor(() => collector.eventIds().size >= seq || undefined, {
        timeoutMs: 30_000,
        message: () => `all ${seq} rows (have ${collector.eventIds().size})`,
      });
      const { inversions } = checkPerTenantOrder(collector.messages, (m) => JSON.parse(m.value!).seq);
      expect(inversions).toEqual([]);
    } finally {
      await collector.stop();
      await f.pool.query('DROP TRIGGER IF EXISTS refuse_wake ON eventbus.outbox; DROP FUNCTION refuse_wake(); DROP SEQUENCE wake_refusals');
    }
  });

  it("when another lane ends the topic's hold while a batch that parks the tenant's rows is in flight", async () => {
    const topic = `${f.prefix}race`;
    await createTopics(f.brokers, [{ topic: `${f.prefix}order` }]);
    // Lane 0's send of the batch holding `gate.watched` waits until `open()`: meanwhile the
    // topic is created and lane 1 finds it, wakes the rows parked so far and ends the hold.
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const gate = { watched: undefined as string | undefined, entered: false };
    const publisher = new WatchingPublisher(new KafkaPublisher({ brokers: f.brokers, createTopics: false }), async (messages) => {
      if (gate.watched === undefined || !messages.some((m) => String(m.headers.ce_id) === gate.watched)) return;
      gate.entered = true;
      await opened;
    });
    const relay = await f.startRelay({ publisher, createTopics: false, lanes: 2, instanceId: 'race', missingTopicHold: { initialMs: 1500, maxMs: 3000 } });
    const laneShards = await waitFor(
      async () => {
        const { rows } = await f.pool.query(
          "SELECT instance_id, shards FROM eventbus.relay_instances WHERE instance_id LIKE 'race/lane-%' ORDER BY instance_id",
        );
        return rows.length === 2 && rows.every((r) => r.shards.length === 32) ? rows.map((r) => new Set<number>(r.shards)) : undefined;
      },
      { timeoutMs: 15_000, message: 'the two lanes holding 32 shards each' },
    );
    const tenantOf = (lane: number) => {
      for (let i = 0; ; i++) if (laneShards[lane]!.has(shardForTenant(`race-${lane}-${i}`))) return `race-${lane}-${i}`;
    };
    const [tenant, other] = [tenantOf(0), tenantOf(1)];
    let seq = 0;
    const write = () => f.write({ tenantId: tenant, eventType: 'race.happened', payload: { seq: seq++ } });
    try {
      await write(); // seq 0: Kafka refuses it, the topic is held (1.5 s) and the row parked
      await waitUntilParked(1);
      const heldAt = Date.now();
      // One batch of lane 0: seq 1, held back by the running hold (parked in the batch's
      // transaction), and a row of another topic, whose send waits at the gate.
      await f.db.transaction(async (tx) => {
        const writer = new EventWriter(tx);
        await writer.writeEventWithOutbox({ tenantId: tenant, eventKey: 'race-1', eventType: 'race.happened', payload: { seq: seq++ } });
        gate.watched = (await writer.writeEventWithOutbox({ tenantId: tenant, eventKey: 'race-h', eventType: 'order.placed', payload: {} })).eventLogId;
      });
      await waitFor(() => gate.entered || undefined, { timeoutMs: 10_000, message: "lane 0's send at the gate" });
      await createTopics(f.brokers, [{ topic }]);
      const collector = await new KafkaCollector(f.brokers, [topic]).start();
      try {
        await new Promise((r) => setTimeout(r, Math.max(0, heldAt + 2000 - Date.now()))); // past the hold
        // Lane 1's row of the topic: its claim asks Kafka, which says the topic exists; lane 1
        // wakes the parked rows it can see (seq 0, not seq 1: uncommitted) and ends the hold.
        await f.write({ tenantId: other, eventType: 'race.happened', payload: { seq: 0 } });
        await waitFor(() => !relay.health().heldTopics.includes(topic) || undefined, { timeoutMs: 10_000, message: 'the hold ended by lane 1' });
        open();
        await write(); // seq 2: after the rows that waited
        await waitFor(() => collector.eventIds().size >= seq + 1 || undefined, {
          timeoutMs: 30_000,
          message: () => `all ${seq + 1} rows (have ${collector.eventIds().size})`,
        });
        const { inversions } = checkPerTenantOrder(collector.messages, (m) => JSON.parse(m.value!).seq);
        expect(inversions).toEqual([]);
      } finally {
        await collector.stop();
      }
    } finally {
      open();
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
