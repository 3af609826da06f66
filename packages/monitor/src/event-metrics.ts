import { EventBusError, invalidConfig } from '@eventbus/core';
import { BIN_VALUES, LATENCY_BIN_COUNT, OVERFLOW_BIN, latencyBin } from './latency-bins.js';

/**
 * What happened to one delivery attempt of an event:
 * - `success`: the handler succeeded, possibly after retries (`retryCount` says how many). Final.
 * - `failed`: an attempt failed and the event will be retried. Not final.
 * - `retried`: a retry of the event was started or scheduled. Not final.
 * - `dead_lettered`: retries ran out or the error was non-retriable; the event went to the DLQ. Final.
 * A failure that will not be retried is reported as `dead_lettered`, never as `failed`.
 */
export type EventStatus = 'success' | 'failed' | 'retried' | 'dead_lettered';

/** One observation: the argument of `recordEventMetric`. */
export interface EventMetric {
  /** When it happened, ms since the epoch: it picks the time bucket, not the time of the call. */
  timestamp: number;
  // eventId, eventType and tenantId are checked but not aggregated: a series per id, type or
  // tenant would make memory grow with their number, which this module promises not to do.
  eventId: string;
  eventType: string;
  tenantId: string;
  /** Finite and >= 0; percentiles resolve it to max(0.5 ms, 0.8 %). */
  latencyMs: number;
  /** Retries before this attempt: 0 on the first attempt. */
  retryCount: number;
  status: EventStatus;
}

/** Aggregates over a window; every rate is a fraction from 0 to 1. */
export interface EventBusStats {
  /** Records in the window, of every status: an event that failed twice, then succeeded, counts 3 times. */
  totalEvents: number;
  /** Exact mean latency of those records, ms (from a running sum, not the histogram); 0 when empty. */
  averageLatency: number;
  /** Nearest-rank percentiles of latency, ms, within max(0.5 ms, 0.8 %) of the exact ones; 0 when empty. */
  p50Latency: number;
  p95Latency: number;
  p99Latency: number;
  /** Exact largest latency in the window, ms; 0 when empty. */
  maxLatency: number;
  /**
   * success / (success + dead_lettered): of the events that reached a final outcome in the window,
   * the share that succeeded. `failed` and `retried` are not outcomes (the event may still succeed),
   * so they do not count. 1 when nothing finished; `byStatus.failed` then shows events stuck in retries.
   */
  successRate: number;
  /** Of the same final outcomes, the share with retryCount > 0 (events that needed a retry); 0 when none. */
  retryRate: number;
  /** totalEvents per second of `coveredMs`. */
  throughput: number;
  /**
   * The DLQ size provider's answer when one is set (the real DLQ size); otherwise the number of
   * `dead_lettered` records in the window, i.e. events sent to the DLQ lately, not its current size.
   */
  dlqSize: number;
  /** Records in the window per status. */
  byStatus: Record<EventStatus, number>;
  /** The span actually summed: the requested window rounded to whole buckets, so within half a bucket of it. */
  coveredMs: number;
}

/** One time resolution: `windowMs` of history kept in buckets `bucketMs` wide. */
export interface MetricsTier {
  bucketMs: number;
  windowMs: number;
}

/** Construction options; all optional. */
export interface EventMetricsOptions {
  /**
   * Finest first, with growing windows; a query is served by the first tier whose window covers it,
   * so its edges are exact to that tier's bucket. Default DEFAULT_TIERS.
   */
  tiers?: readonly MetricsTier[];
  /** Decides which records are too old and caps future timestamps; injected by tests. Default Date.now. */
  clock?: () => number;
  /** See `EventMetrics.setDlqSizeProvider`. */
  dlqSizeProvider?: () => number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** 1 s buckets for windows up to 5 min, 1 min up to 1 h, 15 min up to 24 h: 459 buckets, about 2 MB. */
export const DEFAULT_TIERS: readonly MetricsTier[] = Object.freeze([
  Object.freeze({ bucketMs: 1000, windowMs: 5 * MINUTE }),
  Object.freeze({ bucketMs: MINUTE, windowMs: HOUR }),
  Object.freeze({ bucketMs: 15 * MINUTE, windowMs: 24 * HOUR }),
]);

/** Cap on buckets over all tiers, so an instance never holds more than about 4.5 MB. */
export const MAX_TOTAL_BUCKETS = 1024;

// Per-bucket counters, stored flat (FIELDS numbers per bucket). Status counts come first so a
// status index doubles as the field index.
const SUCCESS = 0;
const FAILED = 1;
const RETRIED = 2;
const DEAD_LETTERED = 3;
const RETRIED_OUTCOMES = 4;
const LATENCY_SUM = 5;
const LATENCY_MAX = 6;
const FIELDS = 8; // 7 used; padded to 8 so a bucket's counters are 64 bytes, one cache line

function statusIndex(status: unknown): number {
  switch (status) {
    case 'success':
      return SUCCESS;
    case 'failed':
      return FAILED;
    case 'retried':
      return RETRIED;
    case 'dead_lettered':
      return DEAD_LETTERED;
    default:
      return -1;
  }
}

/**
 * A ring of time buckets, each with counters and a whole latency histogram. A bucket is reused
 * when the clock comes round to its position again, so memory is fixed at construction.
 */
class BucketRing {
  readonly capacity: number;
  /** Which time slot (timestamp / bucketMs, floored) each position holds; -1 for never used. */
  private readonly slots: Float64Array;
  private readonly counters: Float64Array;
  // Uint32 per bin: overflowing it needs 4.3e9 records of one latency bin in one bucket.
  private readonly histograms: Uint32Array;

