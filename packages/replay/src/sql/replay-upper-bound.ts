import type pg from 'pg';

/**
 * Where a replay stops reading: every event created strictly before `bound`.
 *
 * Why a replay cannot simply read "up to now" (or up to an open --to): event_log.created_at
 * is now(), the start time of the writing transaction, but a row becomes visible when that
 * transaction commits. A transaction that started at 10:00:00 and commits at 10:00:05 writes
 * created_at = 10:00:00; a replay whose keyset cursor passed 10:00:00 at 10:00:03 never reads
 * it (the classic outbox bug, see "Commit order vs id order" in the design notes). A resumed
 * replay has the same problem at its cursor.
 *
 * So the replay computes a visibility horizon once, when it starts: the start time of the
 * oldest transaction still open in this database (other than the replay's own session), or
 * the statement's own start time when none is open. Every event created before the horizon
 * is already committed or belongs to no transaction that can still commit, so reading
 * `created_at < horizon` in keyset order skips nothing. The bound is min(--to, horizon); it
 * is stored in the resume token, so a resumed replay reads the same window, and reported, so
 * the operator can replay what came later with `--from <bound>` (--from is inclusive, the
 * bound exclusive: nothing is read twice or missed).
 *
 * Which transactions count: every open transaction of a client backend in this database,
 * not only those that already wrote (`backend_xid IS NOT NULL`): a transaction gets its xid
 * at its first write, so one that has only read so far may still insert an event whose
 * created_at is its (old) start time. A long-open transaction therefore holds the bound back;
 * the report shows the bound, and which limited it.
 *
 * Privileges: pg_stat_activity shows xact_start only for sessions of the same role, or to
 * superusers and members of pg_read_all_stats. Sessions of other roles appear with
 * `query = '<insufficient privilege>'` and a null xact_start: their transactions cannot be
 * seen, and an event they commit late could be skipped. They are counted (`hiddenSessions`)
 * and the CLI warns; grant pg_read_all_stats to the replaying role, or replay as the writers'
 * role, to close that gap.
 *
 * `statement_timestamp()` rather than `now()` as the fallback: with a client that is inside a
 * transaction of its own (EventReplay accepts one), now() is that transaction's start and
 * would exclude the events the transaction itself wrote.
 */
export const REPLAY_UPPER_BOUND_SQL = `
WITH open_tx AS (
  SELECT min(xact_start) AS oldest
  FROM pg_stat_activity
  WHERE datname = current_database() AND backend_type = 'client backend'
    AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
), hidden AS (
  SELECT count(*)::int AS n
  FROM pg_stat_activity
  WHERE datname = current_database() AND backend_type = 'client backend'
    AND pid <> pg_backend_pid() AND query = '<insufficient privilege>'
), bounds AS (
  SELECT least(open_tx.oldest, statement_timestamp()) AS horizon,
         $1::timestamptz + interval '1 microsecond' AS to_exclusive,
         open_tx.oldest IS NOT NULL AS held,
         hidden.n AS hidden_sessions
  FROM open_tx, hidden
)
SELECT to_char(least(horizon, to_exclusive) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS bound,
       to_char(horizon AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS horizon,
       to_exclusive IS NOT NULL AND to_exclusive <= horizon AS limited_by_to,
       held, hidden_sessions
FROM bounds`;

/** The exclusive upper bound of a replay's window, and why it is where it is. */
export interface ReplayUpperBound {
  /** Events created strictly before this instant are read (Postgres' microsecond UTC text). */
  bound: string;
  /** 'to': the --to date (inclusive) limited it; 'open-transaction': a transaction still open; 'now': the replay's start. */
  limitedBy: 'to' | 'open-transaction' | 'now';
  /** Sessions of other roles whose transactions pg_stat_activity does not show (see above). */
  hiddenSessions: number;
}

export async function replayUpperBound(db: pg.Pool | pg.ClientBase, toDate: Date | null): Promise<ReplayUpperBound> {
  const { rows } = await db.query(REPLAY_UPPER_BOUND_SQL, [toDate ? toDate.toISOString() : null]);
  const r = rows[0];
  return { bound: r.bound, limitedBy: r.limited_by_to ? 'to' : r.held ? 'open-transaction' : 'now', hiddenSessions: r.hidden_sessions };
}

/**
 * The bound of a replay by event id: min(--to, the statement's start), without the horizon of
 * open transactions. The horizon keeps a keyset cursor from passing an event that commits
 * later; a replay by id has no such event to wait for: it first checks that every id is in the
 * EventLog (refusing otherwise), and each one found was committed before that check, so its
 * created_at (its transaction's start) is before this later statement's start. Waiting for
 * unrelated open transactions would only leave out the events asked for.
 */
export const EVENT_IDS_UPPER_BOUND_SQL = `
WITH bounds AS (
  SELECT statement_timestamp() AS started, $1::timestamptz + interval '1 microsecond' AS to_exclusive
)
SELECT to_char(least(started, to_exclusive) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS bound,
       to_exclusive IS NOT NULL AND to_exclusive <= started AS limited_by_to
FROM bounds`;

/** The upper bound of a replay by event id (EVENT_IDS_UPPER_BOUND_SQL); call it after the ids were found. */
export async function eventIdsUpperBound(db: pg.Pool | pg.ClientBase, toDate: Date | null): Promise<ReplayUpperBound> {
  const { rows } = await db.query(EVENT_IDS_UPPER_BOUND_SQL, [toDate ? toDate.toISOString() : null]);
  return { bound: rows[0].bound, limitedBy: rows[0].limited_by_to ? 'to' : 'now', hiddenSessions: 0 };
}
