import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isEventBusError } from '@eventbus/core';
import { describe, expect, it } from 'vitest';
import { EventMetrics, MAX_TOTAL_BUCKETS, type EventMetric, type EventStatus, type MetricsTier } from './event-metrics.js';
import { MAX_TRACKED_LATENCY_MS } from './latency-bins.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
// On a whole hour, so bucket edges of every default tier line up with it.
const T0 = Date.UTC(2024, 0, 1, 12, 0, 0);

/** mulberry32: a small seeded PRNG, so a failing case can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function metric(overrides: Partial<EventMetric> = {}): EventMetric {
  return {
    timestamp: T0,
    eventId: 'evt-1',
    eventType: 'product.created',
    tenantId: 'tenant-a',
    latencyMs: 10,
    retryCount: 0,
    status: 'success',
    ...overrides,
  };
}

/** An instance whose clock the test moves by hand. */
function metricsAt(start: number, tiers?: readonly MetricsTier[]) {
  const clock = { now: start };
  const metrics = new EventMetrics({ clock: () => clock.now, ...(tiers === undefined ? {} : { tiers }) });
  return { metrics, clock };
}

/** Nearest rank, straight from its definition: the smallest value with at least p % of all values at or below it. */
function exactPercentile(sorted: readonly number[], percent: number): number {
  const index = sorted.findIndex((_, i) => (i + 1) * 100 >= percent * sorted.length);
  return sorted[index]!;
}

function expectWithinResolution(reported: number, exact: number, label: string): void {
  const allowed = Math.max(0.5, 0.008 * exact) + 1e-9;
  expect(Math.abs(reported - exact), `${label}: reported ${reported}, exact ${exact}`).toBeLessThanOrEqual(allowed);
}

describe('EventMetrics percentiles against a brute-force computation', () => {
  const distributions: Record<string, (random: () => number) => number> = {
    // 0.1 ms to 100 s, evenly spread in log scale: crosses the exact and the logarithmic bins.
    'log-uniform': (random) => 0.1 * 10 ** (6 * random()),
    // Mostly fast with a slow tail, so p95 and p99 fall in a different place from p50.
    bimodal: (random) => (random() < 0.93 ? 5 + 15 * random() : 1000 + 9000 * random()),
    'whole ms around the linear edge': (random) => Math.floor(200 * random()),
  };

  for (const [name, draw] of Object.entries(distributions)) {
    for (const [seed, count] of [
      [1, 1],
      [2, 2],
      [3, 7],
      [4, 101],
      [5, 50_000],
    ] as const) {
      it(`${name}, ${count} records (seed ${seed})`, () => {
        const random = prng(seed);
        const { metrics } = metricsAt(T0 + 5 * MINUTE);
        const latencies: number[] = [];
        for (let i = 0; i < count; i++) {
          const latencyMs = draw(random);
          latencies.push(latencyMs);
          // Spread over the 4 minutes before now, so the percentiles merge many buckets.
          metrics.record(metric({ latencyMs, timestamp: T0 + MINUTE + Math.floor(random() * 4 * MINUTE) }));
        }
        const sorted = [...latencies].sort((a, b) => a - b);
        const stats = metrics.stats(4 * MINUTE + 30 * SECOND);

        expect(stats.totalEvents).toBe(count);
        expectWithinResolution(stats.p50Latency, exactPercentile(sorted, 50), 'p50');
        expectWithinResolution(stats.p95Latency, exactPercentile(sorted, 95), 'p95');
        expectWithinResolution(stats.p99Latency, exactPercentile(sorted, 99), 'p99');
        expect(stats.maxLatency).toBe(sorted[sorted.length - 1]);
        const mean = latencies.reduce((sum, value) => sum + value, 0) / count;
        expect(stats.averageLatency).toBeCloseTo(mean, 6);
      });
    }
  }

  it('is exact for whole-millisecond latencies below 128 ms', () => {
    const random = prng(42);
    const { metrics } = metricsAt(T0);
    const latencies = Array.from({ length: 10_000 }, () => Math.floor(128 * random()));
    for (const latencyMs of latencies) metrics.record(metric({ latencyMs }));
    const sorted = [...latencies].sort((a, b) => a - b);
    const stats = metrics.stats(MINUTE);
    expect([stats.p50Latency, stats.p95Latency, stats.p99Latency]).toEqual([50, 95, 99].map((p) => exactPercentile(sorted, p)));
  });

  it('reports the window maximum for percentiles above the tracked range', () => {
    const { metrics } = metricsAt(T0);
    for (let i = 0; i < 90; i++) metrics.record(metric({ latencyMs: 20 }));
    for (let i = 0; i < 10; i++) metrics.record(metric({ latencyMs: MAX_TRACKED_LATENCY_MS * (2 + i) }));
    const stats = metrics.stats(MINUTE);
    expect(stats.p50Latency).toBe(20);
    expect(stats.p95Latency).toBe(MAX_TRACKED_LATENCY_MS * 11);
    expect(stats.maxLatency).toBe(MAX_TRACKED_LATENCY_MS * 11);
  });

  it('reports zeros for an empty window', () => {
    const { metrics } = metricsAt(T0);
    expect(metrics.stats(MINUTE)).toMatchObject({
      totalEvents: 0,
      averageLatency: 0,
      p50Latency: 0,
      p99Latency: 0,
      throughput: 0,
      successRate: 1,
      retryRate: 0,
      dlqSize: 0,
    });
  });
});

