import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { KafkaPublisher } from '@eventbus/kafka';
import { uniqueName, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { DlqMirror, type DlqMirrorOptions } from '../src/index.js';

/** A database, a Kafka publisher and DLQ mirrors of one test file; each test takes its own prefix and group ids. */
export async function deadLettersFixture(label: string) {
  const database: TestDatabase = await testDatabase(label);
  const pool = new pg.Pool({ connectionString: database.url, max: 8 });
  // Idle clients get 57P01 when the database is dropped WITH (FORCE) at the end; nothing to do then.
  pool.on('error', () => undefined);
  const { kafkaBrokers } = testServices();
  const publisher = new KafkaPublisher({ brokers: kafkaBrokers, topicPartitions: 3 });
  await publisher.connect();
  const running: Array<{ stop(): Promise<void> }> = [];

  return {
    database,
    pool,
    db: drizzle(pool),
    brokers: kafkaBrokers,
    publisher,
    /** A topic prefix no other test uses. */
    prefix: () => `${uniqueName(`${label}.`)}.`,
    group: (name: string) => uniqueName(`${name}-`),
    async mirror(options: Partial<DlqMirrorOptions>) {
      const mirror = new DlqMirror({ brokers: kafkaBrokers, pool, groupId: uniqueName('mirror-'), topicPartitions: 3, ...options });
      running.push(mirror);
      await mirror.start();
      return mirror;
    },
    /** Stops what the test started. */
    async reset() {
      await Promise.all(running.splice(0).map((r) => r.stop()));
    },
    async close() {
      await Promise.all(running.splice(0).map((r) => r.stop()));
      await publisher.disconnect();
      await pool.end();
      await database.drop();
    },
  };
}
