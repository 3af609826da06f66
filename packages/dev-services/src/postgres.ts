import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { migrationsFolder, runMigrations } from '@eventbus/schema';
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
 * the relay's lock keys include nothing database-specific, see note in the relay). A copy of
 * a database the migrations were applied to (see `migratedTemplate`).
 */
export async function createTestDatabase(serverUrl: string, label = 'test'): Promise<TestDatabase> {
  const name = `eb_${label
    .replace(/[^a-z0-9_]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const template = await migratedTemplate(serverUrl);
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl, name);
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

/** Template names by server and migrations, one making per process. */
const templates = new Map<string, Promise<string>>();

/**
 * A database with every migration applied, which `createTestDatabase` copies (CREATE DATABASE
 * ... TEMPLATE): a copy takes a fraction of the time of applying the migrations to each new
 * database, and a test run makes dozens. Named by a hash of the migration files, so a changed
 * migration gets a new template and concurrent runs (test workers, other checkouts) share one.
 * Migrated under a temporary name and renamed once complete, so nothing copies a half-migrated
 * template. Left on the server for the next run (one per version of the migrations).
 */
export async function migratedTemplate(serverUrl: string): Promise<string> {
  const folder = migrationsFolder();
  const hash = createHash('sha256');
  const files = [...readdirSync(folder).filter((f) => f.endsWith('.sql')), join('meta', '_journal.json')].sort();
  for (const file of files) hash.update(`${file}\n`).update(readFileSync(join(folder, file)));
  const name = `eb_template_${hash.digest('hex').slice(0, 16)}`;
  const key = `${serverUrl}\n${name}`;
  let template = templates.get(key);
  if (!template) {
    template = makeTemplate(serverUrl, name);
    templates.set(key, template);
    template.catch(() => templates.delete(key));
  }
  return template;
}

async function makeTemplate(serverUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    if ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount) return name;
    const building = `${name}_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE "${building}"`);
    try {
      await runMigrations({ connectionString: withDatabase(serverUrl, building) });
      await admin.query(`ALTER DATABASE "${building}" RENAME TO "${name}"`);
    } catch (error) {
      await admin.query(`DROP DATABASE IF EXISTS "${building}" WITH (FORCE)`).catch(() => undefined);
      // duplicate_database: another process finished the same template first.
      if ((error as { code?: string }).code === '42P04') return name;
      throw error;
    }
    return name;
  } finally {
    await admin.end();
  }
}

export function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
