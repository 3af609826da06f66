// A consumer worker process for the copy-acknowledgement test: one EventConsumer whose handler
// fails for events with payload { fail: true } and succeeds for the others. With HOLD_COPIES
// set, its publisher never sends the retry and DLQ copies (the publish hangs, as towards a
// broker that stopped answering), so the test can SIGKILL the process while a copy is unsent.
// With REFUSE_FIRST_COPY set, its first publish of copies fails (as Kafka not taking them within
// the publish timeout) and the later ones go to Kafka, after LATER_COPIES_DELAY_MS if set.
// Prints one JSON line per step on stdout for the test to wait on.
import { KafkaPublisher } from '@eventbus/kafka';
import { EventConsumer } from '../dist/index.js';

const { KAFKA_BROKERS, TOPIC_PREFIX, GROUP_ID, HOLD_COPIES, REFUSE_FIRST_COPY, LATER_COPIES_DELAY_MS } = process.env;
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const brokers = KAFKA_BROKERS.split(',');

const real = new KafkaPublisher({ brokers, topicPartitions: 1 });
let publishes = 0;
const publisher = {
  connect: () => real.connect(),
  disconnect: () => real.disconnect(),
  publish: (messages) => {
    say({ step: 'copies', count: messages.length, topics: messages.map((m) => m.topic) });
    // Refused after a second, as at a publish timeout: the messages after it are handled meanwhile.
    if (REFUSE_FIRST_COPY && publishes++ === 0) return new Promise((_, reject) => setTimeout(reject, 1000, new Error('the broker did not answer in time')));
    if (HOLD_COPIES) return new Promise(() => {});
    if (LATER_COPIES_DELAY_MS) return new Promise((r) => setTimeout(r, Number(LATER_COPIES_DELAY_MS))).then(() => real.publish(messages));
    return real.publish(messages);
  },
};

const consumer = new EventConsumer({
  brokers,
  groupId: GROUP_ID,
  routing: { prefix: TOPIC_PREFIX },
  fromBeginning: true,
  topicPartitions: 1,
  publisher,
  retryConfig: { maxRetries: 1, initialDelayMs: 100, maxDelayMs: 100 },
  // The dead member must leave the group quickly for the next one to get its partitions.
  sessionTimeoutMs: 6000,
  heartbeatIntervalMs: 500,
});
consumer.subscribe({
  eventTypes: ['order.placed'],
  handler: async (event, ctx) => {
    say({ step: 'handled', id: event.id, attempt: ctx.attempt, fail: event.payload.fail === true });
    if (event.payload.fail) throw new Error('this event fails');
  },
});
await consumer.start();
say({ step: 'started' });
