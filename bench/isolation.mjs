// `pnpm bench --only isolation`: does one failing tenant slow the others down?
//
// The consumer half: the healthy tenants' latency from commit to handler without tenant X, with
// X writing at 100 or 1,000 events/s that succeed, with X's every event failing in the
// handler, and with X's handler taking 300 ms to fail (a downstream timing out), measured in
// the same run. Everything is
// real: EventWriter transactions → OutboxRelay (a process of its own) → Kafka → an EventConsumer in a child process
// (default retry settings: the failing tenant's events go through the retry topic five times,
// then to the DLQ topic). A raw kafkajs consumer in another process reads the same events:
// the latency the pipeline up to Kafka had during each case, so a slower case shows whether
// the consumer or the machine under the extra load made it slower.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { createTopics, uniqueName } from '@eventbus/dev-services';
import { EventWriter } from '@eventbus/producer';
import { machineLoadWindow, showMachineLoad } from './machine-load.mjs';
import { startRelayProcess } from './start-relay-process.mjs';

const CONSUMER_PROCESS = fileURLToPath(new URL('./isolation-consumer.mjs', import.meta.url));
const PAYLOAD = { text: 'x'.repeat(480), n: 1 };
const HEALTHY_TENANTS = 20;
const HEALTHY_RATE = 300; // events/s, all healthy tenants together
const POISON_TENANT = 'tenant-poison';
/** Wall-clock ms with sub-ms precision, comparable with the consumer process' clock. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Quantiles of a list of ms (sorted in place). */
function quantiles(xs) {
  xs.sort((a, b) => a - b);
  const q = (p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? Number.NaN;
  return { p50: q(0.5), p99: q(0.99), max: xs[xs.length - 1] ?? Number.NaN, count: xs.length };
}

/**
 * Writes at a steady rate for `seconds`: every 10 ms a tick writes the healthy tenants' share
 * (one transaction per event, as services write) and the poisoned tenant's share (its events
 * in one transaction per tick, so that 1,000/s of them costs Postgres 100 commits/s and not the
 * commit ceiling of this machine; what is measured is the consumer). Returns each healthy
 * event's commit time by event key, and which were written in the warm-up.
 */
async function writeLoad(db, { seconds, warmupSeconds, poisonRate }) {
  const writer = new EventWriter(db);
  const committed = new Map();
  const warm = new Set();
  const start = performance.now();
  const ticks = ((seconds + warmupSeconds) * 1000) / 10;
  const inFlight = new Set();
  let healthyDue = 0;
  let poisonDue = 0;
  let n = 0;
  for (let tick = 0; tick < ticks; tick++) {
    const due = start + tick * 10;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const inWarmup = tick * 10 < warmupSeconds * 1000;
    healthyDue += HEALTHY_RATE / 100;
    poisonDue += poisonRate / 100;
    for (; healthyDue >= 1; healthyDue--) {
      const eventKey = randomUUID();
      const tenantId = `tenant-${n++ % HEALTHY_TENANTS}`;
      if (inWarmup) warm.add(eventKey);
      const p = writer
        .writeEventWithOutbox({ tenantId, eventKey, eventType: 'order.placed', payload: PAYLOAD })
        .then(() => committed.set(eventKey, now()))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    const poisoned = Math.floor(poisonDue);
    if (poisoned > 0) {
      poisonDue -= poisoned;
      const events = Array.from({ length: poisoned }, () => ({ tenantId: POISON_TENANT, eventKey: randomUUID(), eventType: 'order.placed', payload: PAYLOAD }));
      const p = db.transaction((tx) => new EventWriter(tx).writeEventsWithOutbox(events)).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    if (inFlight.size > 64) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return { committed, warm };
}

/** A consumer process of the bench (bench/isolation-consumer.mjs): `kind` EventConsumer or raw; also the relay half's observer (isolation-relay.mjs). */
export function startConsumerProcess(brokers, prefix, poisonTenant, kind, failAfterMs = 0) {
  const child = fork(CONSUMER_PROCESS, [brokers.join(','), prefix, uniqueName('iso-'), poisonTenant, kind, String(failAfterMs)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // BENCH_PROF=<dir>: a V8 CPU profile of each case's EventConsumer process there.
    execArgv: process.env.BENCH_PROF && kind === 'EventConsumer' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [],
  });
  const next = () =>
    new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`the ${kind} consumer process exited (${code})`)));
    });
  return {
    pid: child.pid,
    ready: next(),
    measureFromNow: () => child.send({ measureFromNow: true }),
    /** Arrivals since the last report, and CPU and event-loop use since measureFromNow. */
    report: () => {
      const answer = next();
      child.send({ report: true });
      return answer;
    },
    stop: async () => {
      child.send({ stop: true });
      await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r()));
    },
  };
}

/**
 * Latencies commit → arrival of the measured (not warm-up) healthy events; waits up to 30 s for
 * stragglers; also split into the healthy tenants whose events share the failing tenant's
 * partition (handled in order behind its events) and the others.
 */
