import type { Histogram, OutboxBacklog, RelayMetrics } from '@eventbus/relay';

/** Renders the relay's metrics in the Prometheus text format (version 0.0.4). */
export function renderPrometheus(metrics: RelayMetrics, backlog: OutboxBacklog | undefined, listenReconnects: number, shardsOwned: number): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: Array<[labels: string, value: number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  metric('eventbus_relay_published_total', 'counter', 'Events acknowledged by Kafka.', [
    ['', metrics.published],
    ...[...metrics.publishedByTopic].map(([topic, n]): [string, number] => [`{topic="${escapeLabel(topic)}"}`, n]),
  ]);
  metric('eventbus_relay_publish_failures_total', 'counter', 'Row-level publish failures (Kafka refused the message).', [['', metrics.publishFailures]]);
  metric('eventbus_relay_dead_lettered_total', 'counter', 'Rows moved to the DLQ table after their retries.', [['', metrics.deadLettered]]);
  metric('eventbus_relay_transient_failures_total', 'counter', 'Batches rolled back because Kafka or Postgres was unavailable.', [['', metrics.transientFailures]]);
  metric('eventbus_relay_batches_total', 'counter', 'Claimed batches committed.', [['', metrics.batches]]);
  metric('eventbus_relay_listen_reconnects_total', 'counter', 'Reconnects of the LISTEN connection.', [['', listenReconnects]]);
  metric('eventbus_relay_shards_owned', 'gauge', 'Shards this instance publishes.', [['', shardsOwned]]);
  if (backlog) {
    metric('eventbus_outbox_backlog', 'gauge', 'Outbox rows not yet published.', [['', backlog.pending]]);
    metric('eventbus_outbox_failing', 'gauge', 'Outbox rows waiting for a retry.', [['', backlog.failing]]);
    metric('eventbus_outbox_oldest_age_seconds', 'gauge', 'Age of the oldest unpublished event.', [['', backlog.oldestAgeSeconds]]);
  }
  histogram(lines, 'eventbus_relay_publish_latency_ms', 'Commit (event created_at) to Kafka acknowledgement, ms.', metrics.publishLatency);
  histogram(lines, 'eventbus_relay_batch_size', 'Rows per claimed batch.', metrics.batchSize);
  return `${lines.join('\n')}\n`;
}

function histogram(lines: string[], name: string, help: string, h: Histogram) {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  let cumulative = 0;
  h.bounds.forEach((bound, i) => {
    cumulative += h.counts[i]!;
    lines.push(`${name}_bucket{le="${bound}"} ${cumulative}`);
  });
  lines.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
