import type { PgTransaction } from 'drizzle-orm/pg-core';
import type { NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import { invalidConfig } from '@eventbus/core';
import { inboxStatementError } from './sql/inbox-schema.js';

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

/** The inbox key: one row per consumer group, event and subscription. */
export interface InboxKey {
  groupId: string;
  eventId: string;
  /**
   * The subscription whose effect this is (`ctx.processOnce` passes its subscription's name).
   * Default '': the group-wide key, done once for the whole group. A group-wide row also counts
   * as done for every subscription of the group, and a group-wide call finds any row of the group.
   */
  subscription?: string;
}

/**
 * Runs `effect` only if this (group, event, subscription) was not processed before, recording
 * it in eventbus.inbox inside the caller's transaction: the record and the effects commit or
 * roll back together, so a redelivered event (crash before the offset commit, a retry after a
 * timeout) does not apply its effects twice. Returns whether `effect` ran.
 *
 * A concurrent delivery of the same event to the same subscription blocks on the inserted key
 * until the first transaction ends, then sees the conflict: effects stay once-only across workers.
 *
 * An inbox that is missing, or older than migration 0007, fails it with a retriable
 * MIGRATION_PENDING that names the migration (sql/inbox-schema.ts).
 */
export async function processOnce(tx: InboxTransaction, key: InboxKey, effect: () => Promise<void>): Promise<boolean> {
  const { sql, PgTransaction } = await loadDrizzle();
  // Outside a transaction the inbox row would commit on its own, and a failed effect would
  // then be marked done forever.
  if (!(tx instanceof PgTransaction)) throw invalidConfig('processOnce(tx)', 'a Drizzle transaction (db.transaction(async (tx) => ...))', typeof tx);
  const subscription = key.subscription ?? '';
  if (!key.groupId || !key.eventId || typeof subscription !== 'string') {
    throw invalidConfig('processOnce(key)', 'non-empty groupId and eventId, and a string subscription if any', JSON.stringify(key));
  }
  // Why this shape: ON CONFLICT on the key (group_id, event_id, subscription) is what keeps a
  // concurrent delivery to the same subscription once-only (it waits for the other transaction's
  // key). The NOT EXISTS adds the group-wide rule: a subscription's row is not inserted when the
  // group has a '' row for the event (so rows from before migration 0007 count as done), a
  // group-wide call's row not when the group has any row for it. It reads the statement's
  // snapshot, so it sees committed rows only: a group-wide call and a subscription's call for
  // the same event at the same moment can both run (docs/consumers.md). node-postgres plans the
  // statement with its values, so `$3 = ''` folds away and the probe is one index-only descent
  // to the leaf page the insert then writes to: 50,000 of these into a 1M-row inbox took
  // 3.3-3.9 s against 4.0-5.1 s for the bare insert, on a loaded 2-core machine (no cost beyond
  // the noise).
  // Only this statement's error is mapped: the effect's own (a table of the caller's that is
  // missing) passes through as it is.
  const result = await tx
    .execute(sql`
    INSERT INTO eventbus.inbox (group_id, event_id, subscription)
    SELECT ${key.groupId}::text, ${key.eventId}::text, ${subscription}::text
     WHERE NOT EXISTS (SELECT 1 FROM eventbus.inbox i
                        WHERE i.group_id = ${key.groupId} AND i.event_id = ${key.eventId} AND (i.subscription = '' OR ${subscription} = ''))
    ON CONFLICT DO NOTHING
    RETURNING 1 AS inserted`)
    .catch((error: unknown) => {
      throw inboxStatementError(error);
    });
  if (result.rows.length === 0) return false;
  await effect();
  return true;
}
