import type pg from 'pg';
import { describeThrown, EventBusError } from '@eventbus/core';

/** The migration whose inbox processOnce writes: the `subscription` column and the key that includes it. */
export const INBOX_MIGRATION = '0007_inbox_subscription';

/** What the error tells the operator to do; the same for the start check and a failed processOnce. */
const HOW_TO_MIGRATE = 'apply the migrations (`eventbus migrate`, or the relay with RELAY_MIGRATE=true)';

/**
 * Whether eventbus.inbox has what processOnce needs, in one catalog read at start. It checks the
 * table itself, not drizzle's migrations table: a schema applied by other tooling passes, and a
 * half-done 0007 does not. The column alone is not enough: with `subscription` added by hand
 * (docs/operators.md, for a large inbox) and the key still (group_id, event_id), one
 * subscription's row would make ON CONFLICT skip another subscription's effect for the event.
 * to_regclass gives NULL, not an error, for a missing table or schema.
 */
export const INBOX_SCHEMA_SQL = `
SELECT c.oid IS NOT NULL AS has_table,
       EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'subscription' AND NOT a.attisdropped) AS has_subscription,
       EXISTS (SELECT 1 FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
                WHERE k.conrelid = c.oid AND k.contype = 'p' AND a.attname = 'subscription') AS keyed_by_subscription
FROM (SELECT to_regclass('eventbus.inbox') AS oid) c`;

/** Throws MIGRATION_PENDING when eventbus.inbox is missing or older than INBOX_MIGRATION. */
export async function checkInboxSchema(client: pg.ClientBase): Promise<void> {
  const { rows } = await client.query<{ has_table: boolean; has_subscription: boolean; keyed_by_subscription: boolean }>(INBOX_SCHEMA_SQL);
  const row = rows[0];
  if (!row) throw new Error('the inbox schema check returned no row');
  if (row.has_table && row.has_subscription && row.keyed_by_subscription) return;
  const missing = !row.has_table ? 'table' : !row.has_subscription ? 'column' : 'key';
  const state = {
    table: 'eventbus.inbox does not exist: the database is not migrated',
    column: `eventbus.inbox has no column "subscription": the database is not migrated to ${INBOX_MIGRATION}`,
    key: `the primary key of eventbus.inbox does not include "subscription": ${INBOX_MIGRATION} is not applied (only its column or index was added)`,
  }[missing];
  throw new EventBusError(
    'MIGRATION_PENDING',
    `the consumer's inbox (ctx.processOnce, connectionString) cannot be used: ${state}; ${HOW_TO_MIGRATE}, then start the consumer`,
    {
      // Another process may be applying it now (a relay migrating at boot): starting again later can succeed.
      retriable: true,
      details: { table: 'eventbus.inbox', migration: INBOX_MIGRATION, missing },
    },
  );
}

/** Postgres' codes for a table, column or schema the statement names that does not exist. */
const MISSING_OBJECT = new Set(['42P01', '42703', '3F000']);

/**
 * The error a failed inbox statement should surface: for a missing inbox table, column or schema
 * (the database rolled back or never migrated, after the start check passed), a MIGRATION_PENDING
 * naming the inbox and the migration, instead of drizzle's "Failed query: <sql>" with the reason
 * in its `cause`. Retriable: once the migrations are applied, the event's next attempt succeeds.
 * Anything else is returned as it is.
 */
export function inboxStatementError(error: unknown): unknown {
  let reason: unknown = error;
  // drizzle wraps pg's error once (DrizzleQueryError); a few levels cover any further wrapping.
  for (let depth = 0; depth < 4 && reason !== null && typeof reason === 'object'; depth++) {
    const code = describeThrown(reason).code;
    if (code !== undefined && MISSING_OBJECT.has(code)) {
      return new EventBusError(
        'MIGRATION_PENDING',
        `processOnce cannot write to eventbus.inbox (Postgres ${code}: ${describeThrown(reason).message}): the database is missing the inbox or migration ${INBOX_MIGRATION}; ${HOW_TO_MIGRATE}, and the event's next attempt succeeds`,
        { cause: error, retriable: true, details: { table: 'eventbus.inbox', migration: INBOX_MIGRATION, sqlState: code } },
      );
    }
    reason = (reason as { cause?: unknown }).cause;
  }
  return error;
}
