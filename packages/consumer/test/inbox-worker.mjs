// A consumer worker process for crash tests: one EventConsumer whose handler applies its
// side effect through ctx.processOnce (the inbox). With STALL set, the handler hangs at that
// point so the test can SIGKILL the process there:
//   STALL=before-commit  inside the inbox transaction, after the effect's INSERT (not committed)
//   STALL=after-commit   after the inbox transaction committed, before the handler returns
//                        (so Kafka's offset is not committed either)
// Prints one JSON line per step on stdout for the test to wait on.
import { sql } from 'drizzle-orm';
import { EventConsumer } from '../dist/index.js';

const { KAFKA_BROKERS, DATABASE_URL, TOPIC_PREFIX, GROUP_ID, STALL } = process.env;
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const hang = () => new Promise(() => {});

const consumer = new EventConsumer({
  brokers: KAFKA_BROKERS.split(','),
  groupId: GROUP_ID,
  routing: { prefix: TOPIC_PREFIX },
  connectionString: DATABASE_URL,
  fromBeginning: true,
  topicPartitions: 3,
  // The dead member must leave the group quickly for the restarted one to get its partitions.
  sessionTimeoutMs: 6000,
  heartbeatIntervalMs: 500,
  handlerTimeoutMs: 120_000,
});
consumer.subscribe({
  eventTypes: ['payment.captured'],
  handler: async (event, ctx) => {
    say({ step: 'handler-start', id: event.id, attempt: ctx.attempt });
    const ran = await ctx.processOnce(async (tx) => {
      await tx.execute(sql`INSERT INTO public.effects (event_id) VALUES (${event.id})`);
      if (STALL === 'before-commit') {
        say({ step: 'stalled', id: event.id, where: STALL });
        await hang();
      }
    });
    if (STALL === 'after-commit') {
      say({ step: 'stalled', id: event.id, where: STALL, ran });
      await hang();
    }
    say({ step: 'handler-done', id: event.id, ran });
  },
});
process.once('SIGTERM', () => void consumer.stop().then(() => process.exit(0)));
await consumer.start();
say({ step: 'started' });
