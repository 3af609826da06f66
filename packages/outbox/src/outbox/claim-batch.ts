import type pg from 'pg';
import type { StoredEvent } from '@eventbus/core';

/** A claimed outbox row joined with its event. */
export interface ClaimedRow extends StoredEvent {
  outboxId: string;
  shard: number;
  /** Failed attempts before this claim. */
  attempts: number;
  firstFailedAt: Date | null;
}

/**
 * Claims up to `limit` due outbox rows of the given shards and deletes them, inside the
 * caller's open transaction, returning them with their events in outbox id order.
 *
 * Why this shape:
 * - DELETE inside a transaction that commits only after Kafka acknowledged the batch: a
 *   crash or a failed send rolls the delete back, so a row is never lost; at most the
 *   batch in flight is sent twice. Nothing is ever skipped the way an `id > last_seen`
 *   cursor skips rows of late-committing transactions: every visible row is claimable.
 * - FOR UPDATE SKIP LOCKED: another instance that briefly believes it owns the same shard
 *   (lock handover) does not wait on, nor double-claim, these rows.
 * - One LATERAL probe per shard in the order given (least recently served first), each
 *   limited, under an outer LIMIT: a quiet shard's rows are claimed in the very next batch
 *   even while another shard holds a large backlog, so a busy tenant cannot starve the
 *   tenants of other shards. Empty shards cost one index probe on (shard, id) each.
 * - The payload is read from event_log as text (`payload::text`), so it goes to Kafka
 *   without a parse and re-serialize in Node.
 * - `created_at` as epoch milliseconds (a float8, computed exactly in numeric first, which
 *   `extract` returns from Postgres 14 on; 13 would give a float8 and could be 1 ms low): node-postgres'
 *   timestamp parser was ~2 % of the relay's CPU in a drain; a Date holds milliseconds either way.
 * - Rows Kafka refused (attempts > 0) come first, by due time, through a partial index of
 *   their own (`outbox_retry_due_idx`, migration 0005), at most half the batch; the rows that
 *   never failed then fill it through `outbox_fresh_idx`, which holds only those. With one
 *   index for both, every probe of a shard read through all its refused rows waiting for
 *   their next try and threw them away: a tenant with 2,000 rows in backoff added ~1 ms to
 *   every claim of its relay, and the cost grows with the backlog, so one tenant Kafka refuses
 *   slowed every other tenant (`pnpm bench --only isolation`). The half keeps a wave of
 *   refused rows coming due together from holding back the others. The batch still goes out
 *   in id order (the final ORDER BY), so a retried row keeps its place before the later rows of
 *   its tenant claimed with it.
 * - `id = ANY (ARRAY(SELECT ...))`, not `DELETE ... USING claimed`: with USING, the planner
 *   hash-joined the claimed ids against a sequential scan of the whole outbox, so every
 *   batch read the entire backlog (EXPLAIN ANALYZE at 50k pending rows: 19 ms of a 46 ms
 *   claim). The array form deletes through the primary key: 17 ms for the same claim, and
 *   the raw claim loop of `pnpm bench --only relay` went from ~13k to 16–18k rows/s.
 */
export const CLAIM_BATCH_SQL = `
WITH claimed AS (
  (SELECT r.id FROM (
    SELECT o.id FROM eventbus.outbox o
    WHERE o.attempts > 0 AND o.next_attempt_at <= now() AND o.shard = ANY ($1::smallint[])
    ORDER BY o.next_attempt_at
    LIMIT greatest(1, $2 / 2)
    FOR UPDATE SKIP LOCKED
  ) r)
  UNION ALL
  (SELECT c.id
  FROM unnest($1::smallint[]) WITH ORDINALITY AS s(shard, position)
  CROSS JOIN LATERAL (
    SELECT o.id FROM eventbus.outbox o
    WHERE o.shard = s.shard AND o.attempts = 0 AND o.next_attempt_at <= now()
    ORDER BY o.id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
  ) c)
  LIMIT $2
), deleted AS (
  DELETE FROM eventbus.outbox o WHERE o.id = ANY (ARRAY(SELECT id FROM claimed))
  RETURNING o.id, o.event_id, o.shard, o.attempts, o.first_failed_at
)
SELECT d.id::text AS outbox_id, d.shard, d.attempts, d.first_failed_at,
       e.id::text AS id, e.tenant_id, e.project_id, e.event_key, e.event_type, e.event_version,
       e.payload::text AS payload_json, e.correlation_id, e.causation_id,
       (extract(epoch FROM e.created_at) * 1000)::float8 AS created_at_ms,
       e.traceparent, e.tracestate
FROM deleted d JOIN eventbus.event_log e ON e.id = d.event_id
ORDER BY d.id`;

