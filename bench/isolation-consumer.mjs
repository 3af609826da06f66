// The consumer of the isolation bench, in a process of its own so its CPU (a failing tenant's
// retries and DLQ copies) is what the bench measures, not the writers' and the relay's event
// loop. One EventConsumer, default retry settings (non-blocking mode): the handler throws for
// tenant POISON_TENANT and notes the arrival of every other event.
//
// argv: <brokers, comma-separated> <topic prefix> <group id> <poison tenant>
// Sends { ready } once running; { measureFromNow } starts its CPU and event-loop clocks; on
// { report } sends { arrivals: [[eventKey, epochMs], ...], cpuSeconds, eventLoopUtilization } (since measureFromNow);
// on { stop } stops the consumer and exits.
import { EventConsumer } from '@eventbus/consumer';

const [brokers, prefix, groupId, poisonTenant] = process.argv.slice(2);
/** Wall-clock ms with sub-ms precision, comparable with the parent's (same machine, same clock). */
const now = () => performance.timeOrigin + performance.now();
const arrivals = [];

const consumer = new EventConsumer({ brokers: brokers.split(','), groupId, routing: { prefix }, fromBeginning: true, onMetric: () => {} });
consumer.subscribe({
  eventTypes: ['order.*'],
  handler: async (event) => {
    if (event.tenantId === poisonTenant) throw new Error('this tenant fails every event');
    arrivals.push([event.eventKey, now()]);
  },
});
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
