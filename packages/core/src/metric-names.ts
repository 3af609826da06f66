/**
 * OpenTelemetry instrument names of the event bus, in one place so the relay, the consumer
 * and docs/observability.md agree. Prometheus shows them with `_` for `.` and `_total` on counters.
 * Labels stay bounded: event type, stage, topic, consumer group, outcome; never an event
 * id or a tenant.
 */
export const METRIC = {
  /** Counter {stage, event_type, topic}: messages Kafka acknowledged (stage `relay`, or `replay`). */
  eventsPublished: 'eventbus.events.published',
  /** Counter {event_type, group}: handler calls that succeeded. */
  eventsConsumed: 'eventbus.events.consumed',
  /** Counter {stage, event_type, group?}: attempts that failed and will be retried. */
  eventsFailed: 'eventbus.events.failed',
  /** Counter {stage, event_type, group?}: events moved to a DLQ. */
  eventsDeadLettered: 'eventbus.events.dead_lettered',
  /** Histogram {event_type, group}, ms: event created (its transaction) → handler done. */
  endToEndLatency: 'eventbus.events.end_to_end_latency_ms',
  /** Gauge {group}: tenant circuits open in this consumer process (their events go to the DLQ without a handler call). */
  tenantCircuitsOpen: 'eventbus.consumer.tenant_circuits_open',
} as const;

/** Metric label (attribute) names; short, since Prometheus shows them as they are. */
export const METRIC_LABEL = {
  stage: 'stage',
  eventType: 'event_type',
  topic: 'topic',
  group: 'group',
} as const;

/** The stages an event passes, as the `stage` label and the DLQ table's `stage` column name them. */
export type PipelineStage = 'relay' | 'replay' | 'consumer';

/** Latency buckets in ms shared by the latency histograms: 1 ms to 1 min. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000] as const;
