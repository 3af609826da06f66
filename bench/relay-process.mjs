// The relay drain's relay, in a process of its own, wired as apps/relay wires it (telemetry
// with the Prometheus reader, the backlog gauges' pool, the relay), minus the HTTP server
// and migrations. Run by run.mjs with `fork`: its RSS and CPU are then the relay's alone,
// not the bench process' with the baselines' leftovers and the writers' pool.
//
// argv: <connection string> <brokers, comma-separated> <topic prefix> <batch size> <rows>
// <rows> 0: the relay of the latency and isolation benches, which relays whatever comes until
// { stop } (no drain clock), answering { metrics } with { metrics: <its counters, CPU and event
// loop so far> } (relayMetricsSnapshot); <batch size> 0: the relay's default.
// BENCH_CREATE_TOPICS=false: the relay creates no topics (a row whose topic is missing is held).
// Run from bench/ it is the workspace relay; `--only installed-relay` copies it into an npm
// install of examples/order-service, where the same imports resolve to the installed packages.
// Sends { ready, relayModule, kafkajsPatch } once started (the drain clock starts; the other two
// say which relay and which kafkajs it runs, for the parent to check), then { done, seconds, cpuSeconds, peakRssMb, heap* } when it has
// published <rows> events. Then, on { idleSeconds }, waits that long with nothing to publish and
// answers { idleRssMb, idleRssFileMb, idleHeap*, idleExternalMb }; on { stop }, stops gracefully and exits.
// BENCH_ALLOC_PROFILE=1: V8's sampling heap profiler over the drain and over the idle wait, the
// functions that allocated most printed to stderr (bytes per event, bytes per second idle;
// BENCH_ALLOC_TOP of them, 25 by default).
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import pg from 'pg';
import { observeRelayGauges, OutboxRelay } from '@eventbus/relay';
import { kafkajsPatchRevision } from '@eventbus/kafka';
import { startTelemetry } from '@eventbus/telemetry';

const [connectionString, brokers, prefix, batchSize, rows] = process.argv.slice(2);
const expected = Number(rows);

