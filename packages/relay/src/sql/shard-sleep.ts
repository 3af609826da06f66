import type pg from 'pg';
import { SLEEP_LOCK_NAMESPACE } from '@eventbus/schema/shards';

/**
 * The sleep flag of a shard: a session advisory lock (SLEEP_LOCK_NAMESPACE, shard) that the
 * owning lane holds while it waits for a notification on the shard. The outbox trigger
 * (drizzle/0006_notify_sleeping_lanes.sql) sends NOTIFY only for shards whose sleep lock it
 * cannot take in shared mode; a lane that is claiming holds no sleep lock and probes its awake
 * shards on every claim, so producers writing there skip NOTIFY and its database-wide commit
 * lock.
 *
 * Why this shape:
 * - An advisory lock, not a row or a setting: producers only try it in shared mode, which never
 *   conflicts with another producer, and nothing is written, so writers do not serialize on
 *   the flag. The lane changes it only on sleep and wake transitions, not per claim.
 * - The producer's shared lock lasts until its transaction ends, so `sleepShards` is refused
 *   for a shard while a producer that skipped NOTIFY there is uncommitted. A shard whose lock
 *   was granted has no such producer left: each committed before the grant (Postgres makes a
 *   transaction visible before it releases its locks), so one more claim of the shard after
 *   the grant sees every row written without a notification (the lane's re-check), and every
 *   producer after the grant notifies.
 * - Never waits (`pg_try_advisory_lock`): a shard a producer is writing to right now stays
 *   awake and is probed again shortly; the lane is never stuck behind a long transaction.
 * - Session locks on the claim connection, like the shard locks (shard-locks.ts): if the
 *   connection dies, the sleep flags go with the shards, and producers stop notifying a lane
 *   that is gone; the lane that takes a shard probes it at once.
 * - One statement for both directions: a transition costs one round trip.
 */
export const CHANGE_SHARD_SLEEP_SQL = `
SELECT
  array(SELECT s FROM unnest($2::int[]) AS s WHERE pg_try_advisory_lock($1, s)) AS asleep,
  (SELECT count(*) FROM unnest($3::int[]) AS s WHERE pg_advisory_unlock($1, s))::int AS woken`;

/**
 * Puts `sleep` to sleep where no producer is writing now (returns those shards) and wakes
 * `wake` (whose sleep locks this session holds), in one round trip.
 */
export async function changeShardSleep(client: pg.ClientBase, sleep: readonly number[], wake: readonly number[]): Promise<number[]> {
  if (sleep.length === 0 && wake.length === 0) return [];
  const { rows } = await client.query(CHANGE_SHARD_SLEEP_SQL, [SLEEP_LOCK_NAMESPACE, sleep, wake]);
  return rows[0].asleep as number[];
}
