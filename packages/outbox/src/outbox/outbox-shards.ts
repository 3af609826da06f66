import type pg from 'pg';
import { SHARD_COUNT, SHARD_LOCK_NAMESPACE } from '@eventbus/schema/shards';

/** One shard's backlog and who publishes it. */
export interface ShardStatus {
  shard: number;
  pending: number;
  failing: number;
  oldestAgeSeconds: number;
  /** The relay (lane) holding the shard's advisory lock, or null when no relay holds it. */
  heldBy: string | null;
}

/**
 * Per-shard backlog and holders. Ownership is read where it lives, in pg_locks (the shard
 * locks are session advisory locks (SHARD_LOCK_NAMESPACE, shard) on each relay's claim
 * connection, see packages/relay/src/sql/shard-locks.ts); the holder's name comes from that
 * connection's application_name (`eventbus-relay <instance id>`). relay_instances is only
 * a heartbeat record and may lag a failover by its heartbeat period, so it is not used
 * for ownership here.
 */
export const OUTBOX_SHARDS_SQL = `
WITH per_shard AS (
  SELECT shard, count(*) AS pending, count(*) FILTER (WHERE attempts > 0) AS failing, min(id) AS oldest_id
  FROM eventbus.outbox GROUP BY shard
), holders AS (
  SELECT DISTINCT ON (l.objid) l.objid::int AS shard, regexp_replace(coalesce(a.application_name, ''), '^eventbus-relay ', '') AS held_by
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objsubid = 2 AND l.objid::bigint < $2
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  ORDER BY l.objid, l.pid
)
SELECT s.shard, coalesce(p.pending, 0)::bigint AS pending, coalesce(p.failing, 0)::bigint AS failing,
       coalesce(extract(epoch FROM now() - (
         SELECT e.created_at FROM eventbus.outbox o JOIN eventbus.event_log e ON e.id = o.event_id WHERE o.id = p.oldest_id
       )), 0)::float8 AS oldest_age_seconds,
       nullif(h.held_by, '') AS held_by
FROM generate_series(0, $2 - 1) AS s(shard)
LEFT JOIN per_shard p ON p.shard = s.shard
LEFT JOIN holders h ON h.shard = s.shard
ORDER BY s.shard`;

export async function outboxShards(db: pg.Pool): Promise<ShardStatus[]> {
  const { rows } = await db.query(OUTBOX_SHARDS_SQL, [SHARD_LOCK_NAMESPACE, SHARD_COUNT]);
  return rows.map((r) => ({
    shard: r.shard,
    pending: Number(r.pending),
    failing: Number(r.failing),
    oldestAgeSeconds: Math.max(0, Number(r.oldest_age_seconds)),
    heldBy: r.held_by,
  }));
}
