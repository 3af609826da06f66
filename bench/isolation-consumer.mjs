// The consumer of the isolation bench, in a process of its own so its CPU (a failing tenant's
// retries and DLQ copies) is what the bench measures, not the writers' and the relay's event
// loop. One EventConsumer, default retry settings (non-blocking mode): the handler throws for
// tenant POISON_TENANT and notes the arrival of every other event. In `raw` mode it is also the
// relay half's observer (isolation-relay.mjs), there noting arrivals at Kafka of the tenants
// other than the poisoned one.
//
// argv: <brokers, comma-separated> <topic prefix> <group id> <poison tenant> [raw|EventConsumer] [fail after ms]
// With `fail after ms`, the poison tenant's handler waits that long before it throws (a
// downstream timing out) instead of throwing at once.
// Sends { ready } once running; { measureFromNow } starts its CPU and event-loop clocks; on
// { report } sends { arrivals: [[eventKey, epochMs, partition, record timestamp (raw only: when the producer sent it, epoch ms)], ...], poisonPartition, cpuSeconds,
// eventLoopUtilization, loopDelayMs: { p99, max } } (since measureFromNow); on { stop } stops the consumer and exits.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import { EventConsumer } from '@eventbus/consumer';

const [brokers, prefix, groupId, poisonTenant, kind = 'EventConsumer', failAfter = '0'] = process.argv.slice(2);
const failAfterMs = Number(failAfter);
/** The partition the poison tenant's events arrive on (the healthy tenants sharing it wait behind them). */
let poisonPartition;
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
    eachMessage: async ({ message, partition }) => {
      if (message.headers.ce_tenantid?.toString() !== poisonTenant)
        arrivals.push([message.headers.ce_eventkey.toString(), now(), partition, Number(message.timestamp)]);
      else poisonPartition = partition;
    },
  });
  consumer = { start: async () => undefined, stop: () => raw.disconnect() };
} else {
  consumer = new EventConsumer({ brokers: brokers.split(','), groupId, routing: { prefix }, fromBeginning: true, onMetric: () => {} });
  consumer.subscribe({
    eventTypes: ['order.*'],
    handler: async (event, ctx) => {
      if (event.tenantId === poisonTenant) {
        if (ctx.attempt === 1) poisonPartition = ctx.partition;
        if (failAfterMs > 0) await new Promise((r) => setTimeout(r, failAfterMs));
        throw new Error('this tenant fails every event');
      }
      arrivals.push([event.eventKey, now(), ctx.partition]);
    },
  });
}
await consumer.start();
let cpuAtStart;
let eluAtStart;
/** How late the event loop ran timers (ms): a handler waits that long behind whatever else the process does. */
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
process.send({ ready: true });
process.on('message', async (message) => {
  if (message.measureFromNow) {
    cpuAtStart = process.cpuUsage();
    eluAtStart = performance.eventLoopUtilization();
    loopDelay.reset();
    loopDelay.enable();
  }
  if (message.report) {
    const cpu = process.cpuUsage(cpuAtStart);
    const elu = performance.eventLoopUtilization(eluAtStart);
    process.send({
      arrivals: arrivals.splice(0),
      poisonPartition,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      eventLoopUtilization: elu.utilization,
      loopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    });
  }
  if (message.stop) {
    await consumer.stop();
    process.exit(0);
  }
});
