import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runMigrations } from '@eventbus/schema';
import { dockerAvailable } from './docker.js';
import { errorMessage, redactUrl } from '@eventbus/core';

export const LOCAL_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface ServiceHandle {
  /** Where to connect: a postgres:// URL or a comma-separated broker list. */
  address: string;
  /** How it was found: `env`, `testcontainers` or `local`. */
  source: 'env' | 'testcontainers' | 'local';
  /** Stops what this call started; a no-op for services that were already running. */
  stop(): Promise<void>;
}

/**
 * Postgres for tests, the demo and benchmarks: DATABASE_URL when set; otherwise a
 * testcontainers Postgres when a Docker engine answers; otherwise the local server.
 */
export async function ensurePostgres(log: (m: string) => void = () => {}): Promise<ServiceHandle> {
  if (process.env.DATABASE_URL) {
    await assertReachable(process.env.DATABASE_URL);
    return { address: process.env.DATABASE_URL, source: 'env', stop: async () => {} };
  }
  if (await dockerAvailable()) {
    log('postgres: starting a testcontainers postgres:15');
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:15-alpine').start();
    return { address: container.getConnectionUri(), source: 'testcontainers', stop: async () => void (await container.stop()) };
  }
  await assertReachable(LOCAL_DATABASE_URL);
  log(`postgres: using the local server ${LOCAL_DATABASE_URL}`);
  return { address: LOCAL_DATABASE_URL, source: 'local', stop: async () => {} };
}

async function assertReachable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(`Postgres is not reachable at ${redactUrl(url)}: ${errorMessage(error)}. Set DATABASE_URL or start Postgres.`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export { redactUrl };

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the database (terminating leftover connections). */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database of its own for one test file (or bench run), so files run in
 * parallel without seeing each other's rows and advisory locks... (locks are per server:
 * the relay's lock keys include nothing database-specific, see note in the relay).
 */
export async function createTestDatabase(serverUrl: string, label = 'test'): Promise<TestDatabase> {
  const name = `eb_${label
    .replace(/[^a-z0-9_]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl, name);
  await runMigrations({ connectionString: url });
  return {
    url,
    name,
    async drop() {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