  constructor(
    readonly bucketMs: number,
    readonly windowMs: number,
  ) {
    // One more than the window needs, for the bucket still filling at its newer end.
    this.capacity = Math.ceil(windowMs / bucketMs) + 1;
    this.slots = new Float64Array(this.capacity).fill(-1);
    this.counters = new Float64Array(this.capacity * FIELDS);
    this.histograms = new Uint32Array(this.capacity * LATENCY_BIN_COUNT);
  }

  get bytes(): number {
    return this.slots.byteLength + this.counters.byteLength + this.histograms.byteLength;
  }

  add(at: number, status: number, retriedOutcome: number, latencyMs: number, bin: number): void {
    const slot = Math.floor(at / this.bucketMs);
    const position = slot % this.capacity;
    const held = this.slots[position]!;
    if (held !== slot) {
      // The position already holds a newer slot: this record is older than the ring's window.
      if (held > slot) return;
      this.slots[position] = slot;
      this.counters.fill(0, position * FIELDS, (position + 1) * FIELDS);
      this.histograms.fill(0, position * LATENCY_BIN_COUNT, (position + 1) * LATENCY_BIN_COUNT);
    }
    const base = position * FIELDS;
    const counters = this.counters;
    counters[base + status]! += 1;
    counters[base + RETRIED_OUTCOMES]! += retriedOutcome;
    counters[base + LATENCY_SUM]! += latencyMs;
    if (latencyMs > counters[base + LATENCY_MAX]!) counters[base + LATENCY_MAX] = latencyMs;
    this.histograms[position * LATENCY_BIN_COUNT + bin]! += 1;
  }

  /** Adds the buckets of slots `firstSlot`..`lastSlot` into `totals` and `histogram`. */
  sumInto(firstSlot: number, lastSlot: number, totals: Float64Array, histogram: Float64Array): void {
    for (let slot = Math.max(firstSlot, lastSlot - this.capacity + 1); slot <= lastSlot; slot++) {
      const position = slot % this.capacity;
      if (this.slots[position] !== slot) continue; // no record fell in that slot
      const base = position * FIELDS;
      for (let field = SUCCESS; field <= LATENCY_SUM; field++) totals[field]! += this.counters[base + field]!;
      totals[LATENCY_MAX] = Math.max(totals[LATENCY_MAX]!, this.counters[base + LATENCY_MAX]!);
      const offset = position * LATENCY_BIN_COUNT;
      for (let bin = 0; bin < LATENCY_BIN_COUNT; bin++) histogram[bin]! += this.histograms[offset + bin]!;
    }
  }

  reset(): void {
    this.slots.fill(-1);
    this.counters.fill(0);
    this.histograms.fill(0);
  }
}

/**
 * Sliding-window event metrics in fixed memory: every record is added to one bucket per tier
 * (a few counters and a latency histogram), and stats sum the buckets a window spans.
 * Recording allocates nothing; memory is set by the tiers (`memoryBytes`) and never grows.
 */
export class EventMetrics {
  private readonly rings: readonly BucketRing[];
  private readonly clock: () => number;
  /** Records older than this, by the clock, are ignored: no tier could report them. */
  readonly maxWindowMs: number;
  /** Shortest window `stats` accepts: one bucket of the finest tier. */
  readonly minWindowMs: number;
  private readonly totals = new Float64Array(FIELDS);
  private readonly histogram = new Float64Array(LATENCY_BIN_COUNT);
  private dlqSizeProvider: (() => number) | undefined;