describe('EventMetrics window', () => {
  it('drops records out as the window slides past them', () => {
    const { metrics, clock } = metricsAt(T0);
    for (let i = 0; i < 10; i++) metrics.record(metric({ latencyMs: 5 }));
    clock.now = T0 + 30 * SECOND;
    for (let i = 0; i < 4; i++) metrics.record(metric({ timestamp: clock.now, latencyMs: 500 }));

    expect(metrics.stats(MINUTE, T0 + 50 * SECOND).totalEvents).toBe(14);
    const later = metrics.stats(MINUTE, T0 + 70 * SECOND);
    expect(later.totalEvents).toBe(4);
    expect(later.p50Latency).toBe(500);
    expect(metrics.stats(MINUTE, T0 + 100 * SECOND).totalEvents).toBe(0);
    // A longer window, served by the coarser tiers, still holds all of them.
    expect(metrics.stats(HOUR, T0 + 100 * SECOND).totalEvents).toBe(14);
    expect(metrics.stats(24 * HOUR, T0 + 20 * HOUR).totalEvents).toBe(14);
    expect(metrics.stats(24 * HOUR, T0 + 25 * HOUR).totalEvents).toBe(0);
  });

  it('stays right after the rings wrap around many times', () => {
    const { metrics, clock } = metricsAt(T0);
    // One record per second for 3 hours: the 1 s ring wraps 36 times, the 1 min ring 3 times.
    // Latencies climb hour by hour, so a bucket reused without clearing would drag percentiles down.
    const latencyAt = (second: number) => 40 * Math.floor(second / 3600) + (second % 40);
    for (let second = 0; second < 3 * 3600; second++) {
      clock.now = T0 + second * SECOND;
      metrics.record(metric({ timestamp: clock.now, latencyMs: latencyAt(second) }));
    }
    const now = T0 + 3 * HOUR; // one second after the last record, on a bucket edge of every tier
    for (const [windowMs, expected] of [
      [MINUTE, 60],
      [5 * MINUTE, 300],
      [HOUR, 3600],
      [2 * HOUR, 7200],
      [24 * HOUR, 3 * 3600],
    ] as const) {
      const stats = metrics.stats(windowMs, now);
      expect(stats.totalEvents, `${windowMs} ms`).toBe(expected);
      const sorted = Array.from({ length: expected }, (_, i) => latencyAt(3 * 3600 - expected + i)).sort((a, b) => a - b);
      // Whole ms below 128, so exact.
      expect([stats.p50Latency, stats.p95Latency, stats.p99Latency], `${windowMs} ms`).toEqual([50, 95, 99].map((p) => exactPercentile(sorted, p)));
    }
  });

  it('ignores records older than the longest window and keeps late ones inside it', () => {
    const { metrics } = metricsAt(T0 + 25 * HOUR);
    metrics.record(metric({ timestamp: T0 })); // 25 h old
    metrics.record(metric({ timestamp: T0 + 23 * HOUR })); // 2 h old: only the 24 h tier reports it
    metrics.record(metric({ timestamp: T0 + 25 * HOUR - 10 * SECOND }));
    metrics.record(metric({ timestamp: T0 + 25 * HOUR - 20 * SECOND })); // out of order
    expect(metrics.stats(MINUTE).totalEvents).toBe(2);
    expect(metrics.stats(HOUR).totalEvents).toBe(2);
    expect(metrics.stats(24 * HOUR).totalEvents).toBe(3);
  });

  it('counts a record from the future as happening now, without displacing present records', () => {
    const { metrics, clock } = metricsAt(T0);
    metrics.record(metric({ timestamp: T0 + 7 * 24 * HOUR }));
    expect(metrics.stats(MINUTE).totalEvents).toBe(1);
    // Had it taken its future slot, the ring positions it maps to would refuse these records.
    for (let second = 1; second <= 400; second++) {
      clock.now = T0 + second * SECOND;
      metrics.record(metric({ timestamp: clock.now }));
    }
    // From T0 + 100 s to T0 + 400 s, both ends included: 301 records, none lost to the future one.
    expect(metrics.stats(5 * MINUTE).totalEvents).toBe(301);
  });

  it('rounds the window to whole buckets and says how much it covered', () => {
    const { metrics } = metricsAt(T0);
    const stats = metrics.stats(90 * MINUTE, T0 + 7 * MINUTE); // served by the 15 min tier
    expect(stats.coveredMs).toBeGreaterThanOrEqual(90 * MINUTE - 7.5 * MINUTE);
    expect(stats.coveredMs).toBeLessThanOrEqual(90 * MINUTE + 7.5 * MINUTE);
    expect(stats.coveredMs % (15 * MINUTE)).toBe(7 * MINUTE);
  });
});

