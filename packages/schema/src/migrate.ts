import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import pg from 'pg';
import { DEFAULT_CONNECT_TIMEOUT_MS, errorMessage, EventBusError, redactUrl } from '@eventbus/core';
import { MIGRATION_LOCK_NAMESPACE } from './shards.js';

/**
 * This package's drizzle/ folder (or EVENTBUS_MIGRATIONS_DIR, for images). The SQL ships in the
 * published package (`files`), so an installed @eventbus/schema finds it beside its dist/.
 */
export function migrationsFolder(): string {
  const fromEnv = process.env.EVENTBUS_MIGRATIONS_DIR;
  if (fromEnv) return fromEnv;
  // Both src/ and dist/ sit one level below the package root.
  return fileURLToPath(new URL('../drizzle', import.meta.url));
}

export interface MigrateOptions {
  connectionString: string;
  folder?: string;
  log?: (message: string) => void;
  /** Connect (TCP, TLS, authentication) within this many ms, else fail with DATABASE_UNAVAILABLE. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Aborting closes the connection: a run still waiting for another migrator's lock, or in the
   * middle of applying, ends with STOPPED. drizzle applies every pending migration in one
   * transaction, so an aborted run applied none of them.
   */
  signal?: AbortSignal;
}

/**
 * Applies pending migrations once, even when several instances start together: drizzle's
 * migrator takes no lock of its own (drizzle-orm #874), so every run first waits for a
 * session advisory lock, then the migrator skips what the previous holder applied.
 */
export async function runMigrations(options: MigrateOptions): Promise<{ applied: number }> {
  const folder = options.folder ?? migrationsFolder();
  if (!existsSync(folder)) throw new Error(`migrations folder not found: ${folder} (set EVENTBUS_MIGRATIONS_DIR)`);
  const client = await connect(options);
  const stop = () => void client.end().catch(() => undefined);
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    options.signal?.throwIfAborted();
    await client.query('SELECT pg_advisory_lock($1, 0)', [MIGRATION_LOCK_NAMESPACE]);
    const before = await countApplied(client);
    const { drizzle, migrate } = loadDrizzleMigrator();
    await migrate(drizzle(client), { migrationsFolder: folder, migrationsSchema: 'eventbus', migrationsTable: '__drizzle_migrations' });
    const applied = (await countApplied(client)) - before;
    options.log?.(applied === 0 ? 'migrations: up to date' : `migrations: applied ${applied}`);
    return { applied };
  } catch (error) {
    if (options.signal?.aborted)
      throw new EventBusError('STOPPED', 'migration stopped before it finished: no migration of this run was applied', { cause: error });
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', stop);
    // The session lock goes with the session; unlocking first only frees it sooner for a pooled server.
    await client.query('SELECT pg_advisory_unlock($1, 0)', [MIGRATION_LOCK_NAMESPACE]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

/**
 * drizzle's migrator, loaded on the first run and through `require`: a service that does not
 * migrate (or only checks the database) never loads drizzle-orm. `require`, not `import()`:
 * Node resolves every ES module drizzle imports against drizzle's ~180 KB package.json
 * `exports` map: on Node 24 `import()` of the migrator costs ~1.2 s of CPU and leaves ~70 MB
 * more RSS in the process (peak ~190 MB), `require` of its CommonJS build ~0.2 s and ~20 MB.
 * The migrator only needs a drizzle instance of its own build, so the two builds never meet.
 */
function loadDrizzleMigrator(): {
  drizzle: typeof import('drizzle-orm/node-postgres').drizzle;
  migrate: typeof import('drizzle-orm/node-postgres/migrator').migrate;
} {
  const require = createRequire(import.meta.url);
  const { drizzle } = require('drizzle-orm/node-postgres') as typeof import('drizzle-orm/node-postgres');
  const { migrate } = require('drizzle-orm/node-postgres/migrator') as typeof import('drizzle-orm/node-postgres/migrator');
  return { drizzle, migrate };
}

async function countApplied(client: pg.Client): Promise<number> {
  const exists = await client.query(`SELECT to_regclass('eventbus.__drizzle_migrations') AS t`);
  if (exists.rows[0]?.t === null) return 0;
  const result = await client.query('SELECT count(*)::int AS n FROM eventbus.__drizzle_migrations');
  return result.rows[0].n as number;
}

/**
 * The migrations `runMigrations` would apply, by name (the journal's tags), without applying
 * anything or taking the lock. drizzle's migrator applies every migration whose journal time
 * (`when`, stored as created_at) is later than the last one recorded; this reads the same.
 */
export async function pendingMigrations(options: Omit<MigrateOptions, 'log'>): Promise<string[]> {
  const folder = options.folder ?? migrationsFolder();
  const journalPath = join(folder, 'meta', '_journal.json');
  if (!existsSync(journalPath)) throw new Error(`migrations journal not found: ${journalPath} (set EVENTBUS_MIGRATIONS_DIR)`);
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: Array<{ tag: string; when: number }> };
  const client = await connect(options);
  try {
    const exists = await client.query(`SELECT to_regclass('eventbus.__drizzle_migrations') AS t`);
    let last = -Infinity;
    if (exists.rows[0]?.t !== null) {
      const { rows } = await client.query('SELECT max(created_at)::text AS last FROM eventbus.__drizzle_migrations');
      if (rows[0]?.last !== null && rows[0]?.last !== undefined) last = Number(rows[0].last);
    }
    return journal.entries.filter((e) => e.when > last).map((e) => e.tag);
  } finally {
    await client.end();
  }
}

/**
 * Connects once and disconnects: what a service that does not migrate at start runs instead,
 * so an unreachable database fails the start within the connect timeout, as a migrate would.
 */
export async function checkDatabase(options: Pick<MigrateOptions, 'connectionString' | 'connectTimeoutMs'>): Promise<void> {
  const client = await connect(options);
  await client.end();
}

/**
 * A connected client, or DATABASE_UNAVAILABLE (retriable) naming the address without its
 * password. Everything that fails before the session is ready counts: refused, unresolvable,
 * silent past the timeout, wrong password, missing database. Callers add which setting held
 * the URL.
 */
async function connect(options: Pick<MigrateOptions, 'connectionString' | 'connectTimeoutMs'>): Promise<pg.Client> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const client = new pg.Client({ connectionString: options.connectionString, application_name: 'eventbus-migrate', connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    // pg says only "timeout expired": say what timed out.
    const reason = /timeout/i.test(errorMessage(error)) ? `no answer within ${timeoutMs} ms` : errorMessage(error);
    throw new EventBusError('DATABASE_UNAVAILABLE', `cannot connect to Postgres at ${redactUrl(options.connectionString)}: ${reason}`, {
      cause: error,
      retriable: true,
    });
  }
}