  constructor(options: EventMetricsOptions = {}) {
    const tiers = options.tiers ?? DEFAULT_TIERS;
    validateTiers(tiers);
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw invalidConfig('clock', 'a function returning ms since the epoch', options.clock);
    }
    this.rings = tiers.map((tier) => new BucketRing(tier.bucketMs, tier.windowMs));
    this.clock = options.clock ?? Date.now;
    this.maxWindowMs = tiers[tiers.length - 1]!.windowMs;
    this.minWindowMs = tiers[0]!.bucketMs;
    this.setDlqSizeProvider(options.dlqSizeProvider);
  }

  /** Buckets over all tiers; fixed at construction, whatever the traffic. */
  get bucketCount(): number {
    return this.rings.reduce((sum, ring) => sum + ring.capacity, 0);
  }

  /** Bytes of every typed array this instance holds, measured on the arrays themselves. */
  get memoryBytes(): number {
    return this.rings.reduce((sum, ring) => sum + ring.bytes, this.totals.byteLength + this.histogram.byteLength);
  }

  /**
   * Adds one observation. Throws EventBusError INVALID_EVENT on a malformed one; ignores one older
   * than `maxWindowMs`; counts one from the future (clock skew) as happening now.
   */
  record(metric: EventMetric): void {
    if (typeof metric !== 'object' || metric === null) throw invalidEvent('the metric', 'an object', metric);
    const { timestamp, latencyMs, retryCount, status } = metric;
    const statusField = statusIndex(status);
    if (statusField < 0) throw invalidEvent('status', '"success", "failed", "retried" or "dead_lettered"', status);
    if (typeof latencyMs !== 'number' || !(latencyMs >= 0 && latencyMs < Infinity)) {
      throw invalidEvent('latencyMs', 'a finite number >= 0', latencyMs);
    }
    if (!Number.isInteger(retryCount) || retryCount < 0) throw invalidEvent('retryCount', 'an integer >= 0', retryCount);
    if (!Number.isFinite(timestamp) || timestamp < 0) throw invalidEvent('timestamp', 'ms since the epoch', timestamp);
    if (typeof metric.eventId !== 'string') throw invalidEvent('eventId', 'a string', metric.eventId);
    if (typeof metric.eventType !== 'string') throw invalidEvent('eventType', 'a string', metric.eventType);
    if (typeof metric.tenantId !== 'string') throw invalidEvent('tenantId', 'a string', metric.tenantId);

    const now = this.clock();
    if (timestamp <= now - this.maxWindowMs) return;
    // A future timestamp would otherwise take a bucket position ahead of time and make the ring
    // drop the present records that land on it.
    const at = Math.min(timestamp, now);
    const retriedOutcome = retryCount > 0 && (statusField === SUCCESS || statusField === DEAD_LETTERED) ? 1 : 0;
    const bin = latencyBin(latencyMs);
    const rings = this.rings;
    for (let i = 0; i < rings.length; i++) rings[i]!.add(at, statusField, retriedOutcome, latencyMs, bin);
  }

  /**
   * Stats over the last `windowMs` before `now`, served by the finest tier whose window covers it.
   * Throws EventBusError INVALID_CONFIG when `windowMs` is outside minWindowMs..maxWindowMs.
   */
  stats(windowMs: number, now: number = this.clock()): EventBusStats {
    if (typeof windowMs !== 'number' || !(windowMs >= this.minWindowMs && windowMs <= this.maxWindowMs)) {
      throw invalidConfig('windowMs', `a number of ms from ${this.minWindowMs} to ${this.maxWindowMs}`, windowMs);
    }
    if (!Number.isFinite(now)) throw invalidConfig('now', 'ms since the epoch', now);
    const ring = this.rings.find((candidate) => candidate.windowMs >= windowMs)!;
    const lastSlot = Math.floor(now / ring.bucketMs);
    // Rounding the start to the nearest bucket edge keeps the covered span within half a bucket
    // of the request; validateTiers guarantees the span is at least half a bucket.
    const firstSlot = Math.min(lastSlot, Math.round((now - windowMs) / ring.bucketMs));
    const coveredMs = now - firstSlot * ring.bucketMs;

    const totals = this.totals.fill(0);
    const histogram = this.histogram.fill(0);
    ring.sumInto(firstSlot, lastSlot, totals, histogram);

    const success = totals[SUCCESS]!;
    const deadLettered = totals[DEAD_LETTERED]!;
    const totalEvents = success + totals[FAILED]! + totals[RETRIED]! + deadLettered;
    const outcomes = success + deadLettered;
    const maxLatency = totals[LATENCY_MAX]!;
    const [p50Latency, p95Latency, p99Latency] = percentiles(histogram, totalEvents, maxLatency);
    return {
      totalEvents,
      averageLatency: totalEvents === 0 ? 0 : totals[LATENCY_SUM]! / totalEvents,
      p50Latency,
      p95Latency,
      p99Latency,
      maxLatency,
      successRate: outcomes === 0 ? 1 : success / outcomes,
      retryRate: outcomes === 0 ? 0 : totals[RETRIED_OUTCOMES]! / outcomes,
      throughput: totalEvents / (coveredMs / 1000),
      dlqSize: this.dlqSizeProvider === undefined ? deadLettered : this.dlqSizeProvider(),
      byStatus: { success, failed: totals[FAILED]!, retried: totals[RETRIED]!, dead_lettered: deadLettered },
      coveredMs,
    };
  }

