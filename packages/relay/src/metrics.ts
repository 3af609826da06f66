import { metrics, type Attributes, type Counter, type Histogram as OtelHistogram, type Meter } from '@opentelemetry/api';
import { LATENCY_BUCKETS_MS, METRIC, METRIC_LABEL } from '@eventbus/core';

/** The meter name of the relay's instruments. */
export const RELAY_METER = '@eventbus/relay';

/** The relay's plain counters, each mirrored into an OpenTelemetry counter of the same meaning. */
type CountName = 'published' | 'publishFailures' | 'heldBack' | 'deadLettered' | 'transientFailures' | 'batches' | 'kafkaFailovers';

const COUNTERS: Record<CountName, { name: string; description: string }> = {
  published: { name: 'eventbus.relay.published', description: 'Events acknowledged by Kafka and committed.' },
  publishFailures: { name: 'eventbus.relay.publish_failures', description: 'Row-level publish failures (Kafka refused the message), each retry counted.' },
  heldBack: {
    name: 'eventbus.relay.held_back',
    description: 'Rows put back in the outbox without a send because Kafka said their topic does not exist (a topic hold).',
  },
  deadLettered: { name: 'eventbus.relay.dead_lettered', description: 'Rows moved to the DLQ table after their retries.' },
  transientFailures: { name: 'eventbus.relay.transient_failures', description: 'Batches rolled back because Kafka or Postgres was unavailable.' },
  batches: { name: 'eventbus.relay.batches', description: 'Claimed batches committed.' },
  kafkaFailovers: {
    name: 'eventbus.relay.kafka_failovers',
    description: 'Times a lane released its shards to other instances because it could not reach Kafka.',
  },
};

/**
 * The relay's counters, cheap to update on the hot path (`metrics.published++`). Each
 * field is an accessor whose setter forwards the increment to an OpenTelemetry counter on
 * the meter given at construction (default: the global provider's, so an app starts its
 * MeterProvider before it creates the relay); the relay loop needs no OTel code of its own.
 * Label sets stay bounded: no tenant, no event id.
 */
export class RelayMetrics {
  /** Published per topic, for embedders that read it in process (the OTel counter `eventbus.events.published` has topic and type). */
  readonly publishedByTopic = new Map<string, number>();
  /** Commit-to-ack latency: from the event's created_at to Kafka's acknowledgement, ms. */
  readonly publishLatency: Histogram;
  readonly batchSize: Histogram;
  private readonly counts: Record<CountName, number> = {
    published: 0,
    publishFailures: 0,
    heldBack: 0,
    deadLettered: 0,
    transientFailures: 0,
    batches: 0,
    kafkaFailovers: 0,
  };
  private readonly counters: Record<CountName, Counter>;
  private readonly eventsFailed: Counter;
  private readonly eventsDeadLettered: Counter;

  constructor(meter: Meter = metrics.getMeter(RELAY_METER)) {
    this.counters = Object.fromEntries(
      Object.entries(COUNTERS).map(([key, c]) => [key, meter.createCounter(c.name, { description: c.description })]),
    ) as Record<CountName, Counter>;
    // Every counter shows from the first scrape at 0, so rate() and alerts have a series before anything happens.
    for (const counter of Object.values(this.counters)) counter.add(0);
    this.eventsFailed = meter.createCounter(METRIC.eventsFailed, { description: 'Attempts that failed and will be retried, by stage and event type.' });
    this.eventsDeadLettered = meter.createCounter(METRIC.eventsDeadLettered, { description: 'Events moved to a DLQ, by stage and event type.' });
    this.publishLatency = new Histogram(
      LATENCY_BUCKETS_MS,
      meter.createHistogram('eventbus.relay.publish_latency_ms', {
        description: 'Commit (event created_at) to Kafka acknowledgement, ms.',
        unit: 'ms',
        advice: { explicitBucketBoundaries: [...LATENCY_BUCKETS_MS] },
      }),
    );
    const batchBounds = [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];
    this.batchSize = new Histogram(
      batchBounds,
      meter.createHistogram('eventbus.relay.batch_size', { description: 'Rows per claimed batch.', advice: { explicitBucketBoundaries: batchBounds } }),
    );
  }

  get published(): number {
    return this.counts.published;
  }
  set published(value: number) {
    this.bump('published', value);
  }
  /** Rows Kafka refused (row-level failures), each retry counted. */
  get publishFailures(): number {
    return this.counts.publishFailures;
  }
  set publishFailures(value: number) {
    this.bump('publishFailures', value);
  }
  /** Rows put back without a send while their topic was held (Kafka said it does not exist). */
  get heldBack(): number {
    return this.counts.heldBack;
  }
  set heldBack(value: number) {
    this.bump('heldBack', value);
  }
  get deadLettered(): number {
    return this.counts.deadLettered;
  }
  set deadLettered(value: number) {
    this.bump('deadLettered', value);
  }
  /** Batches rolled back because the broker or database was unavailable. */
  get transientFailures(): number {
    return this.counts.transientFailures;
  }
  set transientFailures(value: number) {
    this.bump('transientFailures', value);
  }
  get batches(): number {
    return this.counts.batches;
  }
  set batches(value: number) {
    this.bump('batches', value);
  }
  /** Times a lane released its shards to other instances because its publishes kept failing (`kafkaFailoverMs`). */
  get kafkaFailovers(): number {
    return this.counts.kafkaFailovers;
  }
  set kafkaFailovers(value: number) {
    this.bump('kafkaFailovers', value);
  }

  /** A row Kafka refused that will be retried: `publishFailures++` plus `eventbus.events.failed{stage="relay", event_type}`. */
  recordPublishFailure(eventType: string): void {
    this.publishFailures++;
    this.eventsFailed.add(1, { [METRIC_LABEL.stage]: 'relay', [METRIC_LABEL.eventType]: eventType });
  }

  /** A row moved to the DLQ table: `deadLettered++` plus `eventbus.events.dead_lettered{stage="relay", event_type}`. */
  recordDeadLettered(eventType: string): void {
    this.deadLettered++;
    this.eventsDeadLettered.add(1, { [METRIC_LABEL.stage]: 'relay', [METRIC_LABEL.eventType]: eventType });
  }

  private bump(name: CountName, value: number): void {
    const delta = value - this.counts[name];
    this.counts[name] = value;
    // Counters only go up; a caller resetting a field changes the in-process number only.
    if (delta > 0) this.counters[name].add(delta);
  }
}

/** A fixed-bucket histogram (cumulative buckets, as Prometheus expects), mirrored into an OpenTelemetry histogram when given one. */
export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(
    readonly bounds: readonly number[],
    private readonly instrument?: OtelHistogram,
  ) {
    this.counts = new Array(bounds.length + 1).fill(0);
  }
  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
    this.instrument?.record(value, NO_ATTRIBUTES);
  }
}

/**
 * The attributes of an observation without any: the SDK's default for a missing argument is a
 * new `{}` per call, and the relay observes its publish latency once per event.
 */
const NO_ATTRIBUTES: Attributes = Object.freeze({});
