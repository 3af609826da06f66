import type pg from 'pg';

/** Pending (neither re-driven nor discarded) DLQ rows of one stage and consumer group. */
export interface DeadLetterCount {
  stage: 'relay' | 'consumer';
  /** Null for the relay stage. */
  groupId: string | null;
  pending: number;
}

/**
 * DLQ size per stage and group, for the `eventbus.dlq.size` gauge. Groups are few, so the
 * result stays small; `dead_letters_group_idx (group_id, status)` serves the filter.
 */
export const DEAD_LETTER_COUNTS_SQL = `
SELECT stage, group_id, count(*)::bigint AS pending
  FROM eventbus.dead_letters
 WHERE status = 'pending'
 GROUP BY stage, group_id`;

export async function deadLetterCounts(client: pg.ClientBase | pg.Pool): Promise<DeadLetterCount[]> {
  const { rows } = await client.query(DEAD_LETTER_COUNTS_SQL);
  return rows.map((r) => ({ stage: r.stage, groupId: r.group_id, pending: Number(r.pending) }));
}

/** Dead letters of one stage and group, by status (`eventbus stats`). */
export interface DeadLetterStatusCounts {
  stage: 'relay' | 'consumer';
  groupId: string | null;
  pending: number;
  redriven: number;
  discarded: number;
  /** Rows dead-lettered within the window (any status). */
  newInWindow: number;
}

export const DEAD_LETTER_STATUS_COUNTS_SQL = `
SELECT stage, group_id,
       count(*) FILTER (WHERE status = 'pending')::bigint AS pending,
       count(*) FILTER (WHERE status = 'redriven')::bigint AS redriven,
       count(*) FILTER (WHERE status = 'discarded')::bigint AS discarded,
       count(*) FILTER (WHERE created_at >= now() - make_interval(secs => $1))::bigint AS new_in_window
FROM eventbus.dead_letters
GROUP BY stage, group_id
ORDER BY stage, group_id NULLS FIRST`;

/** Every stage and group's rows by status, and those dead-lettered in the last `windowSeconds`. */
export async function deadLetterStatusCounts(db: pg.Pool, windowSeconds: number): Promise<DeadLetterStatusCounts[]> {
  const { rows } = await db.query(DEAD_LETTER_STATUS_COUNTS_SQL, [windowSeconds]);
  return rows.map((r) => ({
    stage: r.stage,
    groupId: r.group_id,
    pending: Number(r.pending),
    redriven: Number(r.redriven),
    discarded: Number(r.discarded),
    newInWindow: Number(r.new_in_window),
  }));
}

/** Pending dead letters of one stage and group, and how old the oldest is (the DLQ mirror's /metrics). */
export interface PendingDeadLetters {
  stage: string;
  group_id: string | null;
  n: number;
  oldest_age_seconds: number;
}

/**
 * Pending dead letters per stage and group, and the age of the oldest. The table is small by
 * design (dead letters are handled, then discarded), and the (status, created_at) index
 * serves this query.
 */
export const PENDING_DEAD_LETTERS_SQL = `
SELECT stage, group_id, count(*)::int AS n,
  extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_seconds
FROM eventbus.dead_letters WHERE status = 'pending' GROUP BY 1, 2`;

/** Runs PENDING_DEAD_LETTERS_SQL; rejects when the query fails (the caller decides what a scrape shows then). */
export async function pendingDeadLetters(pool: pg.Pool): Promise<PendingDeadLetters[]> {
  return (await pool.query<PendingDeadLetters>(PENDING_DEAD_LETTERS_SQL)).rows;
}
