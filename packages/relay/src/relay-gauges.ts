import type pg from 'pg';
import { metrics, type Attributes, type BatchObservableCallback, type Meter } from '@opentelemetry/api';
import { errorMessage, type Logger } from '@eventbus/core';
import { RELAY_METER } from './metrics.js';
import { deadLetterCounts } from '@eventbus/dead-letters';
import { outboxBacklog } from '@eventbus/outbox';

/** What the gauges read from a running relay. */
export interface ObservedRelay {
  readonly listenReconnects: number;
  readonly shards: readonly number[];
  /** Topics whose rows wait because Kafka said the topic does not exist. */
  readonly heldTopics?: readonly string[];
  /** Of those, the topics held for `missingTopicHold.alertAfterMs` or longer. */
  readonly overdueHeldTopics?: readonly string[];
}

/** Options of `observeRelayGauges`. */
export interface RelayGaugeOptions {
  relay: ObservedRelay;
  /** Runs the backlog and DLQ queries at collection time (a scrape); apart from the relay's claim connections. */
  pool: pg.Pool;
  /** Default: the global provider's `@eventbus/relay` meter. */
  meter?: Meter;
  logger?: Logger;
}

/**
 * Registers the values that are read, not counted: outbox backlog and its oldest row's age,
 * DLQ size by stage and group (both from Postgres, queried once per collection), LISTEN
 * reconnects and shards owned. Returns a function that unregisters them. One relay per
 * process: a second registration would report the same series twice.
 */
export function observeRelayGauges(options: RelayGaugeOptions): () => void {
  const meter = options.meter ?? metrics.getMeter(RELAY_METER);
  const backlog = meter.createObservableGauge('eventbus.outbox.backlog', { description: 'Outbox rows not yet published.' });
  const failing = meter.createObservableGauge('eventbus.outbox.failing', { description: 'Outbox rows waiting for a retry after Kafka refused them.' });
  const oldestAge = meter.createObservableGauge('eventbus.outbox.oldest_age_seconds', { description: 'Age of the oldest unpublished event, s.', unit: 's' });
  const dlqSize = meter.createObservableGauge('eventbus.dlq.size', { description: 'Pending DLQ table rows, by stage and consumer group.' });
  const reconnects = meter.createObservableCounter('eventbus.relay.listen_reconnects', { description: 'Reconnects of the LISTEN connection.' });
  const shards = meter.createObservableGauge('eventbus.relay.shards_owned', { description: 'Shards this instance publishes.' });
  const heldTopics = meter.createObservableGauge('eventbus.relay.held_topics', {
    description: 'Topics Kafka said do not exist, whose rows this instance holds in the outbox until the topic appears.',
  });

  const overdueHeldTopics = meter.createObservableGauge('eventbus.relay.held_topics_overdue', {
    description:
      'Held topics missing for missingTopicHold.alertAfterMs or longer (RELAY_MISSING_TOPIC_ALERT_MS): their rows wait until someone creates the topic.',
  });

  const callback: BatchObservableCallback = async (result) => {
    result.observe(reconnects, options.relay.listenReconnects);
    result.observe(shards, options.relay.shards.length);
    result.observe(heldTopics, options.relay.heldTopics?.length ?? 0);
    result.observe(overdueHeldTopics, options.relay.overdueHeldTopics?.length ?? 0);
    // A failed query leaves its gauges out of this scrape rather than reporting a false 0.
    const [outbox, dlq] = await Promise.allSettled([outboxBacklog(options.pool), deadLetterCounts(options.pool)]);
    if (outbox.status === 'fulfilled') {
      result.observe(backlog, outbox.value.pending);
      result.observe(failing, outbox.value.failing);
      result.observe(oldestAge, outbox.value.oldestAgeSeconds);
    } else {
      options.logger?.warn({ err: errorMessage(outbox.reason) }, 'outbox backlog query failed; backlog gauges skipped');
    }
    if (dlq.status === 'fulfilled') {
      for (const row of dlq.value) {
        const labels: Attributes = row.groupId === null ? { stage: row.stage } : { stage: row.stage, group: row.groupId };
        result.observe(dlqSize, row.pending, labels);
      }
    } else {
      options.logger?.warn({ err: errorMessage(dlq.reason) }, 'DLQ size query failed; DLQ gauge skipped');
    }
  };
  const observables = [backlog, failing, oldestAge, dlqSize, reconnects, shards, heldTopics, overdueHeldTopics];
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