async function collectLatencies(consumer, committed, warm) {
  const first = await consumer.report();
  let poisonPartition = first.poisonPartition;
  const arrived = new Map(first.arrivals.map(([key, at, partition]) => [key, { at, partition }]));
  const deadline = Date.now() + 30_000;
  while (arrived.size < committed.size && Date.now() < deadline) {
    await sleep(500);
    const report = await consumer.report();
    poisonPartition ??= report.poisonPartition;
    for (const [key, at, partition] of report.arrivals) if (!arrived.has(key)) arrived.set(key, { at, partition });
  }
  const latencies = [];
  const sharing = [];
  const others = [];
  /** [commit time, latency ms, partition] of each measured event, for BENCH_ISOLATION_DUMP. */
  const events = [];
  for (const [key, { at, partition }] of arrived) {
    if (warm.has(key) || !committed.has(key)) continue;
    const latency = at - committed.get(key);
    latencies.push(latency);
    events.push([committed.get(key), latency, partition]);
    (partition === poisonPartition ? sharing : others).push(latency);
  }
  return {
    received: arrived.size,
    usage: first,
    ...quantiles(latencies),
    events,
    sharingPoisonPartition: quantiles(sharing),
    onOtherPartitions: quantiles(others),
  };
}

/**
 * One case: a fresh topic prefix, relay and consumer groups; the healthy load, plus
 * `poisonRate` failing events/s. Two consumers read the same topic: the EventConsumer under
 * test and a raw kafkajs consumer as the reference for the pipeline up to Kafka.
 */
export async function runCase(ctx, { label, poisonRate, seconds, warmupSeconds, poisonTenantFails = true, failAfterMs = 0 }) {
  const { brokers, databaseUrl, db, say } = ctx;
  const prefix = `${uniqueName('iso.')}.`;
  await createTopics(brokers, [{ topic: `${prefix}order`, numPartitions: 12 }]);
  const relay = await startRelayProcess({ databaseUrl, brokers, prefix });
  const poisonTenant = poisonTenantFails ? POISON_TENANT : 'nobody';
  const consumer = startConsumerProcess(brokers, prefix, poisonTenant, 'EventConsumer', failAfterMs);
  const reference = startConsumerProcess(brokers, prefix, POISON_TENANT, 'raw');
  try {
    await Promise.all([consumer.ready, reference.ready]);
    await sleep(3000); // let the groups settle before measuring
    consumer.measureFromNow();
    const window = machineLoadWindow();
    const { committed, warm } = await writeLoad(db, { seconds, warmupSeconds, poisonRate });
    const machine = window.end();
    const measured = await collectLatencies(consumer, committed, warm);
    const raw = await collectLatencies(reference, committed, warm);
    const consumerCores = measured.usage.cpuSeconds / (seconds + warmupSeconds);
    const { usage, events, ...figures } = measured;
    // BENCH_ISOLATION_DUMP=<dir>: every measured event's commit time, latency and partition, for
    // both consumers, one JSON file per case: when the slow ones happened, not only how many.
    if (process.env.BENCH_ISOLATION_DUMP) {
      mkdirSync(process.env.BENCH_ISOLATION_DUMP, { recursive: true });
      const file = join(process.env.BENCH_ISOLATION_DUMP, `${label.replace(/[^a-z0-9]+/gi, '-')}-${Date.now()}.json`);
      writeFileSync(file, JSON.stringify({ label, eventConsumer: events, raw: raw.events, poisonPartition: measured.usage.poisonPartition }));
    }
    const result = {
      label,
      poisonRate,
      expected: committed.size,
      ...figures,
      consumerCores,
      consumerEventLoopUtilization: usage.eventLoopUtilization,
      consumerLoopDelayMs: usage.loopDelayMs,
      rawReference: { p50: raw.p50, p99: raw.p99, received: raw.received },
      machine,
    };
    const ms = (x) => `${x.toFixed(1).padStart(7)} ms`;
    say(
      `  ${label.padEnd(34)} p50 ${ms(result.p50)}  p99 ${ms(result.p99)}  (${measured.received}/${committed.size} healthy events; consumer ${consumerCores.toFixed(2)} cores, event loop ${Math.round(100 * usage.eventLoopUtilization)}% busy, its delay p99 ${usage.loopDelayMs.p99.toFixed(1)} / max ${usage.loopDelayMs.max.toFixed(1)} ms)`,
    );
    const sharing = measured.sharingPoisonPartition;
    if (sharing.count > 0)
      say(
        `  ${"  of which on X's partition".padEnd(34)} p50 ${ms(sharing.p50)}  p99 ${ms(sharing.p99)}  (${sharing.count} events, handled in order behind X's)`,
      );
    say(`  ${'  raw kafkajs consumer, same events'.padEnd(34)} p50 ${ms(raw.p50)}  p99 ${ms(raw.p99)}; ${showMachineLoad(machine)}`);
    return result;
  } finally {
    await Promise.all([consumer.stop(), reference.stop()]);
    await relay.stop();
  }
}

/**
 * The slow-failing case: tenant X's handler takes this long to throw (a downstream timing out),
 * every attempt, at this rate. X's own partition is then busy most of the time; what is
 * measured is whether the other partitions wait for it (kafkajs' fetch rounds).
 */
