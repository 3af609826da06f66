import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { uniqueName, withDatabase } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';
import { SHARD_LOCK_NAMESPACE, shardForTenant } from '@eventbus/schema';
import { cliFixture, runCli, runCliInProcess, seedEvents } from './cli-fixture.js';

let f: Awaited<ReturnType<typeof cliFixture>>;
beforeAll(async () => {
  f = await cliFixture('cli-status');
});
afterAll(async () => f?.close());

describe('eventbus migrate, outbox status, stats, help and exit codes (the CLI as a process)', () => {
  it('migrate applies the schema once, then finds it up to date', async () => {
    const name = uniqueName('eb_cli_migrate_');
    const admin = new pg.Client({ connectionString: testServices().databaseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    try {
      const env = { DATABASE_URL: withDatabase(testServices().databaseUrl, name) };
      // --dry-run lists what would be applied and applies nothing.
      const dry = await runCli(['migrate', '--dry-run', '--json'], env);
      expect(dry.code, dry.stderr).toBe(0);
      const pending: string[] = dry.json().pending;
      expect(pending.length).toBeGreaterThan(0);
      expect(pending[0]).toMatch(/^0000_/);
      const probe = new pg.Client({ connectionString: env.DATABASE_URL });
      await probe.connect();
      expect((await probe.query(`SELECT to_regclass('eventbus.event_log') AS t`)).rows[0].t).toBeNull();
      await probe.end();
      const first = await runCli(['migrate', '--json'], env);
      expect(first.code, first.stderr).toBe(0);
      expect(first.json().applied).toBeGreaterThan(0);
      expect(first.json().applied).toBe(pending.length);
      const second = await runCli(['migrate'], env);
      expect([second.code, second.stdout]).toEqual([0, 'schema is up to date\n']);
      const dryAfter = await runCli(['migrate', '--dry-run'], env);
      expect([dryAfter.code, dryAfter.stdout]).toEqual([0, 'schema is up to date\n']);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    }
  });

  it('outbox status: pending, failing and oldest age per shard, and which relay holds each shard', async () => {
    const busy = uniqueName('busy-');
    let quiet = uniqueName('quiet-');
    while (shardForTenant(quiet) === shardForTenant(busy)) quiet = uniqueName('quiet-');
    await seedEvents(f.pool, { tenantId: busy, count: 30, start: new Date(Date.now() - 600_000).toISOString(), types: ['order.placed'] });
    await seedEvents(f.pool, { tenantId: quiet, count: 2, start: new Date(Date.now() - 60_000).toISOString(), types: ['order.placed'] });
    await f.pool.query(`INSERT INTO eventbus.outbox (event_id, shard) SELECT id, $2 FROM eventbus.event_log WHERE tenant_id = $1 ORDER BY created_at`, [
      busy,
      shardForTenant(busy),
    ]);
    await f.pool.query(
      `INSERT INTO eventbus.outbox (event_id, shard, attempts, last_error) SELECT id, $2, 2, 'MESSAGE_TOO_LARGE' FROM eventbus.event_log WHERE tenant_id = $1`,
      [quiet, shardForTenant(quiet)],
    );
    // A relay lane holds the busy tenant's shard the way the relay does: a session advisory
    // lock on a connection named after the lane, plus its heartbeat row.
    const lane = new pg.Client({ connectionString: f.database.url, application_name: 'eventbus-relay lane-under-test' });
    await lane.connect();
    try {
      await lane.query('SELECT pg_advisory_lock($1, $2)', [SHARD_LOCK_NAMESPACE, shardForTenant(busy)]);
      await lane.query(`INSERT INTO eventbus.relay_instances (instance_id, host, pid, shards) VALUES ('lane-under-test', 'host-a', 4242, $1::smallint[])`, [
        [shardForTenant(busy)],
      ]);

      const run = await runCli(['outbox', 'status', '--json'], f.env('x.'));
      expect(run.code, run.stderr).toBe(0);
      const status = run.json();
      expect(status).toMatchObject({ pending: 32, failing: 2, shardsHeld: 1 });
      expect(status.oldestAgeSeconds).toBeGreaterThan(500);
      expect(status.shards).toHaveLength(64);
      expect(status.shards[shardForTenant(busy)]).toMatchObject({ pending: 30, failing: 0, heldBy: 'lane-under-test' });
      expect(status.shards[shardForTenant(busy)].oldestAgeSeconds).toBeGreaterThan(500);
      expect(status.shards[shardForTenant(quiet)]).toMatchObject({ pending: 2, failing: 2, heldBy: null });
      expect(status.relayInstances).toEqual([expect.objectContaining({ instanceId: 'lane-under-test', host: 'host-a', pid: 4242 })]);

      const text = await runCli(['outbox', 'status'], f.env('x.'));
      expect(text.stdout).toMatch(/^pending: 32 {3}failing: 2 {3}oldest pending: 1\dm/);
      expect(text.stdout).toMatch(new RegExp(`\\n${shardForTenant(busy)}\\s+30\\s+0\\s+\\S+ \\S+\\s+lane-under-test`));
      expect(text.stdout).toMatch(new RegExp(`\\n${shardForTenant(quiet)}\\s+2\\s+2\\s+.*nobody`));
    } finally {
      await lane.end();
    }
  });

  it('stats: backlog, oldest pending age, DLQ by group and stage, publish rate over the window', async () => {
    const tenant = uniqueName('stats-');
    const before = (await runCli(['stats', '--window', '1h', '--json'], f.env('x.'))).json();
    // 40 events in the last hour (one a minute from 50 minutes ago), 10 of them still pending; 5 from three hours ago.
    await seedEvents(f.pool, {
      tenantId: tenant,
      count: 40,
      start: new Date(Date.now() - 50 * 60_000).toISOString(),
      types: ['order.placed'],
      keyPrefix: 'recent-',
    });
    await seedEvents(f.pool, {
      tenantId: tenant,
      count: 5,
      start: new Date(Date.now() - 3 * 3_600_000).toISOString(),
      types: ['order.placed'],
      keyPrefix: 'old-',
    });
    await f.pool.query(
      `INSERT INTO eventbus.outbox (event_id, shard) SELECT id, 1 FROM eventbus.event_log WHERE tenant_id = $1 AND event_key LIKE 'recent-%' ORDER BY created_at DESC LIMIT 10`,
      [tenant],
    );
    const deadLetter = (key: string, stage: string, group: string | null, status: string) =>
      f.pool.query(
        `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, error_class, error_message, attempts, first_failed_at, last_failed_at, status)
         VALUES ($1, $2, $3, 'Error', 'boom', 1, now(), now(), $4)`,
        [key, stage, group, status],
      );
    await deadLetter(uniqueName('a'), 'consumer', 'billing', 'pending');
    await deadLetter(uniqueName('b'), 'consumer', 'billing', 'pending');
    await deadLetter(uniqueName('c'), 'consumer', 'billing', 'redriven');
    await deadLetter(uniqueName('d'), 'consumer', 'mailer', 'discarded');
    await deadLetter(uniqueName('e'), 'relay', null, 'pending');

    const run = await runCli(['stats', '--window', '1h', '--json'], f.env('x.'));
    expect(run.code, run.stderr).toBe(0);
    const stats = run.json();
    expect(stats.windowSeconds).toBe(3600);
    expect(stats.written - before.written).toBe(40);
    expect(stats.published - before.published).toBe(30);
    expect(stats.publishedPerSecond).toBeCloseTo(stats.published / 3600, 2);
    expect(stats.backlog.pending - before.backlog.pending).toBe(10);
    expect(stats.backlog.oldestAgeSeconds).toBeGreaterThan(0);
    expect(stats.deadLetters).toEqual([
      { stage: 'consumer', groupId: 'billing', pending: 2, redriven: 1, discarded: 0, newInWindow: 3 },
      { stage: 'consumer', groupId: 'mailer', pending: 0, redriven: 0, discarded: 1, newInWindow: 1 },
      { stage: 'relay', groupId: null, pending: 1, redriven: 0, discarded: 0, newInWindow: 1 },
    ]);
    expect(stats.deadLettersPending).toBe(3);
    const text = await runCli(['stats', '--window', '1h'], f.env('x.'));
    expect(text.stdout).toMatch(/dead letters pending\s+3/);
    expect(text.stdout).toMatch(/consumer\s+billing\s+2\s+1\s+0\s+3/);
  });

  it('exit codes: 2 for usage errors, 3 for bad data, 4 when a service is unreachable (password never printed)', async () => {
    const env = f.env('x.');
    const unreachableDb = { ...env, DATABASE_URL: 'postgres://eventbus:s3cret-pw@127.0.0.1:1/nowhere' };
    const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
      [['frobnicate'], env, 2, /unknown command "frobnicate"/],
      [['dlq', 'explode'], env, 2, /unknown command "dlq explode"/],
      [['outbox', 'status', '--verbose'], env, 2, /Unknown option '--verbose'/],
      [['stats', '--window', '5x'], env, 2, /--window "5x" is invalid/],
      [['dlq', 'show', 'abc'], env, 2, /not a dead letter id/],
      [['dlq', 'list', '--status', 'gone'], env, 2, /--status "gone" is invalid/],
      [['outbox', 'status'], {}, 2, /set DATABASE_URL/],
      [['replay', '--tenant', 't'], { DATABASE_URL: env.DATABASE_URL! }, 2, /KAFKA_BROKERS/],
      [['dlq', 'show', '987654'], env, 3, /dead letter 987654 does not exist/],
      [['replay', '--tenant', 't', '--after', '01890a5d-ac96-774b-bcce-b302099a8057', '--dry-run'], env, 3, /has no event with this id/],
      [['outbox', 'status'], unreachableDb, 4, /cannot connect to Postgres at postgres:\/\/eventbus:\*\*\*@127\.0\.0\.1:1\/nowhere \(DATABASE_URL\)/],
      [['replay', '--tenant', 't'], { ...env, KAFKA_BROKERS: '127.0.0.1:1' }, 4, /cannot connect to Kafka at 127\.0\.0\.1:1 \(KAFKA_BROKERS\)/],
    ];
    const runs = await Promise.all(cases.map(([args, e]) => runCli(args, e)));
    cases.forEach(([args, , code, message], i) => {
      const run = runs[i]!;
      expect([args, run.code]).toEqual([args, code]);
      expect(run.stderr).toMatch(message);
      expect(run.stdout).toBe('');
      expect(run.stderr).not.toContain('s3cret-pw');
    });
  });

  it('--help on every command exits 0 and shows an example', async () => {
    const commands = [
      [],
      ['migrate'],
      ['replay'],
      ['dlq'],
      ['dlq', 'list'],
      ['dlq', 'show'],
      ['dlq', 'retry'],
      ['dlq', 'discard'],
      ['outbox', 'status'],
      ['stats'],
      ['prune'],
    ];
    for (const words of commands) {
      const run = await runCliInProcess([...words, '--help'], {});
      expect([words, run.code]).toEqual([words, 0]);
      expect(run.stdout).toMatch(/Example/);
      expect(run.stdout).toMatch(/^(Usage|eventbus)/);
    }
    const top = await runCli(['--help'], {});
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Exit codes:');
  });
});
