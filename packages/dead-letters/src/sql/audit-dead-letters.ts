import type pg from 'pg';

/**
 * The dead-letter side of `eventbus audit`: which events the relay dead-lettered (any status:
 * they are accounted for, not missing) and which ones the given consumer groups did. Copied
 * into the audit's temporary table `target`, with the columns `(stage text, group_id text,
 * event_id text)`, where the audit compares them with Kafka and the event log in Postgres.
 */
export const COPY_DEAD_LETTERED_EVENTS_SQL = (target: string) => `
INSERT INTO ${tableName(target)} (stage, group_id, event_id)
SELECT DISTINCT stage, group_id, event_id
  FROM eventbus.dead_letters
 WHERE event_id IS NOT NULL
   AND (stage = 'relay' OR group_id = ANY ($1::text[]))`;

/** Copies the relay's dead-lettered events and those of `groupIds`; returns how many rows. */
export async function copyDeadLetteredEvents(client: pg.ClientBase, target: string, groupIds: readonly string[]): Promise<number> {
  const result = await client.query(COPY_DEAD_LETTERED_EVENTS_SQL(target), [groupIds]);
  return result.rowCount ?? 0;
}

function tableName(name: string): string {
  if (!/^(pg_temp\.)?[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a table name: ${JSON.stringify(name)}`);
  return name;
}