const SLOW = { rate: 2, failAfterMs: 300 };

/**
 * The consumer half of `--only isolation`: for 100 and 1,000 events/s two cases side by side,
 * tenant X writing at that rate with a handler that succeeds, then the same with every X event
 * failing; then X's handler taking SLOW.failAfterMs to fail. A control with the healthy tenants
 * alone runs before and after each group of cases. Each case has its own consumer group.
 *
 * Two ratios per rate: failing X against the control without X (the target: p99 ≤ 1.5×), and
 * failing X against the same volume of healthy X. X's writes load the pipeline up to Kafka
 * (Postgres, the relay, the broker) on this shared 2-core machine whether its events fail or
 * not; the second ratio is what failing alone costs the others, which is the consumer's part.
 */
export async function consumerIsolationBench(ctx) {
  const seconds = ctx.quick ? 8 : 15;
  const warmupSeconds = 3;
  ctx.say(
    `## isolation, consumer: ${HEALTHY_TENANTS} healthy tenants at ${HEALTHY_RATE} events/s in total, latency commit → handler over ${seconds} s (after ${warmupSeconds} s of warm-up), one EventConsumer (non-blocking retries, defaults)`,
  );
  const controlCase = (n) => runCase(ctx, { label: `control ${n}: healthy tenants only`, poisonRate: 0, seconds, warmupSeconds });
  // A control before and after each pair of cases: a ratio is taken against the mean of the two
  // controls around it, so a machine whose load drifts during the run shows as two controls
  // that disagree (printed), not as a ratio.
  const controls = [await controlCase(1)];
  const cases = [];
  for (const poisonRate of ctx.slowOnly ? [] : ctx.rates) {
    const sameVolume = await runCase(ctx, { label: `+ tenant X at ${poisonRate}/s, succeeding`, poisonRate, seconds, warmupSeconds, poisonTenantFails: false });
    const c = await runCase(ctx, { label: `+ tenant X at ${poisonRate}/s, failing`, poisonRate, seconds, warmupSeconds });
    controls.push(await controlCase(controls.length + 1));
    const control = bracketingControl(controls.at(-2), controls.at(-1));
    c.control = control;
    c.p50Ratio = c.p50 / control.p50;
    c.p99Ratio = c.p99 / control.p99;
    c.rawReference.p99Ratio = c.rawReference.p99 / control.rawReference.p99;
    c.sameVolume = { p50: sameVolume.p50, p99: sameVolume.p99, rawReference: sameVolume.rawReference, machine: sameVolume.machine };
    c.p99RatioToSameVolume = c.p99 / sameVolume.p99;
    ctx.say(
      `  ${''.padEnd(34)} failing vs control (mean of the two around it, p99 ${control.p99.toFixed(1)} ms, the two ${control.spread.toFixed(2)}× apart): ` +
        `p50 ${c.p50Ratio.toFixed(2)}×, p99 ${c.p99Ratio.toFixed(2)}× (target p99 ≤ 1.5×; the raw consumer's p99 ${c.rawReference.p99Ratio.toFixed(2)}×); ` +
        `failing vs succeeding X: p99 ${c.p99RatioToSameVolume.toFixed(2)}×`,
    );
    cases.push(c);
  }
  const slow = await runCase(ctx, {
    label: `+ tenant X at ${SLOW.rate}/s, ${SLOW.failAfterMs} ms to fail`,
    poisonRate: SLOW.rate,
    seconds,
    warmupSeconds,
    failAfterMs: SLOW.failAfterMs,
  });
  controls.push(await controlCase(controls.length + 1));
  const control = bracketingControl(controls.at(-2), controls.at(-1));
  slow.control = control;
  slow.p99Ratio = slow.p99 / control.p99;
  const others = slow.onOtherPartitions.count > 0 ? slow.onOtherPartitions.p99 : undefined;
  slow.otherPartitionsP99Ratio = others === undefined ? undefined : others / control.p99;
  ctx.say(
    `  ${''.padEnd(34)} slow failing vs control (p99 ${control.p99.toFixed(1)} ms, the two ${control.spread.toFixed(2)}× apart): p99 ${slow.p99Ratio.toFixed(2)}× (all healthy tenants), ` +
      `${slow.otherPartitionsP99Ratio === undefined ? 'n/a' : slow.otherPartitionsP99Ratio.toFixed(2)}× (those not on X's partition)`,
  );
  ctx.say('');
  return { seconds, warmupSeconds, healthyTenants: HEALTHY_TENANTS, healthyRate: HEALTHY_RATE, controls, poisoned: cases, slow };
}

/** The control for the cases between two control runs: their mean p50 and p99 (the raw consumer's too), and how far apart their p99s are. */
function bracketingControl(before, after) {
  const mean = (f) => (f(before) + f(after)) / 2;
  return {
    p50: mean((c) => c.p50),
    p99: mean((c) => c.p99),
    rawReference: { p50: mean((c) => c.rawReference.p50), p99: mean((c) => c.rawReference.p99) },
    spread: Math.max(before.p99, after.p99) / Math.min(before.p99, after.p99),
  };
}
