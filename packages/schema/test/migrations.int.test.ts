import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { pendingMigrations, runMigrations, SHARD_COUNT, shardForTenant } from '@eventbus/schema';

// The schema package's own guarantees, on real Postgres, each on a fresh database with no
// schema: migrators that start together apply each migration once, a second run applies
// nothing, the dry run lists exactly what a run applies, and the event log refuses to change.
// (No @eventbus/dev-services here: it depends on this package.)

const serverUrl = (inject as unknown as (key: string) => string)('databaseUrl');
const created: string[] = [];

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A new, empty database (no eventbus schema), dropped after the file. */
async function emptyDatabase(label: string): Promise<string> {
  const name = `eb_schema_${label}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}"`));
  created.push(name);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function query<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

afterAll(async () => {
  for (const name of created) await admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
});

describe('runMigrations', () => {
  it('applies each migration exactly once when five migrators start together', async () => {
    const url = await emptyDatabase('together');
    const runs = await Promise.all(Array.from({ length: 5 }, () => runMigrations({ connectionString: url })));
    const [{ n }] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM eventbus.__drizzle_migrations');
    expect(n).toBeGreaterThanOrEqual(5);
    // One run applied everything; the four that waited for the lock found nothing to do.
    expect(runs.map((r) => r.applied).sort((a, b) => b - a)).toEqual([n, 0, 0, 0, 0]);
  });

  it('applied twice, the second run applies nothing and changes no table', async () => {
    const url = await emptyDatabase('twice');
    const first = await runMigrations({ connectionString: url });
    const tables = () => query<{ t: string }>(url, `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'eventbus' ORDER BY 1`);
    const before = await tables();
    expect(first.applied).toBeGreaterThan(0);
    expect((await runMigrations({ connectionString: url })).applied).toBe(0);
    expect(await tables()).toEqual(before);
  });

  it('pendingMigrations lists what a run then applies, and nothing after it', async () => {
    const url = await emptyDatabase('pending');
    const pending = await pendingMigrations({ connectionString: url });
    expect(pending[0]).toMatch(/^0000_/);
    const { applied } = await runMigrations({ connectionString: url });
    expect(applied).toBe(pending.length);
    expect(await pendingMigrations({ connectionString: url })).toEqual([]);
  });
});

describe('eventbus.event_log is append-only', () => {
  let url: string;
  let id: string;
  beforeAll(async () => {
    url = await emptyDatabase('appendonly');
    await runMigrations({ connectionString: url });
    id = randomUUID();
    await query(
      url,
      `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id) VALUES ($1, 'acme', 'k1', 'order.placed', '{}', 'c1')`,
      [id],
    );
  });

  it.each([
    ['UPDATE', `UPDATE eventbus.event_log SET payload = '{"x":1}'`],
    ['DELETE', 'DELETE FROM eventbus.event_log'],
    ['TRUNCATE', 'TRUNCATE eventbus.event_log'],
  ])('refuses %s with restrict_violation and a message that says what to do', async (op, sql) => {
    const error = await query(url, sql).then(
      () => undefined,
      (e: { code?: string; message: string }) => e,
    );
    expect(error?.code).toBe('23001');
    expect(error?.message).toContain(`eventbus.event_log is append-only: ${op} is not allowed`);
    expect(await query(url, 'SELECT id FROM eventbus.event_log')).toEqual([{ id }]);
  });

  it('lets a retention delete through only when its transaction says so', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL eventbus.allow_event_log_delete = 'on'`);
      expect((await client.query('DELETE FROM eventbus.event_log WHERE id = $1', [id])).rowCount).toBe(1);
      await client.query('COMMIT');
      // SET LOCAL ended with its transaction: a delete after it is refused again.
      const next = randomUUID();
      await client.query(
        `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id) VALUES ($1, 'acme', 'k2', 'order.placed', '{}', 'c2')`,
        [next],
      );
      await expect(client.query('DELETE FROM eventbus.event_log')).rejects.toThrow(/append-only/);
      expect(await query(url, 'SELECT id FROM eventbus.event_log')).toEqual([{ id: next }]);
    } finally {
      await client.end();
    }
  });
});

describe('shardForTenant', () => {
  it('is stable and spreads tenants over all shards', () => {
    expect(shardForTenant('tenant-abc')).toBe(shardForTenant('tenant-abc'));
    const used = new Set(Array.from({ length: 2000 }, (_, i) => shardForTenant(`tenant-${i}`)));
    expect(used.size).toBe(SHARD_COUNT);
    for (const s of used) expect(s).toBeGreaterThanOrEqual(0);
  });
});
