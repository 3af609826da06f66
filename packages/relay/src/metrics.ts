/**
 * The relay's own counters, cheap to update on the hot path. The app renders them in
 * Prometheus text format (see `renderPrometheus`); label sets are bounded (topic, not tenant
 * or event id).
 */
export class RelayMetrics {
  published = 0;
  /** Rows Kafka refused (row-level failures), each retry counted. */
  publishFailures = 0;
  deadLettered = 0;
  /** Batches rolled back because the broker or database was unavailable. */
  transientFailures = 0;
  batches = 0;
  readonly publishedByTopic = new Map<string, number>();
  /** Commit-to-ack latency: from the event's created_at to Kafka's acknowledgement. */
  readonly publishLatency = new Histogram([1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000]);
  readonly batchSize = new Histogram([1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]);
}

/** A fixed-bucket histogram (cumulative buckets, as Prometheus expects). */
export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array(bounds.length + 1).fill(0);
  }
  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}
