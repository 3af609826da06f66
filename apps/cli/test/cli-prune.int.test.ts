import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '@eventbus/dev-services';
import { testDatabase } from '@eventbus/dev-services/test';
import { shardForTenant } from '@eventbus/schema';
import { eventIds, runCli, runCliInProcess, seedEvents, startCli } from './cli-fixture.js';

// Each test gets its own migrated database: a prune without --tenant acts on every tenant,
// so the counts a test expects are exact only if nothing else wrote there. Prune needs no Kafka.
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function freshDatabase(label: string) {
  const database = await testDatabase(label);
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pool.on('error', () => undefined);
  cleanups.push(async () => {
    await pool.end();
    await database.drop();
  });
  const rowCounts = async (): Promise<Record<string, number>> =>
    (
      await pool.query(`SELECT (SELECT count(*) FROM eventbus.event_log)::int AS event_log, (SELECT count(*) FROM eventbus.outbox)::int AS outbox,
        (SELECT count(*) FROM eventbus.dead_letters)::int AS dead_letters, (SELECT count(*) FROM eventbus.inbox)::int AS inbox`)
    ).rows[0];
  return { url: database.url, name: database.name, pool, env: { DATABASE_URL: database.url }, rowCounts };
}

const DAY_MS = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS).toISOString();

/** A dead letter with the given ages; returns its id. */
async function insertDeadLetter(
  pool: pg.Pool,
  row: {
    stage?: 'relay' | 'consumer';
    eventId?: string;
    tenant: string;
    status: 'pending' | 'redriven' | 'discarded';
    createdDaysAgo: number;
    changedDaysAgo: number | null;
  },
): Promise<string> {
  const stage = row.stage ?? 'consumer';
  const { rows } = await pool.query(
    `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, error_class, error_message, attempts,
       first_failed_at, last_failed_at, status, status_changed_at, created_at)
     VALUES ($1, $2, $3, $4, $5, 'order.placed', 'Error', 'boom', 1, $6, $6, $7, $8, $6) RETURNING id::text`,
    [
      stage === 'relay' ? `relay:${row.eventId}` : uniqueName('consumer:billing:'),
      stage,
      stage === 'relay' ? null : 'billing',
      row.eventId ?? null,
      row.tenant,
      daysAgo(row.createdDaysAgo),
      row.status,
      row.changedDaysAgo === null ? null : daysAgo(row.changedDaysAgo),
    ],
  );
  return rows[0].id;
}

