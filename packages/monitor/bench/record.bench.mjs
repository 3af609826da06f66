// Records 1,000,000 metrics through the package's API and, in the same run, does the naive
// thing with the same objects: push them into an array, then filter and sort for percentiles.
// Build first, then: node --expose-gc packages/monitor/bench/record.bench.mjs
import { EventMetrics, getEventBusStats, recordEventMetric } from '../dist/index.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with: node --expose-gc packages/monitor/bench/record.bench.mjs');
  process.exit(1);
}

const COUNT = 1_000_000;
const WARMUP = 20_000;
const WINDOW_MS = 60 * 60 * 1000;
// 70 % success, 10 % each of the others.
const STATUSES = [...Array(7).fill('success'), 'failed', 'retried', 'dead_lettered'];

/** mulberry32, so every run records the same data. */
function prng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeMetrics(count, seed, now) {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i) => ({
    // Spread over the last 10 minutes, inside the 1 h window both sides report on.
    timestamp: now - Math.floor(random() * 10 * 60 * 1000),
    eventId: `evt-${i}`,
    eventType: 'order.placed',
    tenantId: `tenant-${i % 50}`,
    // Log-normal-ish: median about 20 ms, a tail into seconds.
    latencyMs: Math.exp(3 + 1.2 * (random() + random() + random() - 1.5) * 2),
    retryCount: random() < 0.1 ? 1 + Math.floor(random() * 3) : 0,
    status: STATUSES[Math.floor(random() * STATUSES.length)],
  }));
}

/**
 * Heap plus ArrayBuffer backing stores, which is where the monitor's typed arrays live. Waits
 * between collections because V8 frees dead backing stores on a background thread.
 */
async function retainedBytes() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

const MB = 1024 * 1024;

function naiveStats(records, windowMs, now) {
  const since = now - windowMs;
  const latencies = records
    .filter((m) => m.timestamp > since)
    .map((m) => m.latencyMs)
    .sort((a, b) => a - b);
  const at = (p) => latencies[Math.max(0, Math.ceil((p / 100) * latencies.length) - 1)];
  return { totalEvents: latencies.length, p50Latency: at(50), p95Latency: at(95), p99Latency: at(99) };
}

// Each side runs inside a function: V8 accounts array growth in top-level module code oddly.
function warmUp(now) {
  const warm = makeMetrics(WARMUP, 2, now);
  const instance = new EventMetrics();
  for (const m of warm) instance.record(m);
  instance.stats(WINDOW_MS);
  const store = [];
  for (const m of warm) store.push(m);
  naiveStats(store, WINDOW_MS, now);
}

/** The monitor: the shared instance is created by the first record, so its fixed buffers count. */
function runMonitor(records, now) {
  let started = performance.now();
  for (let i = 0; i < records.length; i++) recordEventMetric(records[i]);
  const recordMs = performance.now() - started;
  started = performance.now();
  const stats = getEventBusStats(WINDOW_MS, now);
  return { recordMs, statsMs: performance.now() - started, stats };
}

/**
 * The baseline: keep every record, sort on demand. The objects already exist, so only the array
 * of references counts; a store that owned its records would keep the objects alive as well.
 */
function runBaseline(records, now) {
  let started = performance.now();
  const store = [];
  for (let i = 0; i < records.length; i++) store.push(records[i]);
  const recordMs = performance.now() - started;
  started = performance.now();
  const stats = naiveStats(store, WINDOW_MS, now);
  return { recordMs, statsMs: performance.now() - started, stats, store };
}

const now = Date.now();
const metrics = makeMetrics(COUNT, 1, now);
// Warm both code paths up on other data, so neither measurement pays for the JIT alone.
warmUp(now);

const monitorBefore = await retainedBytes();
const monitor = runMonitor(metrics, now);
const monitorGrowth = (await retainedBytes()) - monitorBefore;

const baselineBefore = await retainedBytes();
const baseline = runBaseline(metrics, now);
const baselineGrowth = (await retainedBytes()) - baselineBefore;

const round = (value, digits = 1) => Number(value.toFixed(digits));
console.log(`node ${process.version}, ${COUNT.toLocaleString('en')} records, stats over ${WINDOW_MS / 60000} min`);
console.table({
  '@eventbus/monitor': {
    'record ms': round(monitor.recordMs),
    'stats ms': round(monitor.statsMs, 2),
    'total ms': round(monitor.recordMs + monitor.statsMs),
    'retained MB': round(monitorGrowth / MB, 2),
    p50: round(monitor.stats.p50Latency, 2),
    p99: round(monitor.stats.p99Latency, 2),
  },
  'array + sort': {
    'record ms': round(baseline.recordMs),
    'stats ms': round(baseline.statsMs, 2),
    'total ms': round(baseline.recordMs + baseline.statsMs),
    'retained MB': round(baselineGrowth / MB, 2),
    p50: round(baseline.stats.p50Latency, 2),
    p99: round(baseline.stats.p99Latency, 2),
  },
});
const ratio = (a, b) => `${(a / b).toFixed(1)}x`;
console.log(
  `array + sort vs monitor: time ${ratio(baseline.recordMs + baseline.statsMs, monitor.recordMs + monitor.statsMs)},` +
    ` retained memory ${ratio(baselineGrowth, monitorGrowth)}`,
);
if (monitor.stats.totalEvents !== baseline.stats.totalEvents) {
  console.error(`count mismatch: monitor ${monitor.stats.totalEvents}, baseline ${baseline.stats.totalEvents}`);
  process.exitCode = 1;
}
// Keeps the baseline's array alive until its memory has been measured.
baseline.store.length = 0;
