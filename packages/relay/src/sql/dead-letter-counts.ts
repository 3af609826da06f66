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
