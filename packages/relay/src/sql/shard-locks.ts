import type pg from 'pg';
import { SHARD_COUNT, SHARD_LOCK_NAMESPACE } from '@eventbus/schema/shards';

/**
 * Shard ownership is a session-level advisory lock (SHARD_LOCK_NAMESPACE, shard) held on
 * the relay's claim connection. The lock and the claim transactions share that one
 * connection, so they cannot diverge: if the connection dies, Postgres releases the locks
 * and rolls back the claim in flight at the same moment, and another instance may take
 * the shard without ever publishing beside this one.
 *
 * Presence is a lock too (PRESENCE_KEY): counting the holders in pg_locks tells each
 * instance how many are alive right now, with no heartbeat timeout to wait out.
 */
const PRESENCE_KEY = -1;

export async function announcePresence(client: pg.ClientBase): Promise<void> {
  // Two-key form (namespace, key). key = PRESENCE_KEY - backend pid: negative, so out of the
  // shard range, and unique among live connections of the server, so no two lanes (of one
  // process, or of containers that all run as pid 1) ever contend for the same key.
  const { rows } = await client.query('SELECT pg_try_advisory_lock($1, $2 - pg_backend_pid()) AS locked', [SHARD_LOCK_NAMESPACE, PRESENCE_KEY]);
  if (!rows[0].locked) throw new Error('presence lock already held: another session took key -1 - this backend pid');
}

/** Stops counting this connection as a live participant (its shards must be released first). */
export async function withdrawPresence(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1, $2 - pg_backend_pid())', [SHARD_LOCK_NAMESPACE, PRESENCE_KEY]);
}

const PRESENCE_HOLDERS = `
  SELECT count(*)::int AS n FROM pg_locks
  WHERE locktype = 'advisory' AND granted AND classid = $1 AND objsubid = 2 AND objid::int < 0
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;

/** Live relay instances on this database: holders of a presence lock. */
export async function countLiveInstances(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query(PRESENCE_HOLDERS, [SHARD_LOCK_NAMESPACE]);
  return Math.max(1, rows[0].n as number);
}

/** Presence holders other than the given backends (one relay instance's claim connections). */
export async function countOtherParticipants(client: pg.ClientBase, ownBackendPids: readonly number[]): Promise<number> {
  const { rows } = await client.query(`${PRESENCE_HOLDERS} AND pid <> ALL ($2::int[])`, [SHARD_LOCK_NAMESPACE, ownBackendPids]);
  return rows[0].n as number;
}

/**
 * Tries to lock up to `max` of `candidates`, in order; returns the ones now held. Never
 * waits. The LIMIT stops evaluation after `max` successes, so no extra lock is taken.
 */
export async function tryLockShards(client: pg.ClientBase, candidates: readonly number[], max: number): Promise<number[]> {
  if (candidates.length === 0 || max <= 0) return [];
  const { rows } = await client.query(`SELECT s AS shard FROM unnest($2::int[]) AS s WHERE pg_try_advisory_lock($1, s) LIMIT $3`, [
    SHARD_LOCK_NAMESPACE,
    candidates,
    max,
  ]);
  return rows.map((r) => r.shard as number);
}

export async function unlockShards(client: pg.ClientBase, shards: readonly number[]): Promise<void> {
  if (shards.length === 0) return;
  await client.query('SELECT pg_advisory_unlock($1, s) FROM unnest($2::int[]) AS s', [SHARD_LOCK_NAMESPACE, shards]);
}

export const ALL_SHARDS: readonly number[] = Array.from({ length: SHARD_COUNT }, (_, i) => i);
