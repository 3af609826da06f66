// Consumer throughput over a pre-filled topic: EventConsumer with a no-op handler (decode, type
// match, handler call, metrics, offset commits) against a raw kafkajs `eachBatch` consumer doing
// the least a real one does (parse the JSON value, read the event type header, resolve the
// offset), both reading every message of the same topic with a group of their own and the same
// fetch settings (EventConsumer's kafkajs settings: 100 ms max fetch wait, 4 partitions at once,
// offsets committed about once a second).
//
// The passes alternate (raw, EventConsumer, raw, EventConsumer): on a shared machine the load
// drifts within a minute, and a single pass of each measured the drift as much as the consumer.
// One untimed pass of each over the topic's first events comes first, so that neither side's
// first pass is the one that compiles its code. Each pass is timed from its first message to
// its last (a new group's join does not count) and its process CPU is read over the same
// window; the ratios compare the best pass of each side, in events/s and in CPU per event (what
// the host steals from this machine is not process CPU).
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { EventConsumer } from '@eventbus/consumer';
import { createTopics, uniqueName } from '@eventbus/dev-services';
import { machineLoadWindow, showMachineLoad } from './machine-load.mjs';

const PARTITIONS = 12;

/** Fills a topic, runs the passes, returns the figures (`results.consumer` of run.mjs). */
export async function consumerThroughputBench({ brokers, say, quick, benchEvent }) {
  const total = quick ? 50_000 : 200_000;
  const rounds = quick ? 1 : 2;
  const fmt = (n) => Math.round(n).toLocaleString('en-US');
  say(`## consumer: ${fmt(total)} events on a ${PARTITIONS}-partition topic, 512-byte payloads, no-op handler; ${rounds} alternating passes each`);
  const prefix = `${uniqueName('cbench.')}.`;
  const topic = `${prefix}order`;
  await createTopics(brokers, [{ topic, numPartitions: PARTITIONS }]);
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  for (let sent = 0; sent < total; sent += 1000) {
    const messages = Array.from({ length: Math.min(1000, total - sent) }, (_, i) => {
      const wire = benchEvent(`tenant-${(sent + i) % 50}`, `k-${sent + i}`);
      return { key: wire.key, value: wire.value, headers: wire.headers };
    });
    await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages }] });
  }
  await producer.disconnect();

  const sides = {
    raw: { label: 'raw kafkajs eachBatch, JSON.parse + resolveOffset', start: (onMessage) => startRaw(kafka, topic, onMessage), passes: [] },
    library: { label: 'EventConsumer, no-op handler', start: (onMessage) => startLibrary(brokers, prefix, onMessage), passes: [] },
  };
  const warmUp = quick ? 5000 : 20_000;
  for (const side of Object.values(sides)) await timedPass(side, warmUp);
  for (let round = 0; round < rounds; round++) {
    for (const [name, side] of Object.entries(sides)) {
      const pass = await profiled(`consumer-${name}-${round + 1}`, () => timedPass(side, total));
      side.passes.push(pass);
      say(
        `  ${side.label.padEnd(50)} ${fmt(pass.eventsPerS).padStart(8)} events/s, ${pass.cpuMicrosPerEvent.toFixed(1).padStart(5)} µs CPU per event; ${showMachineLoad(pass.load)}`,
      );
    }
  }
  const best = (side) => side.passes.reduce((a, b) => (b.eventsPerS > a.eventsPerS ? b : a));
  const leanest = (side) => Math.min(...side.passes.map((p) => p.cpuMicrosPerEvent));
  const ratio = best(sides.library).eventsPerS / best(sides.raw).eventsPerS;
  const cpuRatio = leanest(sides.library) / leanest(sides.raw);
  say(`  EventConsumer / raw kafkajs, best pass of each: ${ratio.toFixed(2)} of the events/s, ${cpuRatio.toFixed(2)}× the CPU per event\n`);
  return {
    events: total,
    partitions: PARTITIONS,
    rawKafka: sides.raw.passes,
    eventConsumer: sides.library.passes,
    rawKafkaEventsPerS: best(sides.raw).eventsPerS,
    eventConsumerEventsPerS: best(sides.library).eventsPerS,
    ratio,
    cpuPerEventRatio: cpuRatio,
  };
}

/**
 * BENCH_PROF=<dir>: each pass runs under the V8 CPU profiler (this process: both consumers run
 * in it) and its profile is written to <dir>/<name>.cpuprofile (Chrome DevTools reads it). The
 * profiler costs CPU of its own: figures of a profiled run compare only with each other.
 */
async function profiled(name, pass) {
  const dir = process.env.BENCH_PROF;
  if (!dir) return pass();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await pass();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
  }
}

/** One pass over the whole topic: events/s from the first message to the last, and CPU per event over that window. */
async function timedPass(side, total) {
  let count = 0;
  let first;
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const onMessage = () => {
    if (count++ === 0) first = { at: performance.now(), cpu: process.cpuUsage(), load: machineLoadWindow() };
    if (count === total) done({ at: performance.now(), cpu: process.cpuUsage(first.cpu), load: first.load.end() });
  };
  const stop = await side.start(onMessage);
  let timer;
  const last = await Promise.race([finished, new Promise((resolve) => (timer = setTimeout(() => resolve(undefined), 300_000)))]);
  clearTimeout(timer); // else the process lingers 5 minutes after printing its results
  await stop();
  if (last === undefined) throw new Error(`${side.label}: only ${count} of ${total} events within 5 minutes`);
  const seconds = (last.at - first.at) / 1000;
  return {
    eventsPerS: (total - 1) / seconds,
    cpuMicrosPerEvent: (last.cpu.user + last.cpu.system) / (total - 1),
    load: last.load,
  };
}

async function startRaw(kafka, topic, onMessage) {
  // EventConsumer's fetch settings (KafkajsConsumerClient, EventConsumer's defaults), with
  // kafkajs' own commit about once a second in place of its OffsetCommitter.
  const consumer = kafka.consumer({ groupId: uniqueName('raw-'), maxWaitTimeInMs: 100, sessionTimeout: 30_000, heartbeatInterval: 3000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: 4,
    eachBatchAutoResolve: false,
    autoCommitInterval: 1000,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      for (const message of batch.messages) {
        // What a handler needs at the least: the event type and the parsed payload (EventConsumer's gets more).
        onMessage({ type: message.headers.ce_type.toString(), payload: JSON.parse(message.value.toString()) });
        resolveOffset(message.offset);
      }
      await heartbeat();
    },
  });
  return () => consumer.disconnect();
}

async function startLibrary(brokers, prefix, onMessage) {
  const consumer = new EventConsumer({ brokers, groupId: uniqueName('lib-'), routing: { prefix }, fromBeginning: true });
  consumer.subscribe({ eventTypes: ['order.*'], handler: async () => onMessage() });
  await consumer.start();
  return () => consumer.stop();
}
