import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { TestDatabase } from '@eventbus/dev-services';
import { testDatabase } from '@eventbus/dev-services/test';
import { CLAIM_BATCH_SQL, CLAIM_SESSION_SQL, claimBatch } from '@eventbus/outbox';
import { SHARD_COUNT, shardForTenant } from '@eventbus/schema';

// The claim must not read a tenant's refused rows while they wait for their next try: the
// relay claims many times a second, and a claim that reads through a backlog in backoff makes
// every tenant of the relay wait for the one Kafka refuses (issue 16). And the refused rows,
// once due, come back into the batch, at most half of it, in id order with the rest.

const ALL_SHARDS = Array.from({ length: SHARD_COUNT }, (_, i) => i);
let database: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  database = await testDatabase('claim_backoff');
  client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query(CLAIM_SESSION_SQL);
  await client.query(`SET eventbus.notify = 'off'`);
});
afterAll(async () => {
  await client?.end();
  await database?.drop();
});

/** Writes `count` events of a tenant with their outbox rows: `attempts` and a due time `dueInS` from now. */
async function seed(tenantId: string, count: number, attempts: number, dueInS: number): Promise<void> {
  await client.query(
    `WITH e AS (
       INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id)
       SELECT gen_random_uuid(), $1, $1 || '-' || g, 'order.placed', jsonb_build_object('seq', g), 'c'
       FROM generate_series(1, $2::int) g RETURNING id, payload)
     INSERT INTO eventbus.outbox (event_id, shard, attempts, next_attempt_at)
     SELECT id, $3, $4, now() + make_interval(secs => $5) FROM e ORDER BY (payload->>'seq')::int`,
    [tenantId, count, shardForTenant(tenantId), attempts, dueInS],
  );
  await client.query('ANALYZE eventbus.outbox');
}

/** Sums "Rows Removed by Filter" and the rows read from the outbox over a plan tree (EXPLAIN ANALYZE, JSON). */
function outboxRowsRead(plan: Record<string, unknown>): number {
  const own =
    plan['Relation Name'] === 'outbox' ? Number(plan['Actual Rows'] ?? 0) * Number(plan['Actual Loops'] ?? 1) + Number(plan['Rows Removed by Filter'] ?? 0) : 0;
  return own + ((plan.Plans as Array<Record<string, unknown>> | undefined) ?? []).reduce((n, p) => n + outboxRowsRead(p), 0);
}

describe('the claim and rows in backoff', () => {
  it('does not read the 5,000 refused rows of a tenant waiting for their next try, and claims the healthy rows', async () => {
    await seed('refused-tenant', 5000, 2, 60);
    await seed('healthy-a', 20, 0, 0);
    await seed('healthy-b', 20, 0, 0);
    await client.query('BEGIN');
    try {
      const [
        {
          'QUERY PLAN': [explained],
        },
      ] = (await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${CLAIM_BATCH_SQL}`, [ALL_SHARDS, 500])).rows;
      // The healthy rows (40), the deleted ones again, the pkey probes: far below the 5,000.
      expect(outboxRowsRead(explained.Plan)).toBeLessThan(500);
    } finally {
      await client.query('ROLLBACK');
    }
    await client.query('BEGIN');
    const rows = await claimBatch(client, ALL_SHARDS, 500);
    await client.query('ROLLBACK');
    expect(rows.map((r) => r.tenantId).sort()).toEqual([...Array(20).fill('healthy-a'), ...Array(20).fill('healthy-b')]);
  });

  it('claims refused rows once due, at most half the batch, and sends the batch in id order', async () => {
    await client.query('TRUNCATE eventbus.outbox');
    await seed('due-tenant', 300, 1, -1);
    await seed('fresh-tenant', 300, 0, 0);
    await client.query('BEGIN');
    try {
      const rows = await claimBatch(client, ALL_SHARDS, 200);
      expect(rows).toHaveLength(200);
      // Half the batch for the due rows, so the others' rows are not held back by a wave of retries.
      expect(rows.filter((r) => r.tenantId === 'due-tenant')).toHaveLength(100);
      expect(rows.every((r) => (r.tenantId === 'due-tenant' ? r.attempts === 1 : r.attempts === 0))).toBe(true);
      const ids = rows.map((r) => BigInt(r.outboxId));
      expect(ids).toEqual([...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      // The due rows come oldest first: the tenant's first 100, in its own order.
      const seqs = rows.filter((r) => r.tenantId === 'due-tenant').map((r) => (JSON.parse(r.payloadJson) as { seq: number }).seq);
      expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    } finally {
      await client.query('ROLLBACK');
    }
  });
});
