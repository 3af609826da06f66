import type pg from 'pg';

/** Dead letters of one stage and group, by status. */
export interface DeadLetterCounts {
  stage: 'relay' | 'consumer';
  groupId: string | null;
  pending: number;
  redriven: number;
  discarded: number;
  /** Rows dead-lettered within the window (any status). */
  newInWindow: number;
}

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

export const DEAD_LETTER_COUNTS_SQL = `
SELECT stage, group_id,
       count(*) FILTER (WHERE status = 'pending')::bigint AS pending,
       count(*) FILTER (WHERE status = 'redriven')::bigint AS redriven,
       count(*) FILTER (WHERE status = 'discarded')::bigint AS discarded,
       count(*) FILTER (WHERE created_at >= now() - make_interval(secs => $1))::bigint AS new_in_window
FROM eventbus.dead_letters
GROUP BY stage, group_id
ORDER BY stage, group_id NULLS FIRST`;

export async function eventFlow(db: pg.Pool, windowSeconds: number): Promise<EventFlow> {
  const { rows } = await db.query(EVENT_FLOW_SQL, [windowSeconds]);
  return { written: Number(rows[0].written), published: Number(rows[0].published) };
}

export async function deadLetterCounts(db: pg.Pool, windowSeconds: number): Promise<DeadLetterCounts[]> {
  const { rows } = await db.query(DEAD_LETTER_COUNTS_SQL, [windowSeconds]);
  return rows.map((r) => ({
    stage: r.stage,
    groupId: r.group_id,
    pending: Number(r.pending),
    redriven: Number(r.redriven),
    discarded: Number(r.discarded),
    newInWindow: Number(r.new_in_window),
  }));
}
