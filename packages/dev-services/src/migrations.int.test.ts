import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { testServices } from './test-env.js';
import { runMigrations, SHARD_COUNT, shardForTenant } from '@eventbus/schema';

const created: TestDatabase[] = [];
afterAll(async () => {
  for (const db of created) await db.drop();
});

describe('runMigrations (real Postgres)', () => {
  it('applies each migration exactly once when several instances start together', async () => {
    // createTestDatabase migrates; make an empty database instead by migrating a fresh one concurrently.
    const template = await createTestDatabase(testServices().databaseUrl, 'migrate');
    created.push(template);
    const admin = new pg.Client({ connectionString: testServices().databaseUrl });
    await admin.connect();
    const name = `${template.name}_fresh`;
    await admin.query(`CREATE DATABASE "${name}"`);
    await admin.end();
    const url = template.url.replace(template.name, name);
    created.push({ url, name, drop: async () => {
      const c = new pg.Client({ connectionString: testServices().databaseUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    } });

    const runs = await Promise.all(Array.from({ length: 5 }, () => runMigrations({ connectionString: url })));
    const totalApplied = runs.reduce((sum, r) => sum + r.applied, 0);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query('SELECT count(*)::int AS n FROM eventbus.__drizzle_migrations');
    await client.end();
    expect(rows[0].n).toBeGreaterThanOrEqual(2);
    // One run applied everything; the four that waited for the lock applied nothing.
    expect(totalApplied).toBe(rows[0].n);
    expect(runs.filter((r) => r.applied > 0)).toHaveLength(1);
    expect((await runMigrations({ connectionString: url })).applied).toBe(0);
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
