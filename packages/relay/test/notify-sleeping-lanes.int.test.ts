import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { waitFor } from '@eventbus/dev-services';
import { EventWriter } from '@eventbus/producer';
import { KafkaPublisher, type MessagePublisher, type OutboundMessage, type PublishedPosition } from '@eventbus/kafka';
import { SHARD_COUNT, SLEEP_LOCK_NAMESPACE } from '@eventbus/schema';
import { relayFixture } from './relay-fixture.js';

/**
 * The outbox trigger notifies only for shards whose lane sleeps (drizzle/0006,
 * src/sql/shard-sleep.ts). These tests hold the three things that must stay true: a busy
 * relay spares its producers the NOTIFY, an idle one still wakes on a single commit, and no
 * row written around a lane's sleep/wake transition waits for the fallback poll.
 */
let f: Awaited<ReturnType<typeof relayFixture>>;
beforeAll(async () => {
  f = await relayFixture('sleep');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

/** Long enough that a row left to the fallback poll shows as a latency no wake-up explains. */
const POLL_MS = 8000;

/** A Kafka publisher that records when each event's send was acknowledged, by event id (ce_id). */
class TimedPublisher implements MessagePublisher {
  readonly publishedAt = new Map<string, number>();
  private readonly inner: KafkaPublisher;
  constructor(brokers: string[]) {
    this.inner = new KafkaPublisher({ brokers });
  }
  connect(): Promise<void> {
    return this.inner.connect();
  }
  async publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    const positions = await this.inner.publish(messages);
    const now = Date.now();
    for (const message of messages) {
      const id = message.headers?.ce_id;
      if (typeof id === 'string' && !this.publishedAt.has(id)) this.publishedAt.set(id, now);
    }
    return positions;
  }
  disconnect(): Promise<void> {
    return this.inner.disconnect();
  }
}

/** A LISTEN connection on the outbox channel counting notifications. */
async function listen(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const counter = { notifications: 0, close: () => client.end() };
  client.on('notification', () => counter.notifications++);
  await client.query('LISTEN eventbus_outbox');
  return counter;
}

/** Shards whose sleep lock a lane holds right now. */
async function sleepingShards(): Promise<number> {
  const { rows } = await f.pool.query(
    `SELECT count(*)::int AS n FROM pg_locks
     WHERE locktype = 'advisory' AND granted AND mode = 'ExclusiveLock' AND classid = $1 AND objsubid = 2
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [SLEEP_LOCK_NAMESPACE],
  );
  return rows[0].n;
}

async function startTimedRelay() {
  const publisher = new TimedPublisher(f.brokers);
  const relay = await f.startRelay({ publisher, pollIntervalMs: POLL_MS, rebalanceIntervalMs: 500, lanes: 2 });
  await waitFor(() => relay.shards.length === SHARD_COUNT, { timeoutMs: 5000, message: 'the relay holds every shard' });
  return { relay, publisher };
}

/** Writes one event in its own transaction; returns its id and when the commit returned. */
async function writeTimed(tenantId: string): Promise<{ id: string; committedAt: number }> {
  const { eventLogId } = await f.write({ tenantId });
  return { id: eventLogId, committedAt: Date.now() };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe('NOTIFY only while a lane sleeps (real Postgres, real Kafka)', () => {
  it('a busy relay spares its producers the NOTIFY: far fewer notifications than transactions', async () => {
    const { publisher } = await startTimedRelay();
    const listener = await listen(f.database.url);
    try {
      await waitFor(async () => (await sleepingShards()) === SHARD_COUNT, { timeoutMs: 5000, message: 'every shard asleep' });
      // Steady load: 8 writers, one event per transaction, over 8 tenants, for 3 s.
      const ids: string[] = [];
      const deadline = Date.now() + 3000;
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          while (Date.now() < deadline) ids.push((await writeTimed(`busy-${w}`)).id);
        }),
      );
      await waitFor(() => ids.every((id) => publisher.publishedAt.has(id)), { timeoutMs: 15_000, message: 'every event published' });
      const ratio = listener.notifications / ids.length;
      console.info(`busy relay: ${ids.length} transactions, ${listener.notifications} notifications (${(ratio * 100).toFixed(1)} %)`);
      expect(ids.length).toBeGreaterThan(200);
      // Without the sleep flags every transaction notifies (ratio 1).
      expect(ratio).toBeLessThan(0.2);
    } finally {
      await listener.close();
    }
  });

  it('an idle relay wakes within milliseconds of a single commit, not at the poll', async () => {
    const { publisher } = await startTimedRelay();
    const listener = await listen(f.database.url);
    try {
      const latencies: number[] = [];
      for (let i = 0; i < 10; i++) {
        // Asleep on every shard: only the notification can wake it before the poll.
        await waitFor(async () => (await sleepingShards()) === SHARD_COUNT, { timeoutMs: 5000, message: 'every shard asleep' });
        const before = listener.notifications;
        const { id, committedAt } = await writeTimed(`idle-${i}`);
        const publishedAt = await waitFor(() => publisher.publishedAt.get(id), { timeoutMs: POLL_MS + 5000, intervalMs: 1, message: `event ${i}` });
        latencies.push(publishedAt - committedAt);
        // The relay may hear its notification before this connection does.
        await waitFor(() => listener.notifications > before, { timeoutMs: 2000, message: `notification ${i}` });
      }
      expect(listener.notifications).toBe(10); // one per commit, none of them twice
      latencies.sort((a, b) => a - b);
      console.info(`idle relay, commit → Kafka ack: p50 ${percentile(latencies, 50)} ms, max ${latencies.at(-1)} ms`);
      expect(percentile(latencies, 50)).toBeLessThan(50);
      expect(latencies.at(-1)).toBeLessThan(500); // the poll is 8 s away

      // eventbus.notify = 'off' still sends nothing, lanes asleep or not; the poll finds the row.
      await waitFor(async () => (await sleepingShards()) === SHARD_COUNT, { timeoutMs: 5000, message: 'every shard asleep' });
      const before = listener.notifications;
      const silent = await f.db.transaction(async (tx) => {
        await tx.execute(sql`SET LOCAL eventbus.notify = 'off'`);
        return new EventWriter(tx).writeEventWithOutbox({ tenantId: 'silent', eventKey: 'silent', eventType: 'order.placed', payload: {} });
      });
      await waitFor(() => publisher.publishedAt.get(silent.eventLogId), { timeoutMs: POLL_MS + 5000, message: 'the un-notified event, at the poll' });
      expect(listener.notifications).toBe(before);
    } finally {
      await listener.close();
    }
  });

  it('loses no wake-up around the sleep/wake transition: every row is published long before the poll', async () => {
    const { publisher } = await startTimedRelay();
    // Rounds of a short burst: 8 writers on 2 tenants, enough commits per claim to wake their
    // shards (their producers then skip NOTIFY), each writer stopping after a few events with
    // pauses of 0 to 11 ms, so the last commits fall around the moment the lane finds the
    // shards empty and puts them back to sleep. A round's rows must all be published before
    // the next round starts: no later write rescues a row whose wake-up was lost, only the
    // poll, 8 s away.
    const latencies: number[] = [];
    for (let round = 0; round < 60; round++) {
      const written = (
        await Promise.all(
          Array.from({ length: 8 }, async (_, w) => {
            const mine: Array<{ id: string; committedAt: number }> = [];
            for (let i = 0; i < 2 + ((round + w) % 4); i++) {
              mine.push(await writeTimed(`race-${w % 2}`));
              await new Promise((resolve) => setTimeout(resolve, (round * 7 + w * 3 + i) % 12));
            }
            return mine;
          }),
        )
      ).flat();
      await waitFor(() => written.every((w) => publisher.publishedAt.has(w.id)), { timeoutMs: POLL_MS + 5000, message: `round ${round} published` });
      for (const w of written) latencies.push(publisher.publishedAt.get(w.id)! - w.committedAt);
    }
    latencies.sort((a, b) => a - b);
    console.info(
      `transition race: ${latencies.length} events, commit → Kafka ack p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies.at(-1)} ms`,
    );
    // A lost wake-up waits for the sweep, up to POLL_MS; everything else takes a claim and a send.
    expect(latencies.at(-1)).toBeLessThan(POLL_MS / 4);
  }, 120_000);
});
