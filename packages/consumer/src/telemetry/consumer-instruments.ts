import { metrics, type Attributes, type Counter, type Histogram, type Meter, type ObservableResult } from '@opentelemetry/api';
import { LATENCY_BUCKETS_MS, METRIC, METRIC_LABEL } from '@eventbus/core';
import type { EventStatus } from '@eventbus/monitor';

/** The meter name of the consumer's instruments. */
export const CONSUMER_METER = '@eventbus/consumer';

/**
 * The consumer's OpenTelemetry instruments, labelled by event type and group only (bounded:
 * no tenant, no event id). Taken from the meter at construction, i.e. at `start()`.
 */
export class ConsumerInstruments {
  private readonly consumed: Counter;
  private readonly failed: Counter;
  private readonly deadLettered: Counter;
  private readonly endToEnd: Histogram;
  private readonly labels = new Map<string, { plain: Attributes; staged: Attributes }>();
  /** Removes the open-circuits gauge's callback (close). */
  private readonly removeGauge: () => void = () => undefined;

  constructor(
    private readonly groupId: string,
    meter: Meter = metrics.getMeter(CONSUMER_METER),
    /** Tenant circuits open now; the gauge is left out when the breaker is off. */
    openTenantCircuits?: () => number,
  ) {
    if (openTenantCircuits) {
      const gauge = meter.createObservableGauge(METRIC.tenantCircuitsOpen, {
        description: 'Tenant circuits open in this consumer process: their events go to the DLQ without a handler call.',
      });
      const observe = (result: ObservableResult) => result.observe(openTenantCircuits(), { [METRIC_LABEL.group]: groupId });
      gauge.addCallback(observe);
      this.removeGauge = () => gauge.removeCallback(observe);
    }
    this.consumed = meter.createCounter(METRIC.eventsConsumed, { description: 'Handler calls that succeeded, by event type and group.' });
    this.failed = meter.createCounter(METRIC.eventsFailed, { description: 'Attempts that failed and will be retried, by stage and event type.' });
    this.deadLettered = meter.createCounter(METRIC.eventsDeadLettered, { description: 'Events moved to a DLQ, by stage and event type.' });
    this.endToEnd = meter.createHistogram(METRIC.endToEndLatency, {
      description: 'Event created (its transaction) to handler done, ms; successes only.',
      unit: 'ms',
      advice: { explicitBucketBoundaries: [...LATENCY_BUCKETS_MS] },
    });
  }

  /** The consumer stopped: its gauge stops reporting. Idempotent. */
  close(): void {
    this.removeGauge();
  }

  /** One attempt's outcome; `latencyMs` is the end-to-end latency (recorded for successes). */
  record(eventType: string, status: EventStatus, latencyMs: number): void {
    const labels = this.labelsOf(eventType);
    if (status === 'success') {
      this.consumed.add(1, labels.plain);
      this.endToEnd.record(latencyMs, labels.plain);
    } else if (status === 'failed') {
      this.failed.add(1, labels.staged);
    } else if (status === 'dead_lettered') {
      this.deadLettered.add(1, labels.staged);
    }
  }

  /** One pair of label sets per event type (a bounded set), not two new objects per event. */
  private labelsOf(eventType: string): { plain: Attributes; staged: Attributes } {
    let labels = this.labels.get(eventType);
    if (!labels) {
      const plain = { [METRIC_LABEL.eventType]: eventType, [METRIC_LABEL.group]: this.groupId };
      labels = { plain, staged: { ...plain, [METRIC_LABEL.stage]: 'consumer' } };
      this.labels.set(eventType, labels);
    }
    return labels;
  }
}