describe('EventMetrics throughput and rates', () => {
  it('divides the records by the covered seconds', () => {
    const { metrics } = metricsAt(T0);
    for (let i = 0; i < 600; i++) metrics.record(metric({ timestamp: T0 - MINUTE + i * 100 }));
    const stats = metrics.stats(MINUTE);
    expect(stats.coveredMs).toBe(MINUTE);
    expect(stats.throughput).toBe(10);

    // Off a bucket edge the window covers 60.4 s: the same 600 records over that span.
    const offEdge = metrics.stats(MINUTE, T0 + 400);
    expect(offEdge.coveredMs).toBe(60_400);
    expect(offEdge.throughput).toBeCloseTo(600 / 60.4, 10);
  });

  it('computes success rate and retry rate over final outcomes only', () => {
    const { metrics } = metricsAt(T0);
    const record = (status: EventStatus, retryCount: number, times: number) => {
      for (let i = 0; i < times; i++) metrics.record(metric({ status, retryCount }));
    };
    record('success', 0, 6);
    record('success', 2, 2);
    record('dead_lettered', 5, 2);
    record('failed', 0, 3);
    record('failed', 1, 1);
    record('retried', 1, 4);
    const stats = metrics.stats(MINUTE);
    expect(stats.totalEvents).toBe(18);
    expect(stats.byStatus).toEqual({ success: 8, failed: 4, retried: 4, dead_lettered: 2 });
    expect(stats.successRate).toBe(8 / 10);
    expect(stats.retryRate).toBe(4 / 10);
    expect(stats.dlqSize).toBe(2);
  });

  it('reports the DLQ size provider instead of the window count when one is set', () => {
    const { metrics } = metricsAt(T0);
    metrics.record(metric({ status: 'dead_lettered' }));
    let tableSize = 1234;
    metrics.setDlqSizeProvider(() => tableSize);
    expect(metrics.stats(MINUTE).dlqSize).toBe(1234);
    tableSize = 1240;
    expect(metrics.stats(MINUTE).dlqSize).toBe(1240);
    metrics.setDlqSizeProvider(undefined);
    expect(metrics.stats(MINUTE).dlqSize).toBe(1);
  });

  it('forgets everything on reset', () => {
    const { metrics } = metricsAt(T0);
    metrics.record(metric());
    metrics.reset();
    expect(metrics.stats(24 * HOUR).totalEvents).toBe(0);
    metrics.record(metric());
    expect(metrics.stats(MINUTE).totalEvents).toBe(1);
  });
});