  /**
   * Makes `stats().dlqSize` report the real DLQ size. Called on every `stats`, so it must be
   * synchronous and cheap: return a count the process refreshes on its own schedule. `undefined`
   * goes back to counting dead_lettered records in the window.
   */
  setDlqSizeProvider(provider: (() => number) | undefined): void {
    if (provider !== undefined && typeof provider !== 'function') {
      throw invalidConfig('dlqSizeProvider', 'a function returning a number, or undefined', provider);
    }
    this.dlqSizeProvider = provider;
  }

  /** Forgets every record; keeps the tiers, clock and DLQ size provider (configuration, not data). */
  reset(): void {
    for (const ring of this.rings) ring.reset();
  }
}

const PERCENTS = [50, 95, 99] as const;

/** Nearest rank: the smallest recorded value with at least p % of the records at or below it. */
function percentiles(histogram: Float64Array, count: number, maxLatency: number): [number, number, number] {
  const found: [number, number, number] = [0, 0, 0];
  if (count === 0) return found;
  let next = 0;
  // Integer arithmetic for ceil(p × count / 100): a float product can land just above an integer.
  let rank = Math.floor((PERCENTS[next]! * count + 99) / 100);
  let cumulative = 0;
  for (let bin = 0; bin < LATENCY_BIN_COUNT; bin++) {
    cumulative += histogram[bin]!;
    while (cumulative >= rank) {
      // The true value is <= the max, so capping a bin's midpoint there only moves it closer.
      found[next] = bin === OVERFLOW_BIN ? maxLatency : Math.min(BIN_VALUES[bin]!, maxLatency);
      if (++next === PERCENTS.length) return found;
      rank = Math.floor((PERCENTS[next]! * count + 99) / 100);
    }
  }
  return found;
}

function validateTiers(tiers: readonly MetricsTier[]): void {
  if (!Array.isArray(tiers) || tiers.length === 0) throw invalidConfig('tiers', 'a non-empty array', tiers);
  let totalBuckets = 0;
  tiers.forEach((tier, i) => {
    const { bucketMs, windowMs } = tier;
    if (!Number.isInteger(bucketMs) || bucketMs < 1) {
      throw invalidConfig(`tiers[${i}].bucketMs`, 'an integer number of ms >= 1', bucketMs);
    }
    if (!Number.isInteger(windowMs) || windowMs < bucketMs) {
      throw invalidConfig(`tiers[${i}].windowMs`, `an integer number of ms >= bucketMs (${bucketMs})`, windowMs);
    }
    const previous = tiers[i - 1];
    if (previous !== undefined && windowMs <= previous.windowMs) {
      throw invalidConfig(`tiers[${i}].windowMs`, `more than the previous tier's (${previous.windowMs})`, windowMs);
    }
    // The windows this tier serves are longer than the previous tier's window, so this keeps
    // each of them at least one bucket long.
    if (previous !== undefined && bucketMs > previous.windowMs) {
      throw invalidConfig(`tiers[${i}].bucketMs`, `at most the previous tier's window (${previous.windowMs})`, bucketMs);
    }
    totalBuckets += Math.ceil(windowMs / bucketMs) + 1;
  });
  if (totalBuckets > MAX_TOTAL_BUCKETS) {
    throw invalidConfig('tiers', `at most ${MAX_TOTAL_BUCKETS} buckets in all (windowMs / bucketMs + 1 per tier)`, totalBuckets);
  }
}

function invalidEvent(field: string, expected: string, got: unknown): EventBusError {
  // Object.prototype.toString, because String() throws on objects without a prototype.
  const shown = typeof got === 'string' ? JSON.stringify(got) : typeof got === 'object' && got !== null ? Object.prototype.toString.call(got) : String(got);
  return new EventBusError('INVALID_EVENT', `recordEventMetric: ${field} must be ${expected}, got ${shown}`, {
    details: { field, expected },
  });
}
