import type pg from 'pg';

/** Event flow within the window. */
export interface EventFlow {
  /** EventLog rows created within the window. */
  written: number;
  /** Of those, rows no longer waiting in the outbox. */
  published: number;
}

/**
 * Events written in the window, and how many of them have left the outbox. The relay
 * deletes a row once Kafka acknowledged it and keeps no publish timestamps, so the
 * database's publish rate is "events of the window that are no longer pending". Events
 * written with writeEvent (EventLog only, no outbox row) count as published; so do rows
 * moved to the DLQ table by the relay (listed separately). There is no index on
 * created_at alone, so this scans the EventLog's recent rows by a sequential or bitmap scan.
 */
export const EVENT_FLOW_SQL = `
SELECT count(*)::bigint AS written,
       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM eventbus.outbox o WHERE o.event_id = e.id))::bigint AS published
FROM eventbus.event_log e
WHERE e.created_at >= now() - make_interval(secs => $1)`;

export async function eventFlow(db: pg.Pool, windowSeconds: number): Promise<EventFlow> {
  const { rows } = await db.query(EVENT_FLOW_SQL, [windowSeconds]);
  return { written: Number(rows[0].written), published: Number(rows[0].published) };
}
