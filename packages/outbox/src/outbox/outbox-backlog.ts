import type pg from 'pg';

export interface OutboxBacklog {
  pending: number;
  /** Rows waiting for a retry after Kafka refused them. */
  failing: number;
  /** Age of the oldest pending event, in seconds; 0 when empty. */
  oldestAgeSeconds: number;
}

/**
 * Backlog for metrics and status. The count is exact (the outbox stays small when the relay
 * keeps up); the oldest age reads the lowest outbox id's event, one index probe.
 */
export const OUTBOX_BACKLOG_SQL = `
SELECT (SELECT count(*) FROM eventbus.outbox)::bigint AS pending,
       (SELECT count(*) FROM eventbus.outbox WHERE attempts > 0)::bigint AS failing,
       coalesce(extract(epoch FROM now() - (
         SELECT e.created_at FROM eventbus.outbox o JOIN eventbus.event_log e ON e.id = o.event_id ORDER BY o.id LIMIT 1
       )), 0)::float8 AS oldest_age_seconds`;

export async function outboxBacklog(client: pg.ClientBase | pg.Pool): Promise<OutboxBacklog> {
  const { rows } = await client.query(OUTBOX_BACKLOG_SQL);
  return { pending: Number(rows[0].pending), failing: Number(rows[0].failing), oldestAgeSeconds: Math.max(0, Number(rows[0].oldest_age_seconds)) };
}
