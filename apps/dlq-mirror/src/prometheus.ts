import type pg from 'pg';
import { pendingDeadLetters } from '@eventbus/dead-letters';

/** Renders the mirror's metrics in the Prometheus text format (version 0.0.4). */
export async function renderPrometheus(
  counts: { mirrored: number; seenBefore: number; unstorable: number },
  pool: pg.Pool,
  queryFailures: { count: number; onFailure: (error: unknown) => void },
): Promise<string> {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: Array<[labels: string, value: number]>) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  metric('eventbus_dlq_mirror_mirrored_total', 'counter', 'DLQ records copied into eventbus.dead_letters.', [['', counts.mirrored]]);
  metric('eventbus_dlq_mirror_seen_before_total', 'counter', 'DLQ records skipped because the mirror copied them before (a re-read of the DLQ topics).', [
    ['', counts.seenBefore],
  ]);
  metric(
    'eventbus_dlq_mirror_unstorable_total',
    'counter',
    'DLQ records Postgres refused after the bounded attempts, skipped into eventbus.dead_letters_unstorable (alert on any increase).',
    [['', counts.unstorable]],
  );
  // A scrape without the database still answers, without the two gauges, and counts the
  // failure (alert on it: a missing gauge alone looks like "no dead letters").
  const rows = await pendingDeadLetters(pool).catch((error: unknown) => {
    queryFailures.count++;
    queryFailures.onFailure(error);
    return undefined;
  });
  metric(
    'eventbus_dlq_mirror_dlq_query_failures_total',
    'counter',
    'Scrapes whose dead-letter query failed (eventbus_dlq_size and eventbus_dlq_oldest_age_seconds were left out).',
    [['', queryFailures.count]],
  );
  if (rows) {
    metric(
      // The relay reports the same gauge under the same name (its `eventbus.dlq.size`), so
      // one alert covers both apps, whichever of them a deployment runs.
      'eventbus_dlq_size',
      'gauge',
      'Pending DLQ table rows (neither re-driven nor discarded), by stage and consumer group.',
      // Relay-stage rows belong to no group: no group label, as in the relay's series.
      rows.map((r) => [
        r.group_id === null ? `{stage="${escapeLabel(r.stage)}"}` : `{stage="${escapeLabel(r.stage)}",group="${escapeLabel(r.group_id)}"}`,
        r.n,
      ]),
    );
    metric('eventbus_dlq_oldest_age_seconds', 'gauge', 'Age of the oldest pending DLQ table row, s (0 when none).', [
      ['', rows.reduce((max, r) => Math.max(max, r.oldest_age_seconds), 0)],
    ]);
  }
  return `${lines.join('\n')}\n`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