/**
 * Run once on each claim connection (two statements, one simple-protocol round trip).
 *
 * `enable_bitmapscan = off`: with a backlog, the planner reads each probed shard through a
 * bitmap scan of all its pending rows, sorts them and keeps the first `limit`: at 1,000 of
 * ~1,250 rows per shard its cost model prefers that to an index scan in (shard, id) order,
 * which stops after `limit` rows and needs no sort. Measured on the raw claim loop (100k
 * pending rows, batches of 1,000): 15k → 32k rows/s, and Postgres' CPU per row halved
 * (68 → 34 µs). Nothing else on the claim connection (shard locks, heartbeats, dead-letter
 * writes by primary key) gains from bitmap scans.
 *
 * `synchronous_commit = off`: the claim transaction's COMMIT returns without waiting for
 * its WAL to reach disk (1.3–3 ms per commit on a single-disk machine against ~0.4 ms,
 * pgbench), and every event waits for its lane's commit before the lane claims again. What
 * Postgres could lose is up to about 3 × wal_writer_delay (600 ms by default) of these
 * commits, and only on a crash or failover of Postgres itself (not of the relay): their
 * deletes come back, so those rows are published again, at-least-once duplicates beside the
 * batch in flight that a relay dying before its COMMIT re-sends. Nothing else a claim transaction writes needs durability
 * before that commit: the Kafka send happened before it, and a lost failure count or
 * dead-letter move rolls back together with its row's delete (WAL is replayed in order, so
 * a later commit is never kept without an earlier one). Producers' transactions, the
 * consumer's inbox and the DLQ mirror (which commit Kafka offsets after Postgres) keep
 * synchronous commits.
 */
export const CLAIM_SESSION_SQL = 'SET enable_bitmapscan = off; SET synchronous_commit = off';

export async function claimBatch(client: pg.ClientBase, shardsInOrder: readonly number[], limit: number): Promise<ClaimedRow[]> {
  const { rows } = await client.query(CLAIM_BATCH_SQL, [shardsInOrder, limit]);
  return rows.map(claimedRowFrom);
}

/**
 * One object literal with every field, not `{ ...storedEventFromRow(r), ... }`: the spread
 * would build each row twice and grow the second object's property store field by field,
 * ~0.4 KB of garbage per event at 10,000+ events/s (`BENCH_ALLOC_PROFILE=1`, docs/performance.md#memory).
 * The columns are CLAIM_BATCH_SQL's, named as storedEventFromRow reads them.
 */
// biome-ignore lint/suspicious/noExplicitAny: a pg row whose column types CLAIM_BATCH_SQL, not TypeScript, fixes
function claimedRowFrom(r: Record<string, any>): ClaimedRow {
  return {
    outboxId: r.outbox_id,
    shard: r.shard,
    attempts: r.attempts,
    firstFailedAt: r.first_failed_at,
    id: r.id,
    tenantId: r.tenant_id,
    projectId: r.project_id,
    eventKey: r.event_key,
    eventType: r.event_type,
    version: r.event_version,
    payloadJson: r.payload_json,
    correlationId: r.correlation_id,
    causationId: r.causation_id,
    createdAt: new Date(r.created_at_ms),
    traceparent: r.traceparent,
    tracestate: r.tracestate,
  };
}
