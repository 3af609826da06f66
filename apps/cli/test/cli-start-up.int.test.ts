import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { TcpProxy, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase } from '@eventbus/dev-services/test';
import { MIGRATION_LOCK_NAMESPACE } from '@eventbus/schema';
import { runCli, startCli } from './cli-fixture.js';

// What an operator sees when the database is not there to talk to: every command that
// connects fails within DATABASE_CONNECT_TIMEOUT_MS with exit code 4, naming the setting and
// the address without its password; a malformed URL or flag value is exit code 2 saying what
// is wrong with it; a migrate stopped by SIGTERM while it waits for the lock ends at once.

let database: TestDatabase;
/** Accepts connections to Postgres and forwards nothing: a server that never answers. */
let silent: TcpProxy;
const PASSWORD = 's3cret-pw';

beforeAll(async () => {
  database = await testDatabase('clistartup');
  const url = new URL(database.url);
  silent = await new TcpProxy(url.hostname, Number(url.port || 5432)).start();
  silent.setMode('stall');
});
afterAll(async () => {
  await silent?.stop();
  await database?.drop();
});

const silentUrl = () => `postgres://eventbus:${PASSWORD}@127.0.0.1:${silent.port}/app`;

describe('eventbus against a Postgres that accepts connections and never answers', () => {
  it.each(['migrate', 'migrate --dry-run', 'dlq list', 'outbox status'])(
    'eventbus %s exits 4 within the connect timeout, naming DATABASE_URL without the password',
    async (command) => {
      // The same command against a port where nothing listens fails at once: its time is the
      // process' start and module loading, which a busy machine stretches to seconds.
      const refusedAt = Date.now();
      const refused = await runCli(command.split(' '), { DATABASE_URL: 'postgres://eventbus@127.0.0.1:1/app', DATABASE_CONNECT_TIMEOUT_MS: '1500' }, 20_000);
      const startMs = Date.now() - refusedAt;
      expect(refused.code, refused.stderr).toBe(4);
      const started = Date.now();
      const run = await runCli(command.split(' '), { DATABASE_URL: silentUrl(), DATABASE_CONNECT_TIMEOUT_MS: '1500' }, 20_000);
      const tookMs = Date.now() - started;
      expect(run.code, run.stderr).toBe(4);
      expect(run.stderr).toContain(`cannot connect to Postgres at postgres://eventbus:***@127.0.0.1:${silent.port}/app (DATABASE_URL)`);
      expect(run.stderr).toContain('no answer within 1500 ms (DATABASE_CONNECT_TIMEOUT_MS)');
      expect(run.stderr).not.toContain(PASSWORD);
      // The timeout, plus a process start; far below the 20 s the run was given.
      expect(tookMs).toBeGreaterThanOrEqual(1500);
      expect(tookMs, `a refused connection took ${startMs} ms`).toBeLessThan(startMs + 1500 + 5000);
    },
  );

  it('names --database-url when the address came from the flag', async () => {
    const run = await runCli(['migrate', '--database-url', silentUrl()], { DATABASE_CONNECT_TIMEOUT_MS: '1000' }, 20_000);
    expect(run.code, run.stderr).toBe(4);
    expect(run.stderr).toContain('(--database-url)');
    expect(run.stderr).not.toContain(PASSWORD);
  });
});

describe('eventbus with malformed settings', () => {
  it('a non-numeric port in DATABASE_URL is a usage error naming the variable, with the password redacted', async () => {
    const run = await runCli(['migrate'], { DATABASE_URL: `postgres://eventbus:${PASSWORD}@127.0.0.1:abc/app` });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('DATABASE_URL is invalid: postgres://eventbus:***@127.0.0.1:abc/app is not a URL (is the port a number?');
    expect(run.stderr).not.toContain(PASSWORD);
  });

  it('a DATABASE_CONNECT_TIMEOUT_MS that is not a number of ms is a usage error', async () => {
    const run = await runCli(['dlq', 'list'], { DATABASE_URL: database.url, DATABASE_CONNECT_TIMEOUT_MS: '5s' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('DATABASE_CONNECT_TIMEOUT_MS="5s" is invalid: expected an integer from 100 to 600000 (ms)');
  });

  it.each([
    [['replay', '--tenant', 'acme', '--rate', '-5'], '--rate "-5" is invalid: expected events per second, like 500'],
    [['dlq', 'list', '--limit', '-1'], '--limit "-1" is invalid: expected an integer from 1 to'],
    [['dlq', 'list', '--limit', '--json'], '--limit needs a value (see: eventbus dlq list --help)'],
  ])('%j says what is wrong with the value', async (args, message) => {
    const run = await runCli(args, { DATABASE_URL: database.url, KAFKA_BROKERS: '127.0.0.1:9' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });
});

describe('eventbus migrate stopped while it waits for another migrator', () => {
  it('SIGTERM ends it at once with exit 130 instead of waiting for the lock', async () => {
    // A session holding the migration lock, as a second migrator (a relay starting) would.
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1, 0)', [MIGRATION_LOCK_NAMESPACE]);
      const running = startCli(['migrate'], { DATABASE_URL: database.url });
      // It is waiting on the lock once Postgres shows its session blocked on an advisory lock.
      await waitFor(
        async () => {
          const { rows } = await holder.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'eventbus-migrate' AND wait_event = 'advisory'`,
          );
          return rows[0].n === 1;
        },
        { timeoutMs: 15_000, message: 'eventbus migrate never waited on the migration lock' },
      );
      const signalledAt = Date.now();
      running.child.kill('SIGTERM');
      const run = await running.done;
      expect(run.code, run.stderr).toBe(130);
      expect(Date.now() - signalledAt).toBeLessThan(5_000);
      expect(run.stderr).toContain('migration stopped before it finished: no migration of this run was applied');
    } finally {
      await holder.end();
    }
  });
});