describe('eventbus prune (the CLI as a process, real Postgres)', () => {
  it('event log: deletes old events of every tenant in batches; keeps recent ones, those still in the outbox and those of a pending relay dead letter; bad input, a refused run and --dry-run delete nothing; a plain DELETE is still refused', async () => {
    const db = await freshDatabase('cli-prune-log');
    const [acme, globex, initech] = ['acme', 'globex', 'initech'].map((t) => uniqueName(`${t}-`));
    await seedEvents(db.pool, { tenantId: acme!, count: 40, start: daysAgo(400), types: ['order.placed'], keyPrefix: 'old-' });
    await seedEvents(db.pool, { tenantId: acme!, count: 5, start: daysAgo(1), types: ['order.placed'], keyPrefix: 'new-' });
    await seedEvents(db.pool, { tenantId: globex!, count: 3, start: daysAgo(90), types: ['order.placed'], keyPrefix: 'old-' });
    await seedEvents(db.pool, { tenantId: globex!, count: 2, start: daysAgo(2), types: ['order.placed'], keyPrefix: 'new-' });
    await seedEvents(db.pool, { tenantId: initech!, count: 4, start: daysAgo(29), types: ['order.placed'], keyPrefix: 'new-' });
    const acmeOld = await eventIds(db.pool, acme!, `event_key LIKE 'old-%'`);
    const acmeNew = await eventIds(db.pool, acme!, `event_key LIKE 'new-%'`);
    // The two oldest acme events were never published (a relay down for a year): still in the outbox.
    await db.pool.query('INSERT INTO eventbus.outbox (event_id, shard) SELECT unnest($1::uuid[]), $2', [acmeOld.slice(0, 2), shardForTenant(acme!)]);
    // Kafka refused the third for good: a pending relay dead letter, whose re-drive reads the event from the EventLog.
    await insertDeadLetter(db.pool, { stage: 'relay', eventId: acmeOld[2]!, tenant: acme!, status: 'pending', createdDaysAgo: 300, changedDaysAgo: null });
    // The fourth was dead-lettered and re-driven long ago: nothing needs it any more.
    await insertDeadLetter(db.pool, { stage: 'relay', eventId: acmeOld[3]!, tenant: acme!, status: 'redriven', createdDaysAgo: 300, changedDaysAgo: 299 });
    const before = await db.rowCounts();
    expect(before).toEqual({ event_log: 54, outbox: 2, dead_letters: 2, inbox: 0 });

    // Bad input: exit 2, a message naming the flag and what is expected, nothing on stdout.
    const bad: Array<[string[], RegExp]> = [
      [['prune'], /say what to prune: --event-log-older-than, --dead-letters-older-than and\/or --inbox-older-than, each with an age like 90d/],
      [['prune', '--event-log-older-than', '90'], /--event-log-older-than "90" is invalid: expected a duration like 15m, 1h or 7d/],
      [['prune', '--event-log-older-than=-30d'], /--event-log-older-than "-30d" is invalid/],
      [['prune', '--dead-letters-older-than', 'two weeks'], /--dead-letters-older-than "two weeks" is invalid: expected a duration/],
      [['prune', '--inbox-older-than', '0d'], /--inbox-older-than "0d" is invalid/],
      [['prune', '--event-log-older-than', '40000d'], /--event-log-older-than "40000d" is too long: at most 36500d/],
      [['prune', '--event-log-older-than'], /argument missing.*eventbus prune --help/],
      [['prune', '--event-log-older-than', '30d', '--batch-size', '0'], /--batch-size "0" is invalid: expected an integer from 1 to 50000/],
      [['prune', '--inbox-older-than', '30d', '--tenant', acme!], /--tenant does not apply to --inbox-older-than/],
      [['prune', '--event-log-older-than', '30d', '--tenant', ''], /--tenant must be a tenant id/],
      [['prune', '--event-log-older-than', '30d', '--older-than', '1d'], /Unknown option '--older-than'/],
      // A real run without a terminal to confirm on, and without --yes: refused, like every bulk action.
      [['prune', '--event-log-older-than', '30d'], /permanently delete 40 EventLog event\(s\) created before .*Refusing without --yes/],
    ];
    for (const [args, message] of bad) {
      const run = await runCliInProcess(args, db.env);
      expect([args, run.code]).toEqual([args, 2]);
      expect(run.stderr).toMatch(message);
      expect(run.stdout).toBe('');
    }
    expect(await db.rowCounts()).toEqual(before);

    // --dry-run: exact counts, nothing deleted.
    const dry = await runCli(['prune', '--event-log-older-than', '30d', '--dry-run', '--json'], db.env);
    expect(dry.code, dry.stderr).toBe(0);
    const planned = dry.json();
    expect(planned).toMatchObject({
      dryRun: true,
      interrupted: false,
      eventLog: { olderThan: '30d', tenant: null, matched: 40, deleted: 0, keptInOutbox: 2, keptForDeadLetters: 1 },
      deadLetters: null,
      inbox: null,
    });
    expect(Math.abs(Date.parse(planned.eventLog.cutoff) - (Date.now() - 30 * DAY_MS))).toBeLessThan(60_000);
    expect(await db.rowCounts()).toEqual(before);

    // The run: 37 acme events (a tenant alone, 6 batches of 7) and globex's 3 (one more batch), in batches of 7.
    const run = await runCli(['prune', '--event-log-older-than', '30d', '--batch-size', '7', '--yes', '--json'], db.env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ dryRun: false, interrupted: false, eventLog: { matched: 40, deleted: 40, keptInOutbox: 2, keptForDeadLetters: 1 } });
    // Progress on stderr (a pipe: plain lines); the hint about the unpublished events too.
    expect(run.stderr).toMatch(/progress \(event log\): 7\/40 /);
    expect(run.stderr).toContain('note: 2 event(s) older than the cutoff are still in the outbox, not yet published, and are kept');

    expect(await eventIds(db.pool, acme!)).toEqual([...acmeOld.slice(0, 3), ...acmeNew]);
    expect(await eventIds(db.pool, globex!, `event_key LIKE 'old-%'`)).toEqual([]);
    expect((await eventIds(db.pool, globex!)).length).toBe(2);
    expect((await eventIds(db.pool, initech!)).length).toBe(4); // 29 days old: inside the 30 days kept
    // The outbox rows still find their events: the relay's claim joins event_log and would drop an orphan unpublished.
    expect((await db.pool.query('SELECT count(*)::int AS n FROM eventbus.outbox o JOIN eventbus.event_log e ON e.id = o.event_id')).rows[0].n).toBe(2);
    expect(await db.rowCounts()).toEqual({ event_log: 14, outbox: 2, dead_letters: 2, inbox: 0 });

    // The trigger still guards the EventLog against everyone else: a plain DELETE (or UPDATE, TRUNCATE) is refused.
    await expect(db.pool.query('DELETE FROM eventbus.event_log WHERE tenant_id = $1', [acme])).rejects.toThrow(
      /event_log is append-only: DELETE is not allowed/,
    );
    await expect(db.pool.query('TRUNCATE eventbus.event_log')).rejects.toThrow(/append-only/);
    expect((await db.rowCounts()).event_log).toBe(14);

    // Again, in text: nothing left to delete, the kept rows said again; no question asked when nothing matches.
    const again = await runCli(['prune', '--event-log-older-than', '30d'], db.env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      /^event log: {5}deleted 0 of 0 event\(s\) created before \d{4}-\d\d-\d\dT[\d:.]+Z \(older than 30d\); kept 2 still in the outbox and 1 of pending relay dead letters\n$/,
    );
  });

  it('--tenant prunes only that tenant, in the EventLog and the dead letters', async () => {
    const db = await freshDatabase('cli-prune-tenant');
    const [acme, globex] = ['acme', 'globex'].map((t) => uniqueName(`${t}-`));
    for (const tenantId of [acme!, globex!]) {
      await seedEvents(db.pool, { tenantId, count: 5, start: daysAgo(60), types: ['order.placed'] });
      await insertDeadLetter(db.pool, { tenant: tenantId, status: 'discarded', createdDaysAgo: 60, changedDaysAgo: 59 });
    }
    const run = await runCli(['prune', '--event-log-older-than', '30d', '--dead-letters-older-than', '30d', '--tenant', acme!, '--yes'], db.env);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^event log: +deleted 5 of 5 event\\(s\\) of tenant ${acme} created before \\S+Z \\(older than 30d\\)$`));
    expect(lines[1]).toMatch(new RegExp(`^dead letters: +deleted 1 of 1 re-driven or discarded of tenant ${acme} before \\S+Z \\(older than 30d\\)$`));
    expect(await eventIds(db.pool, acme!)).toEqual([]);
    expect((await eventIds(db.pool, globex!)).length).toBe(5);
    expect((await db.pool.query('SELECT tenant_id FROM eventbus.dead_letters')).rows).toEqual([{ tenant_id: globex }]);
  });

  it('Ctrl-C stops after the batch in flight: what was deleted stays deleted (oldest first), the rest and the later tables are untouched; running again finishes', async () => {
    const db = await freshDatabase('cli-prune-int');
    const tenant = uniqueName('slow-');
    await seedEvents(db.pool, { tenantId: tenant, count: 100, start: daysAgo(200), types: ['order.placed'] });
    const ids = await eventIds(db.pool, tenant);
    const deadLetter = await insertDeadLetter(db.pool, { tenant, status: 'discarded', createdDaysAgo: 100, changedDaysAgo: 99 });

    // Another session holds a row lock on the 25th oldest event: the prune's third batch of 10
    // (events 21-30) waits for it, which pins down where the interrupt lands.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM eventbus.event_log WHERE id = $1 FOR UPDATE', [ids[24]]);
      const args = ['prune', '--event-log-older-than', '30d', '--dead-letters-older-than', '30d', '--batch-size', '10', '--yes', '--json'];
      const running = startCli(args, db.env);
      await waitFor(
        async () =>
          // Not through `blocker`: inside its open transaction pg_stat_activity is a snapshot taken at first read.
          (
            await db.pool.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'eventbus-cli' AND wait_event_type = 'Lock'`,
              [db.name],
            )
          ).rows[0].n === 1,
        { timeoutMs: 30_000, message: 'the prune waiting on the locked event' },
      );
      running.child.kill('SIGINT');
      await waitFor(() => running.stderr().includes('stopping after'), { timeoutMs: 10_000, message: 'the CLI saw Ctrl-C' });
      await blocker.query('COMMIT');

      const stopped = await running.done;
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(stopped.json()).toMatchObject({
        interrupted: true,
        eventLog: { matched: 100, deleted: 30 },
        deadLetters: { matched: 1, deleted: 0 },
      });
      expect(stopped.stderr).toMatch(
        /interrupted after \S+: deleted 30 event\(s\), 0 dead letter\(s\); what is deleted stays deleted, the rest is untouched\. Run the same command again to go on\./,
      );
      expect(await eventIds(db.pool, tenant)).toEqual(ids.slice(30));
      expect((await db.pool.query('SELECT id::text FROM eventbus.dead_letters')).rows).toEqual([{ id: deadLetter }]);

      const resumed = await runCli(args, db.env);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.json()).toMatchObject({ interrupted: false, eventLog: { matched: 70, deleted: 70 }, deadLetters: { matched: 1, deleted: 1 } });
      expect(await db.rowCounts()).toEqual({ event_log: 0, outbox: 0, dead_letters: 0, inbox: 0 });
    } finally {
      await blocker.end();
    }
  });

  it('a connection lost mid-run fails with exit 4 and says what was deleted before it', async () => {
    const db = await freshDatabase('cli-prune-fail');
    const tenant = uniqueName('lost-');
    await seedEvents(db.pool, { tenantId: tenant, count: 50, start: daysAgo(200), types: ['order.placed'] });
    const ids = await eventIds(db.pool, tenant);
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM eventbus.event_log WHERE id = $1 FOR UPDATE', [ids[25]]); // in the third batch of 10
      const running = startCli(['prune', '--event-log-older-than', '30d', '--batch-size', '10', '--yes'], db.env);
      const waiting = async () =>
        (
          await db.pool.query(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'eventbus-cli' AND wait_event_type = 'Lock'`, [
            db.name,
          ])
        ).rows;
      await waitFor(async () => (await waiting()).length === 1, { timeoutMs: 30_000, message: 'the prune waiting on the locked event' });
      // An administrator (or a failover) ends the prune's session while its third batch waits.
      await db.pool.query('SELECT pg_terminate_backend($1)', [(await waiting())[0].pid]);
      const failed = await running.done;
      expect(failed.code, failed.stderr).toBe(4);
      expect(failed.stderr).toContain('stopped by an error after deleting 20 event(s); what is deleted stays deleted. Run the same command again to go on.');
      expect(failed.stdout).toBe('');
      await blocker.query('COMMIT');
      expect(await eventIds(db.pool, tenant)).toEqual(ids.slice(20));
    } finally {
      await blocker.end();
    }
  });

  it('dead letters: deletes only those re-driven or discarded before the cutoff; pending ones are kept, however old, and the output says so', async () => {
    const db = await freshDatabase('cli-prune-dlq');
    const tenant = uniqueName('shop-');
    const row = (status: 'pending' | 'redriven' | 'discarded', createdDaysAgo: number, changedDaysAgo: number | null) =>
      insertDeadLetter(db.pool, { tenant, status, createdDaysAgo, changedDaysAgo });
    const oldPending = await row('pending', 100, null);
    const oldPendingAgain = await row('pending', 45, 40); // dead-lettered again by the relay: pending, with a status_changed_at
    const newPending = await row('pending', 1, null);
    const oldRedriven = await row('redriven', 100, 60);
    const oldDiscarded = await row('discarded', 100, 45);
    const resolvedByHand = await row('discarded', 100, null); // no status_changed_at: aged by when it was dead-lettered
    const recentlyRedriven = await row('redriven', 100, 1); // failed long ago, re-driven yesterday: kept
    const recentlyDiscarded = await row('discarded', 2, 1);

    const dry = await runCli(['prune', '--dead-letters-older-than', '30d', '--dry-run', '--json'], db.env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json()).toMatchObject({
      dryRun: true,
      eventLog: null,
      inbox: null,
      deadLetters: { olderThan: '30d', tenant: null, matched: 3, deleted: 0, pendingKept: 2 },
    });
    expect((await db.rowCounts()).dead_letters).toBe(8);

    const run = await runCli(['prune', '--dead-letters-older-than', '30d', '--batch-size', '2', '--yes'], db.env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^dead letters: {2}deleted 3 of 3 re-driven or discarded before \S+Z \(older than 30d\); kept 2 pending\n$/);
    expect(run.stderr).toMatch(
      /note: 2 pending dead letter\(s\) were dead-lettered before \S+Z; pending ones are never pruned: re-drive or discard them \(eventbus dlq list\)/,
    );
    const left = (await db.pool.query('SELECT id::text FROM eventbus.dead_letters ORDER BY id')).rows.map((r) => r.id);
    expect(left).toEqual([oldPending, oldPendingAgain, newPending, recentlyRedriven, recentlyDiscarded]);
    expect(left).not.toContain(oldRedriven);
    expect(left).not.toContain(oldDiscarded);
    expect(left).not.toContain(resolvedByHand);
  });

  it('dead letters: a resolved row that becomes pending again while the prune waits for it is kept', async () => {
    const db = await freshDatabase('cli-prune-dlq-race');
    const tenant = uniqueName('shop-');
    const id = await insertDeadLetter(db.pool, { tenant, status: 'discarded', createdDaysAgo: 100, changedDaysAgo: 90 });
    // The relay dead-letters the same event again (its upsert sets status = 'pending') and has not committed yet.
    const relay = new pg.Client({ connectionString: db.url });
    await relay.connect();
    try {
      await relay.query('BEGIN');
      await relay.query(`UPDATE eventbus.dead_letters SET status = 'pending', status_changed_at = now() WHERE id = $1`, [id]);
      const running = startCli(['prune', '--dead-letters-older-than', '30d', '--yes', '--json'], db.env);
      await waitFor(
        async () =>
          (
            await db.pool.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'eventbus-cli' AND wait_event_type = 'Lock'`,
              [db.name],
            )
          ).rows[0].n === 1,
        { timeoutMs: 30_000, message: 'the prune waiting on the row being updated' },
      );
      await relay.query('COMMIT');
      const run = await running.done;
      expect(run.code, run.stderr).toBe(0);
      // Counted as resolved (the committed state when it counted), but not deleted: it is pending now.
      expect(run.json()).toMatchObject({ deadLetters: { matched: 1, deleted: 0 } });
      expect((await db.pool.query('SELECT id::text, status FROM eventbus.dead_letters')).rows).toEqual([{ id, status: 'pending' }]);
    } finally {
      await relay.end();
    }
  });

  it('inbox: deletes rows processed before the cutoff, walking the table in block ranges; recent rows stay', async () => {
    const db = await freshDatabase('cli-prune-inbox');
    // Old and recent rows interleaved on every block (a consumer group that lagged, then caught up).
    await db.pool.query(
      `INSERT INTO eventbus.inbox (group_id, event_id, processed_at)
       SELECT 'group-' || (i % 3), gen_random_uuid()::text, CASE WHEN i % 4 = 0 THEN now() - interval '1 hour' ELSE now() - interval '40 days' END
       FROM generate_series(1, 2000) AS i`,
    );
    const blocks = (await db.pool.query(`SELECT pg_relation_size('eventbus.inbox') / current_setting('block_size')::int AS n`)).rows[0].n;
    expect(Number(blocks)).toBeGreaterThan(5);

    const dry = await runCli(['prune', '--inbox-older-than', '30d', '--dry-run', '--json'], db.env);
    expect(dry.json()).toMatchObject({ dryRun: true, inbox: { olderThan: '30d', matched: 1500, deleted: 0 } });
    expect((await db.rowCounts()).inbox).toBe(2000);

    // Batches of 100 rows: one block per transaction (the table was never analyzed, ~100 rows a block assumed).
    const run = await runCli(['prune', '--inbox-older-than', '30d', '--batch-size', '100', '--yes', '--json'], db.env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ interrupted: false, inbox: { matched: 1500, deleted: 1500 }, eventLog: null, deadLetters: null });
    expect(run.stderr).toMatch(/progress \(inbox\): [\d,]+\/1,500 /);
    const left = (await db.pool.query(`SELECT count(*)::int AS n, min(processed_at) > now() - interval '2 hours' AS all_recent FROM eventbus.inbox`)).rows[0];
    expect(left).toEqual({ n: 500, all_recent: true });

    const text = await runCli(['prune', '--inbox-older-than', '30d'], db.env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^inbox: {9}deleted 0 of 0 row\(s\) processed before \S+Z \(older than 30d\)\n$/);
  });
});