/** Peak RSS of this process since it started (VmHWM: the kernel's high-water mark, no sampling gaps). */
function peakRssMb() {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'latin1'));
  return hwm ? Number(hwm[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

const telemetry = await startTelemetry({ serviceName: 'eventbus-relay-bench', prometheus: true, env: {} });
const relay = new OutboxRelay({
  connectionString,
  brokers: brokers.split(','),
  ...(Number(batchSize) > 0 ? { batchSize: Number(batchSize) } : {}),
  ...(process.env.BENCH_LANES ? { lanes: Number(process.env.BENCH_LANES) } : {}),
  kafkaIdempotent: process.env.BENCH_IDEMPOTENT !== 'false',
  createTopics: process.env.BENCH_CREATE_TOPICS !== 'false',
  routing: { prefix },
});
const metricsPool = new pg.Pool({ connectionString, max: 1 });
const stopGauges = observeRelayGauges({ relay, pool: metricsPool });

/**
 * What the parent of a relay that runs until { stop } reads of it: the relay's counters, its
 * published count per topic, and this process' CPU and event loop since it started (cumulative:
 * the parent subtracts two snapshots for a window).
 */
function relayMetricsSnapshot() {
  const m = relay.metrics;
  const cpu = process.cpuUsage();
  const { idle, active } = performance.eventLoopUtilization();
  return {
    published: m.published,
    publishedByTopic: [...m.publishedByTopic],
    publishFailures: m.publishFailures,
    heldBack: m.heldBack,
    deadLettered: m.deadLettered,
    transientFailures: m.transientFailures,
    batches: m.batches,
    batchRows: m.batchSize.sum,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    eventLoop: { idleMs: idle, activeMs: active },
  };
}

await relay.start();
if (expected === 0) {
  process.send({ ready: true, relayModule: import.meta.resolve('@eventbus/relay'), kafkajsPatch: kafkajsPatchRevision() ?? null });
  process.on('message', async (m) => {
    if (m.metrics) process.send({ metrics: relayMetricsSnapshot() });
    if (!m.stop) return;
    await relay.stop();
    stopGauges();
    await metricsPool.end();
    await telemetry.shutdown();
    process.exit(0);
  });
  await new Promise(() => {}); // relays until { stop }
}
const drainAllocations = await startAllocationProfile();
// The clock starts once the relay runs (connections and the boot self-test are not drain);
// what it published before this line (a batch at most) is left out of the count.
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const before = relay.metrics.published;
process.send({ ready: true, relayModule: import.meta.resolve('@eventbus/relay'), kafkajsPatch: kafkajsPatchRevision() ?? null });
// Done when the relay counted every event published (in process, free). Polling count(*) on
// the outbox instead cost a Postgres backend ~0.2 of a core (a scan over the drained rows'
// dead tuples every 50 ms), taken from the drain it measured.
// The V8 heap at the largest RSS sampled (every 100 ms): how much of the peak is the JS heap
// (live objects and V8's headroom) and how much buffers outside it (kafkajs and pg's Buffers).
let largest = process.memoryUsage();
let largestSpaces = getHeapSpaceStatistics();
let sampledAt = 0;
// BENCH_HEAP_SNAPSHOT=<dir>: a V8 heap snapshot there once half the rows are published (what
// the heap holds mid-drain; writing it pauses the relay for seconds, so not a drain to time).
let snapshotDue = process.env.BENCH_HEAP_SNAPSHOT ? before + expected / 2 : Number.POSITIVE_INFINITY;
while (relay.metrics.published < expected) {
  await new Promise((r) => setTimeout(r, 5));
  if (performance.now() - sampledAt >= 100) {
    sampledAt = performance.now();
    const m = process.memoryUsage();
    if (m.rss > largest.rss) {
      largest = m;
      largestSpaces = getHeapSpaceStatistics();
    }
  }
  if (relay.metrics.published >= snapshotDue) {
    snapshotDue = Number.POSITIVE_INFINITY;
    process.stderr.write(`relay process: heap snapshot ${writeHeapSnapshot(`${process.env.BENCH_HEAP_SNAPSHOT}/relay-${process.pid}.heapsnapshot`)}\n`);
  }
}
const seconds = (performance.now() - t0) / 1000;
await drainAllocations?.print('drain', expected - before, 'event');
const cpu = process.cpuUsage(cpu0);
// Report, then wait for the parent: the parent reads Postgres' CPU from the relay's backends,
// which end with the stop.
process.on('message', async (m) => {
  if (m.idleSeconds) {
    const idleAllocations = await startAllocationProfile();
    await new Promise((r) => setTimeout(r, m.idleSeconds * 1000));
    await idleAllocations?.print('idle', m.idleSeconds, 's');
    const usage = process.memoryUsage();
    // The file-backed part of RSS (node's binary and libraries, shared and clean) is a floor no
    // setting of the relay lowers; the anonymous part is the V8 heap, Buffers and malloc's arenas.
    const rssFile = /RssFile:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'latin1'));
    process.send({
      idle: true,
      idleRssMb: mb(usage.rss),
      idleRssFileMb: rssFile ? Number(rssFile[1]) / 1024 : null,
      idleHeapUsedMb: mb(usage.heapUsed),
      idleHeapTotalMb: mb(usage.heapTotal),
      idleExternalMb: mb(usage.external),
    });
    return;
  }
  await relay.stop();
  stopGauges();
  await metricsPool.end();
  await telemetry.shutdown();
  process.exit(0);
});
const mb = (bytes) => bytes / 2 ** 20;
process.send({
  done: true,
  seconds,
  drained: expected - before,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  peakRssMb: peakRssMb(),
  heapUsedMb: mb(largest.heapUsed),
  heapTotalMb: mb(largest.heapTotal),
  externalMb: mb(largest.external), // arrayBuffers (Node Buffers) included
  // Each V8 heap space's committed size at that sample: which space the heap's headroom is in.
  heapSpacesMb: Object.fromEntries(largestSpaces.filter((x) => x.space_size > 0).map((x) => [x.space_name, Math.round(mb(x.space_size))])),
});

/**
 * BENCH_ALLOC_PROFILE: starts V8's sampling heap profiler (every 16 KB allocated, garbage
 * included: what the collector has to handle, not what stays live); `print` stops it and
 * writes the 25 functions that allocated most, per `unit`.
 */
async function startAllocationProfile() {
  if (!process.env.BENCH_ALLOC_PROFILE) return undefined;
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  return {
    async print(window, count, unit) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      session.disconnect();
      const byFunction = new Map();
      const frame = ({ functionName, url, lineNumber }) => `${functionName || '(anonymous)'} ${url.split('/').slice(-3).join('/')}:${lineNumber + 1}`;
      // A builtin (no url: `map`, `keys`, `next`) is named with the function that called it,
      // which is the one to change.
      const walk = (node, caller) => {
        const where = node.callFrame.url === '' && caller ? `${frame(node.callFrame)} <- ${caller}` : frame(node.callFrame);
        if (node.selfSize > 0) byFunction.set(where, (byFunction.get(where) ?? 0) + node.selfSize);
        for (const child of node.children) walk(child, node.callFrame.url === '' ? caller : frame(node.callFrame));
      };
      walk(profile.head, undefined);
      const total = [...byFunction.values()].reduce((a, b) => a + b, 0);
      const lines = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.BENCH_ALLOC_TOP) || 25);
      process.stderr.write(`relay process, ${window}: ${(total / count).toFixed(0)} B allocated per ${unit}\n`);
      for (const [where, bytes] of lines) process.stderr.write(`  ${(bytes / count).toFixed(0).padStart(6)} B/${unit}  ${where}\n`);
    },
  };
}