describe('EventMetrics memory', () => {
  it('keeps the same buckets and bytes however many records come in', () => {
    const { metrics, clock } = metricsAt(T0);
    const bucketsBefore = metrics.bucketCount;
    const bytesBefore = metrics.memoryBytes;
    const reused = metric();
    for (let i = 0; i < 1_000_000; i++) {
      clock.now = T0 + i * 37; // 10 hours of timestamps, so every tier's ring wraps
      reused.timestamp = clock.now;
      reused.latencyMs = i % 10_000;
      metrics.record(reused);
    }
    expect(metrics.bucketCount).toBe(bucketsBefore);
    expect(metrics.memoryBytes).toBe(bytesBefore);
    expect(metrics.memoryBytes).toBeLessThan(2.1 * 1024 * 1024);
  });

  it('retains no heap per record', () => {
    // Makes gc() reachable without --expose-gc on the test runner.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { metrics } = metricsAt(T0);
    const reused = metric();
    metrics.record(reused); // first use allocates nothing more, but warm the code up anyway
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1_000_000; i++) {
      reused.latencyMs = i % 5000;
      metrics.record(reused);
    }
    gc();
    const grownBytes = process.memoryUsage().heapUsed - before;
    // Keeping even one 8-byte number per record would add 8 MB.
    expect(grownBytes).toBeLessThan(1024 * 1024);
    expect(metrics.stats(MINUTE).totalEvents).toBe(1_000_001);
  });

  it('refuses tiers that would take more than MAX_TOTAL_BUCKETS buckets', () => {
    expect(() => new EventMetrics({ tiers: [{ bucketMs: SECOND, windowMs: MAX_TOTAL_BUCKETS * SECOND }] })).toThrow(/at most 1024 buckets/);
    expect(new EventMetrics({ tiers: [{ bucketMs: SECOND, windowMs: (MAX_TOTAL_BUCKETS - 1) * SECOND }] }).bucketCount).toBe(MAX_TOTAL_BUCKETS);
  });
});

describe('EventMetrics validation', () => {
  const invalidRecords: Record<string, unknown> = {
    'negative latency': metric({ latencyMs: -1 }),
    'NaN latency': metric({ latencyMs: Number.NaN }),
    'infinite latency': metric({ latencyMs: Number.POSITIVE_INFINITY }),
    'latency as a string': { ...metric(), latencyMs: '12' },
    'unknown status': { ...metric(), status: 'ok' },
    'missing status': { ...metric(), status: undefined },
    'fractional retryCount': metric({ retryCount: 1.5 }),
    'negative retryCount': metric({ retryCount: -1 }),
    'NaN timestamp': metric({ timestamp: Number.NaN }),
    'timestamp as a Date': { ...metric(), timestamp: new Date(T0) },
    'missing eventId': { ...metric(), eventId: undefined },
    'numeric eventType': { ...metric(), eventType: 7 },
    'null tenantId': { ...metric(), tenantId: null },
    'no metric at all': undefined,
    'a prototype-less object as status': { ...metric(), status: Object.create(null) },
  };

  for (const [name, input] of Object.entries(invalidRecords)) {
    it(`rejects ${name} with INVALID_EVENT and records nothing`, () => {
      const { metrics } = metricsAt(T0);
      let thrown: unknown;
      try {
        metrics.record(input as EventMetric);
      } catch (error) {
        thrown = error;
      }
      expect(isEventBusError(thrown, 'INVALID_EVENT'), String(thrown)).toBe(true);
      expect(metrics.stats(MINUTE).totalEvents).toBe(0);
    });
  }

  it('names the field at fault', () => {
    const { metrics } = metricsAt(T0);
    expect(() => metrics.record(metric({ latencyMs: -3 }))).toThrow('latencyMs must be a finite number >= 0, got -3');
  });

  const invalidTiers: Record<string, readonly MetricsTier[]> = {
    'no tiers': [],
    'a zero bucket': [{ bucketMs: 0, windowMs: MINUTE }],
    'a fractional bucket': [{ bucketMs: 0.5, windowMs: MINUTE }],
    'a window shorter than its bucket': [{ bucketMs: MINUTE, windowMs: SECOND }],
    'windows not growing': [
      { bucketMs: SECOND, windowMs: MINUTE },
      { bucketMs: MINUTE, windowMs: MINUTE },
    ],
    'a coarse bucket longer than the finer window': [
      { bucketMs: SECOND, windowMs: MINUTE },
      { bucketMs: HOUR, windowMs: 24 * HOUR },
    ],
  };

  for (const [name, tiers] of Object.entries(invalidTiers)) {
    it(`refuses ${name} with INVALID_CONFIG`, () => {
      expect(() => new EventMetrics({ tiers })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    });
  }

  it('refuses windows outside what the tiers hold', () => {
    const { metrics } = metricsAt(T0);
    for (const windowMs of [0, 999, 24 * HOUR + 1, Number.NaN]) {
      expect(() => metrics.stats(windowMs), String(windowMs)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
    expect(metrics.stats(SECOND).coveredMs).toBe(SECOND);
    expect(metrics.stats(24 * HOUR).coveredMs).toBe(24 * HOUR);
  });
});
