import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { EventWriter, type EventInput } from '@eventbus/producer';
import { createTopics, KafkaCollector, uniqueName, type TestDatabase } from '@eventbus/dev-services';
import type { KafkaPublisher, MessagePublisher, OutboundMessage, PublishedPosition, PublishError } from '@eventbus/kafka';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { OutboxRelay, type OutboxRelayOptions } from '../src/index.js';

/** A database, a topic prefix and helpers of one test file's own. */
export async function relayFixture(label: string) {
  const database: TestDatabase = await testDatabase(label);
  const pool = new pg.Pool({ connectionString: database.url, max: 12 });
  // Idle clients get 57P01 when the database is dropped WITH (FORCE) at the end; nothing to do then.
  pool.on('error', () => undefined);
  const db: NodePgDatabase = drizzle(pool);
  const prefix = `${uniqueName(`${label}.`)}.`;
  const { kafkaBrokers } = testServices();
  const relays: OutboxRelay[] = [];
  const collectors: KafkaCollector[] = [];

  return {
    database,
    pool,
    db,
    prefix,
    brokers: kafkaBrokers,
    writer: new EventWriter(db),
    async write(input: Partial<EventInput> & { tenantId: string }) {
      return new EventWriter(db).writeEventWithOutbox({
        eventKey: uniqueName('k-'),
        eventType: 'order.placed',
        payload: {},
        ...input,
      });
    },
    async startRelay(options: Partial<OutboxRelayOptions> = {}) {
      const relay = new OutboxRelay({
        connectionString: database.url,
        brokers: kafkaBrokers,
        routing: { prefix },
        pollIntervalMs: 200,
        rebalanceIntervalMs: 300,
        ...options,
      });
      relays.push(relay);
      await relay.start();
      return relay;
    },
    /** Collects from `topics` (default: this file's `order` topic, created first: a subscription sees only existing topics). */
    async collect(topics: string[] = [`${prefix}order`]) {
      await createTopics(
        kafkaBrokers,
        topics.map((topic) => ({ topic })),
      );
      const collector = await new KafkaCollector(kafkaBrokers, topics).start();
      collectors.push(collector);
      return collector;
    },
    /**
     * The last statement of each relay connection to this database (pg_stat_activity), read
     * until one of them is `statement` or `ms` passed: what a lane runs while its send is held.
     * A statement sent before the send shows once Postgres has read it.
     */
    async relayStatementsUntil(statement: string, ms = 5000): Promise<string[]> {
      const deadline = Date.now() + ms;
      let statements: string[];
      do {
        const { rows } = await pool.query("SELECT query FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'eventbus-relay %'");
        statements = rows.map((r) => r.query as string);
        if (statements.includes(statement)) break;
        await new Promise((r) => setTimeout(r, 20));
      } while (Date.now() < deadline);
      return statements;
    },
    async pending(): Promise<number> {
      const { rows } = await pool.query('SELECT count(*)::int AS n FROM eventbus.outbox');
      return rows[0].n;
    },
    /** Stops every relay and collector started so far (between tests: each test starts its own). */
    async reset() {
      await Promise.all(relays.splice(0).map((r) => r.stop()));
      await Promise.all(collectors.splice(0).map((c) => c.stop()));
    },
    async close() {
      await Promise.all(relays.map((r) => r.stop()));
      await Promise.all(collectors.map((c) => c.stop()));
      await pool.end();
      await database.drop();
    },
  };
}

/** A real KafkaPublisher underneath that runs `beforeSend` on each publish, before the send. */
export class WatchingPublisher implements MessagePublisher {
  constructor(
    private readonly inner: KafkaPublisher,
    private readonly beforeSend: (messages: readonly OutboundMessage[]) => Promise<void>,
  ) {}
  connect(): Promise<void> {
    return this.inner.connect();
  }
  disconnect(): Promise<void> {
    return this.inner.disconnect();
  }
  async publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    await this.beforeSend(messages);
    return this.inner.publish(messages);
  }
  missingTopics(topics: readonly string[]): Promise<string[]> {
    return this.inner.missingTopics(topics);
  }
  refusalsBeforeSend(messages: readonly OutboundMessage[]): Array<PublishError | undefined> {
    return this.inner.refusalsBeforeSend(messages);
  }
}
