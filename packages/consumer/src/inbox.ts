import type { PgTransaction } from 'drizzle-orm/pg-core';
import type { NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import { invalidConfig } from '@eventbus/core';

/**
 * drizzle-orm, loaded when processOnce first runs, not when @eventbus/consumer is imported: as ES
 * modules it costs about a second of CPU and tens of MB at start, which a worker that never uses
 * the inbox should not pay. A caller of processOnce holds a Drizzle transaction, so drizzle-orm
 * is loaded by then and this import is a cache hit.
 */
let drizzle: Promise<{ sql: typeof import('drizzle-orm').sql; PgTransaction: typeof import('drizzle-orm/pg-core').PgTransaction }> | undefined;
export function loadDrizzle() {
  drizzle ??= Promise.all([import('drizzle-orm'), import('drizzle-orm/pg-core')]).then(([orm, pgCore]) => ({
    sql: orm.sql,
    PgTransaction: pgCore.PgTransaction,
  }));
  return drizzle;
}

/** A Drizzle node-postgres transaction, from `db.transaction(async (tx) => ...)`. */
// biome-ignore lint/suspicious/noExplicitAny: any schema of the caller's own: processOnce only runs its own SQL on it
export type InboxTransaction = PgTransaction<NodePgQueryResultHKT, any, any>;

/** The inbox key: one row per consumer group and event. */
export interface InboxKey {
  groupId: string;
  eventId: string;
}

/**
 * Runs `effect` only if this (group, event) was not processed before, recording it in
 * eventbus.inbox inside the caller's transaction: the record and the effects commit or
 * roll back together, so a redelivered event (crash before the offset commit, a retry
 * after a timeout) does not apply its effects twice. Returns whether `effect` ran.
 *
 * A concurrent delivery of the same event blocks on the inserted key until the first
 * transaction ends, then sees the conflict: effects stay once-only across workers.
 */
export async function processOnce(tx: InboxTransaction, key: InboxKey, effect: () => Promise<void>): Promise<boolean> {
  const { sql, PgTransaction } = await loadDrizzle();
  // Outside a transaction the inbox row would commit on its own, and a failed effect would
  // then be marked done forever.
  if (!(tx instanceof PgTransaction)) throw invalidConfig('processOnce(tx)', 'a Drizzle transaction (db.transaction(async (tx) => ...))', typeof tx);
  if (!key.groupId || !key.eventId) throw invalidConfig('processOnce(key)', 'non-empty groupId and eventId', JSON.stringify(key));
  const result = await tx.execute(
    sql`INSERT INTO eventbus.inbox (group_id, event_id) VALUES (${key.groupId}, ${key.eventId}) ON CONFLICT DO NOTHING RETURNING 1 AS inserted`,
  );
  if (result.rows.length === 0) return false;
  await effect();
  return true;
}
