// The consumer of the isolation bench, in a process of its own so its CPU (a failing tenant's
// retries and DLQ copies) is what the bench measures, not the writers' and the relay's event
// loop. One EventConsumer, default retry settings (non-blocking mode): the handler throws for
// tenant POISON_TENANT and notes the arrival of every other event.
//
// argv: <brokers, comma-separated> <topic prefix> <group id> <poison tenant> [raw]
// Sends { ready } once running; { measureFromNow } starts its CPU and event-loop clocks; on
// { report } sends { arrivals: [[eventKey, epochMs], ...], cpuSeconds, eventLoopUtilization } (since measureFromNow);
// on { stop } stops the consumer and exits.
import { Kafka, logLevel } from 'kafkajs';
import { EventConsumer } from '@eventbus/consumer';

const [brokers, prefix, groupId, poisonTenant, kind = 'EventConsumer'] = process.argv.slice(2);
/** Wall-clock ms with sub-ms precision, comparable with the parent's (same machine, same clock). */
const now = () => performance.timeOrigin + performance.now();
const arrivals = [];

let consumer;
if (kind === 'raw') {
  // The reference: a raw kafkajs consumer on the same topic, noting arrivals and nothing else.
  // What it sees is the pipeline up to Kafka (writers, Postgres, relay, broker) on this
  // machine during the case; the EventConsumer's figures beside it show what the consumer adds.
  const raw = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING }).consumer({ groupId, maxWaitTimeInMs: 100 });
  await raw.connect();
  await raw.subscribe({ topic: `${prefix}order`, fromBeginning: true });
  await raw.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      if (message.headers.ce_tenantid?.toString() !== poisonTenant) arrivals.push([message.headers.ce_eventkey.toString(), now()]);
    },
  });
  consumer = { start: async () => undefined, stop: () => raw.disconnect() };
} else {
  consumer = new EventConsumer({ brokers: brokers.split(','), groupId, routing: { prefix }, fromBeginning: true, onMetric: () => {} });
  consumer.subscribe({
    eventTypes: ['order.*'],
    handler: async (event) => {
      if (event.tenantId === poisonTenant) throw new Error('this tenant fails every event');
      arrivals.push([event.eventKey, now()]);
    },
  });
}
await consumer.start();
let cpuAtStart;
let eluAtStart;
process.send({ ready: true });
process.on('message', async (message) => {
  if (message.measureFromNow) {
    cpuAtStart = process.cpuUsage();
    eluAtStart = performance.eventLoopUtilization();
  }
  if (message.report) {
    const cpu = process.cpuUsage(cpuAtStart);
    const elu = performance.eventLoopUtilization(eluAtStart);
    process.send({ arrivals: arrivals.splice(0), cpuSeconds: (cpu.user + cpu.system) / 1e6, eventLoopUtilization: elu.utilization });
  }
  if (message.stop) {
    await consumer.stop();
    process.exit(0);
  }
});
