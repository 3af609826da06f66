import { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '@eventbus/dev-services';
import { EventConsumer } from '@eventbus/consumer';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { CLI_MAIN, cliFixture, createTopics, eventIds, runCli, runCliInProcess, seedEvents, startCli } from './cli-fixture.js';

let f: Awaited<ReturnType<typeof cliFixture>>;
beforeAll(async () => {
  f = await cliFixture('cli-replay');
});
afterAll(async () => f?.close());

const TYPES = ['product.created', 'product.updated', 'order.placed'];

describe('eventbus replay (the CLI as a process, real Postgres and Kafka)', () => {
  it('emits exactly the events of the date window and type filter, in order, with replay headers; --dry-run emits nothing', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const tenant = uniqueName('acme-');
    await seedEvents(f.pool, { tenantId: tenant, count: 180, start: '2026-01-01T00:00:00Z', types: TYPES });
    await seedEvents(f.pool, { tenantId: uniqueName('other-'), count: 180, start: '2026-01-01T00:00:00Z', types: TYPES });
    const from = '2026-01-01T00:30:00Z';
    const to = '2026-01-01T02:00:00Z';
    const expected = await eventIds(f.pool, tenant, `created_at BETWEEN $2 AND $3 AND event_type LIKE 'product.%'`, [from, to]);
    expect(expected.length).toBe(61); // minutes 30..120 inclusive, two types of three
    // The default target (every consumer group): a script says --yes.
    const args = ['replay', '--tenant', tenant, '--types', 'product.*', '--from', from, '--to', to, '--page-size', '25', '--json', '--yes'];

    const dry = await runCli([...args, '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.json()).toMatchObject({ dryRun: true, sent: 61, total: 61, first: { id: expected[0] }, last: { id: expected[60] }, interrupted: false });
    // --to is inclusive: the exclusive bound is one microsecond after it.
    expect(dry.json().upperBound).toEqual({ bound: '2026-01-01T02:00:00.000001Z', limitedBy: 'to', hiddenSessions: 0 });
    expect(await f.messageCount(`${prefix}product`)).toBe(0);

    await createTopics(f.brokers, [{ topic: `${prefix}product` }, { topic: `${prefix}order` }]);
    const collector = await f.collect([`${prefix}product`, `${prefix}order`]);
    const run = await runCli(args, env);
    expect(run.code, run.stderr).toBe(0);
    const result = run.json();
    expect(result).toMatchObject({ dryRun: false, sent: 61, total: 61, interrupted: false, resumeToken: expect.any(String) });
    await collector.waitForEvents(61, 20_000);
    // Exactly these: nothing else reached either topic (publish waits for acks, so the counts are final).
    expect(await f.messageCount(`${prefix}product`)).toBe(61);
    expect(await f.messageCount(`${prefix}order`)).toBe(0);
    // One tenant = one key = one partition: its offset order is the replay order.
    const received = [...collector.messages].sort((a, b) => Number(a.offset) - Number(b.offset));
    expect(new Set(received.map((m) => m.partition)).size).toBe(1);
    expect(received.map((m) => m.headers.ce_id)).toEqual(expected);
    for (const m of received) {
      expect(m.key).toBe(tenant);
      expect(m.headers).toMatchObject({ ce_replayid: result.replayId, ce_tenantid: tenant, ce_specversion: '1.0', 'content-type': 'application/json' });
      expect(m.headers.ce_type).toMatch(/^product\./);
    }
    const seq = received.map((m) => JSON.parse(m.value!).seq as number);
    expect(seq[0]).toBe(30);
    expect(seq[seq.length - 1]).toBe(120);
  });

  it('--event-id emits exactly the given events, not the others of their transaction; other filters narrow them; bad ids exit 2, unknown ones exit 3 sending nothing', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const tenant = uniqueName('by-id-');
    const topic = `${prefix}by-id`;
    await seedEvents(f.pool, { tenantId: tenant, count: 20, start: '2026-02-01T00:00:00Z', types: TYPES });
    // One transaction writes four events: they share created_at, so no --from/--to tells them apart.
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id)
       SELECT gen_random_uuid(), $1, 'tx-' || i, (ARRAY['order.placed', 'order.placed', 'order.placed', 'product.created'])[i], '{}', 'c'
       FROM generate_series(1, 4) i
       RETURNING id::text, event_type, created_at`,
      [tenant],
    );
    expect(new Set(rows.map((r) => r.created_at.getTime())).size).toBe(1);
    const [a, b, decoy, product] = rows.map((r) => r.id as string) as [string, string, string, string];
    const inOrder = (...ids: string[]) => [...ids].sort();
    const dryRun = async (...args: string[]) => {
      const run = await runCliInProcess(['replay', '--tenant', tenant, ...args, '--to-topic', topic, '--dry-run', '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      return JSON.parse(run.stdout);
    };
    // A comma list or the flag repeated (and either mixed, repeats and case aside): the same two events.
    for (const args of [
      ['--event-id', `${a},${b}`],
      ['--event-id', a, '--event-id', b],
      ['--event-id', `${b.toUpperCase()}, ${a}`, '--event-id', b],
    ]) {
      const dry = await dryRun(...args);
      expect({ args, total: dry.total, ids: [dry.first.id, dry.last.id] }).toEqual({ args, total: 2, ids: inOrder(a, b) });
    }
    // The other filters narrow the ids: --types leaves the product event of the four.
    expect(await dryRun('--event-id', `${a},${product}`, '--types', 'product.*')).toMatchObject({ total: 1, first: { id: product } });
    expect(await dryRun('--event-id', a, '--correlation-id', 'other')).toMatchObject({ total: 0 });

    await createTopics(f.brokers, [{ topic }]);
    const collector = await f.collect([topic]);
    const run = await runCli(['replay', '--tenant', tenant, '--event-id', `${a},${b}`, '--to-topic', topic, '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ sent: 2, total: 2, upperBound: { limitedBy: 'now' } });
    await collector.waitForEvents(2, 20_000);
    expect(await f.messageCount(topic)).toBe(2);
    expect(collector.messages.map((m) => m.headers.ce_id).sort()).toEqual(inOrder(a, b));
    expect(collector.messages.map((m) => m.headers.ce_id)).not.toContain(decoy);
    // The text report names no later events to replay with --from: the ids were the whole selection.
    const text = await runCliInProcess(['replay', '--tenant', tenant, '--event-id', a, '--to-topic', topic, '--dry-run'], env);
    expect(text.stdout).toMatch(/upper bound: events created before \S+ \(when the replay began\)$/m);

    // Malformed: usage errors (exit 2) naming the value, before any connection.
    for (const [args, message] of [
      [['--event-id', 'nope'], '--event-id "nope" is not an event id (a uuid)'],
      [['--event-id', `${a},${a.slice(0, -1)}`], `--event-id "${a.slice(0, -1)}" is not an event id (a uuid)`],
      [['--event-id', ' , '], '--event-id needs at least one event id (a uuid)'],
      [['--event-id'], '--event-id needs a value'],
    ] as const) {
      const bad = await runCliInProcess(['replay', '--tenant', tenant, ...args, '--to-topic', topic, '--dry-run'], env);
      expect([bad.code, bad.stdout, bad.stderr]).toEqual([2, '', expect.stringContaining(message)]);
    }
    // Unknown ids: one never written, one of another tenant. Exit 3 naming them, nothing sent, with or without --dry-run.
    const other = uniqueName('other-');
    await seedEvents(f.pool, { tenantId: other, count: 1, start: '2026-02-01T00:00:00Z', types: TYPES });
    const [othersEvent] = await eventIds(f.pool, other);
    const neverWritten = '01a25176-edf1-7497-9005-3b5a3891963a';
    const unknown = inOrder(othersEvent!, neverWritten);
    const refused = await runCli(['replay', '--tenant', tenant, '--event-id', `${a},${othersEvent},${neverWritten}`, '--to-topic', topic, '--json'], env);
    expect([refused.code, refused.stdout]).toEqual([3, '']);
    expect(refused.stderr).toContain(`eventbus: tenant "${tenant}" has no event ${unknown.join(', ')} in this EventLog`);
    expect(refused.stderr).toContain('nothing was replayed');
    const refusedDry = await runCliInProcess(['replay', '--tenant', tenant, '--event-id', `${neverWritten},${b}`, '--to-topic', topic, '--dry-run'], env);
    expect([refusedDry.code, refusedDry.stdout]).toEqual([3, '']);
    expect(await f.messageCount(topic)).toBe(2);
  });

  it("never emits another tenant's events (3 tenants, look-alike ids)", async () => {
    const prefix = f.prefix();
    const base = uniqueName('t');
    // "%" and "_" would widen a LIKE; a trailing space would match a sloppy comparison.
    const tenants = [base, `${base}%`, `${base.slice(0, -1)}_`];
    for (const [i, tenantId] of tenants.entries()) await seedEvents(f.pool, { tenantId, count: 20 + i * 5, start: '2026-02-01T00:00:00Z', types: TYPES });
    // The three replays at once, each to a topic of its own: most of each is a wait for Kafka.
    await Promise.all(
      tenants.map(async (tenantId, i) => {
        const topic = `${prefix}iso-${i}`;
        await createTopics(f.brokers, [{ topic }]);
        const collector = await f.collect([topic]);
        const run = await runCli(['replay', '--tenant', tenantId, '--to-topic', topic, '--json'], f.env(prefix));
        expect(run.code, run.stderr).toBe(0);
        expect(run.json().sent).toBe(20 + i * 5);
        await collector.waitForEvents(20 + i * 5, 20_000);
        expect(await f.messageCount(topic)).toBe(20 + i * 5);
        expect(new Set(collector.messages.map((m) => m.headers.ce_tenantid))).toEqual(new Set([tenantId]));
        expect(collector.messages.map((m) => m.headers.ce_id).sort()).toEqual((await eventIds(f.pool, tenantId)).sort());
      }),
    );
  });

  it('treats injection strings and garbage in every filter as a usage error or zero matches, changing no rows', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const tenant = uniqueName('inj-');
    await seedEvents(f.pool, { tenantId: tenant, count: 10, start: '2026-03-01T00:00:00Z', types: TYPES });
    const before = await f.rowCounts();
    const tables = async () => (await f.pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'eventbus'`)).rows[0].n;
    const tablesBefore = await tables();
    const attacks = ["' OR 1=1 --", '"; DROP TABLE eventbus.event_log; --', `${tenant}' OR '1'='1`];
    const zeroMatches: string[][] = [
      ...attacks.map((a) => ['--tenant', a]),
      ['--tenant', tenant, '--correlation-id', attacks[0]!],
      ['--tenant', 'x'.repeat(900)],
    ];
    const usageErrors: string[][] = [
      ['--tenant', tenant, '--types', attacks[0]!],
      ['--tenant', tenant, '--types', `product.*,${attacks[1]}`],
      ['--tenant', tenant, '--types', 'product.(.*)'],
      ['--tenant', tenant, '--from', attacks[0]!],
      ['--tenant', tenant, '--to', attacks[1]!],
      ['--tenant', tenant, '--after', attacks[0]!],
      ['--tenant', tenant, '--event-id', attacks[0]!],
      ['--tenant', tenant, '--resume', attacks[1]!],
      ['--tenant', tenant, '--to-topic', attacks[0]!],
      ['--tenant', 'x'.repeat(10_240)],
      ['--tenant', tenant, '--from', '2026-13-45'],
      ['--tenant', tenant, '--from', '2026-03-02', '--to', '2026-03-01'],
      ['--tenant', tenant, '--rate', '1; DROP'],
      ['--tenant', tenant, '--page-size', '-1'],
      ['--tenant', tenant, '--to-topic', 'a', '--group', 'b'],
      ['--types', 'product.*'],
    ];
    // (A NUL byte cannot travel in argv at all; the library test covers NUL in filters.)
    // The whole matrix runs in-process through the built CLI's entry function (a process
    // each would cost ~0.5 s of CPU apiece); a sample runs as real processes below.
    const cases = [...zeroMatches.map((args) => ({ args, expect: 'zero' })), ...usageErrors.map((args) => ({ args, expect: 'usage' }))];
    const check = (c: { args: string[]; expect: string }, run: { code: number | null; stdout: string; stderr: string }) => {
      if (c.expect === 'usage') {
        expect([run.code, c.args]).toEqual([2, c.args]);
        expect(run.stdout).toBe('');
        expect(run.stderr).toMatch(/^eventbus: /);
      } else {
        expect([run.code, run.stderr, c.args]).toEqual([0, '', c.args]);
        expect(JSON.parse(run.stdout)).toMatchObject({ sent: 0, total: 0 });
      }
    };
    for (const c of cases) check(c, await runCliInProcess(['replay', ...c.args, '--json', '--dry-run'], env));
    const sample = [cases[0]!, cases[zeroMatches.length]!, cases[zeroMatches.length + 3]!];
    const runs = await Promise.all(sample.map((c) => runCli(['replay', ...c.args, '--json', '--dry-run'], env)));
    for (const [i, c] of sample.entries()) check(c, runs[i]!);
    // Not a dry run too: an injection tenant sends nothing.
    const real = await runCli(['replay', '--tenant', attacks[0]!, '--json', '--yes'], env);
    expect(real.code, real.stderr).toBe(0);
    expect(real.json().sent).toBe(0);
    expect(await f.rowCounts()).toEqual(before);
    expect(await tables()).toBe(tablesBefore);
  });

  it("--group sends only to that group's retry topic; replaying twice into an inbox consumer leaves its state as after one replay", async () => {
    const prefix = f.prefix();
    const tenant = uniqueName('grp-');
    await seedEvents(f.pool, { tenantId: tenant, count: 40, start: '2026-04-01T00:00:00Z', types: TYPES });
    const productIds = await eventIds(f.pool, tenant, `event_type LIKE 'product.%'`);
    await f.pool.query('CREATE TABLE IF NOT EXISTS public.search_index (event_id text PRIMARY KEY, applied int NOT NULL)');
    const db = drizzle(f.pool);
    const indexer = uniqueName('indexer-');
    const mailer = uniqueName('mailer-');
    const seen = { indexer: [] as string[], mailer: [] as string[], replayIds: new Set<string>() };
    const common = { brokers: f.brokers, routing: { prefix }, fromBeginning: true, topicPartitions: 3, onMetric: () => {} };
    const indexerConsumer = f.track(new EventConsumer({ ...common, groupId: indexer, connectionString: f.database.url }));
    indexerConsumer.subscribe({
      eventTypes: ['product.*'],
      handler: async (event, ctx) => {
        if (event.headers.ce_replayid) seen.replayIds.add(event.headers.ce_replayid);
        // The inbox: the projection's side effect happens once per event, however often it arrives.
        await ctx.processOnce(async (tx) => {
          await tx.execute(sql`INSERT INTO public.search_index (event_id, applied) VALUES (${event.id}, 1)
                               ON CONFLICT (event_id) DO UPDATE SET applied = search_index.applied + 1`);
        });
        // Counted once its transaction committed, so the test reads the table only after it.
        seen.indexer.push(event.id);
      },
    });
    const mailerConsumer = f.track(new EventConsumer({ ...common, groupId: mailer }));
    mailerConsumer.subscribe({ eventTypes: ['product.*', 'order.*'], handler: async (event) => void seen.mailer.push(event.id) });
    // Topics first (with leaders), then one start at a time: a consumer subscribing right
    // after creating its topics can see metadata that does not list them yet.
    const topics = [`${prefix}product`, `${prefix}order`, ...[indexer, mailer].flatMap((g) => [`${prefix}retry.${g}`, `${prefix}dlq.${g}`])];
    await createTopics(
      f.brokers,
      topics.map((topic) => ({ topic })),
    );
    await indexerConsumer.start();
    await mailerConsumer.start();

    const state = async () => (await db.execute(sql`SELECT event_id, applied FROM public.search_index ORDER BY event_id`)).rows;
    const replay = () => runCli(['replay', '--tenant', tenant, '--types', 'product.#', '--group', indexer, '--json'], f.env(prefix));
    const first = await replay();
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ sent: productIds.length, first: { topic: `${prefix}retry.${indexer}` } });
    await waitFor(() => seen.indexer.length >= productIds.length, { timeoutMs: 30_000, message: 'the indexer handled the replay' });
    const afterOne = await state();
    expect(afterOne.map((r) => r.event_id).sort()).toEqual([...productIds].sort());
    expect(afterOne.every((r) => r.applied === 1)).toBe(true);

    const second = await replay();
    expect(second.code, second.stderr).toBe(0);
    await waitFor(() => seen.indexer.length >= 2 * productIds.length, { timeoutMs: 30_000, message: 'the indexer handled the second replay' });
    expect(await state()).toEqual(afterOne);
    expect(seen.replayIds).toEqual(new Set([first.json().replayId, second.json().replayId]));

    // Only the indexer's retry topic got messages: not the product topic, not the mailer's.
    expect(await f.messageCount(`${prefix}retry.${indexer}`)).toBe(2 * productIds.length);
    expect(await f.messageCount(`${prefix}product`)).toBe(0);
    expect(await f.messageCount(`${prefix}retry.${mailer}`)).toBe(0);
    expect(seen.mailer).toEqual([]);
  });

  it('Ctrl-C stops after the page in flight and prints a resume command; resuming leaves no gap and re-sends at most one page', async () => {
    const prefix = f.prefix();
    const tenant = uniqueName('int-');
    const topic = `${prefix}resume`;
    await seedEvents(f.pool, { tenantId: tenant, count: 2000, start: '2026-05-01T00:00:00Z', types: TYPES });
    const expected = await eventIds(f.pool, tenant);
    await createTopics(f.brokers, [{ topic }]);
    const collector = await f.collect([topic]);
    const pageSize = 100;
    const args = ['replay', '--tenant', tenant, '--to-topic', topic, '--page-size', String(pageSize), '--json'];
    // Paced at 100/s, so 2000 events take ≥ 20 s: the interrupt lands mid-replay however busy
    // the machine. The CLI's own progress line on stderr (written once the first chunk was
    // acknowledged) says it is under way; no dependence on how fast a collector consumes.
    const running = startCli([...args, '--rate', '100'], f.env(prefix));
    await waitFor(() => running.stderr().includes('progress: '), { timeoutMs: 30_000, message: 'the replay under way (its progress line on stderr)' });
    running.child.kill('SIGINT');
    const stopped = await running.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    const interrupted = stopped.json();
    expect(interrupted).toMatchObject({ interrupted: true, resumeToken: expect.any(String), lastEventId: expect.any(String) });
    expect(interrupted.sent).toBeLessThan(expected.length);
    expect(stopped.stderr).toContain('resume with:');
    expect(stopped.stderr).toContain(`--resume ${interrupted.resumeToken}`);
    expect(interrupted.resumeCommand).toContain(`--tenant ${tenant}`);

    const resumed = await runCli([...args, '--resume', interrupted.resumeToken], f.env(prefix));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({ replayId: interrupted.replayId, interrupted: false });
    expect(interrupted.sent + resumed.json().sent).toBeGreaterThanOrEqual(expected.length);

    await collector.waitForEvents(expected.length, 20_000);
    const total = await f.messageCount(topic);
    expect(total - expected.length).toBeLessThanOrEqual(pageSize);
    // In partition order, with duplicates removed, exactly the log's order: no gap, nothing reordered.
    const ordered = [...collector.messages].sort((a, b) => Number(a.offset) - Number(b.offset)).map((m) => m.headers.ce_id!);
    expect([...new Set(ordered)]).toEqual(expected);
    expect(new Set(collector.messages.map((m) => m.headers.ce_replayid))).toEqual(new Set([interrupted.replayId]));
  });

  it('with an OpenTelemetry exporter configured, the replay runs in an "eventbus replay" span whose send spans mark the events as replayed and link their stored trace', async () => {
    const prefix = f.prefix();
    const tenant = uniqueName('otel-');
    const topic = `${prefix}traced`;
    const stored = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await f.pool.query(
      `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id, traceparent)
       SELECT gen_random_uuid(), $1, 'k' || i, 'order.placed', '{}', 'c', $2 FROM generate_series(1, 2) i`,
      [tenant, stored],
    );
    await createTopics(f.brokers, [{ topic }]);
    // The console exporter prints finished spans through the global console, which the CLI
    // points at stderr: stdout keeps only the --json document.
    const run = await runCli(['replay', '--tenant', tenant, '--to-topic', topic, '--json'], {
      ...f.env(prefix),
      OTEL_TRACES_EXPORTER: 'console',
      OTEL_METRICS_EXPORTER: 'none',
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ sent: 2 });
    expect(run.stdout).not.toContain('instrumentationScope');
    const spans = run.stderr
      .split(/\n(?=\{\n)/)
      .filter((block) => block.includes('instrumentationScope'))
      .map((block) => ({
        name: /\n {2}name: '([^']+)'/.exec(block)?.[1],
        id: /\n {2}id: '([0-9a-f]+)'/.exec(block)?.[1],
        traceId: /\n {2}traceId: '([0-9a-f]+)'/.exec(block)?.[1],
        parentId: /parentSpanContext: \{[^}]*spanId: '([0-9a-f]+)'/.exec(block)?.[1],
        replayed: block.includes("'eventbus.replayed': true"),
        linksStored: block.includes("traceId: '0af7651916cd43dd8448eb211c80319c'"),
      }));
    const command = spans.find((s) => s.name === 'eventbus replay');
    expect(command).toBeDefined();
    const sends = spans.filter((s) => s.name === `send ${topic}`);
    expect(sends).toHaveLength(2);
    for (const send of sends) expect(send).toMatchObject({ traceId: command!.traceId, parentId: command!.id, replayed: true, linksStored: true });
  });

  it('an event of a transaction still open when the replay starts is never skipped: the bound stops before it, and a replay --from the bound gets it', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const tenant = uniqueName('held-');
    const topic = `${prefix}held`;
    await createTopics(f.brokers, [{ topic }]);
    await seedEvents(f.pool, { tenantId: tenant, count: 30, start: '2026-06-01T00:00:00Z', types: TYPES });
    const insert = (db: pg.ClientBase | pg.Pool, key: string) =>
      db.query(
        `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id) VALUES (gen_random_uuid(), $1, $2, 'order.placed', '{}', 'c') RETURNING id::text`,
        [tenant, key],
      );
    // A writer's transaction: it writes its event (created_at = now() = the transaction's start) and stays open.
    const holder = new pg.Client({ connectionString: f.database.url });
    await holder.connect();
    let heldId: string;
    const collector = await f.collect([topic]);
    try {
      await holder.query('BEGIN');
      heldId = (await insert(holder, 'held')).rows[0].id;
      await new Promise((resolve) => setTimeout(resolve, 50));
      // A later event, committed at once: created_at after the held one's.
      const laterId: string = (await insert(f.pool, 'later')).rows[0].id;

      // The replay starts and runs to the end while the writer's transaction is open.
      const run = await runCli(['replay', '--tenant', tenant, '--to-topic', topic, '--page-size', '7', '--json'], env);
      expect(run.code, run.stderr).toBe(0);
      const result = run.json();
      await holder.query('COMMIT');

      expect(result.upperBound).toMatchObject({ limitedBy: 'open-transaction' });
      const bound: string = result.upperBound.bound;
      const createdAt = async (id: string) =>
        (await f.pool.query(`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t FROM eventbus.event_log WHERE id = $1`, [id]))
          .rows[0].t as string;
      // The held event is not before the bound (so no keyset cursor can have passed it) ...
      expect((await createdAt(heldId)) >= bound).toBe(true);
      await collector.waitForEvents(result.sent, 20_000);
      const emitted = new Set(collector.messages.map((m) => m.headers.ce_id));
      // ... and the replay emitted exactly the tenant's events before the bound: the later
      // event was not sent past a held one that would then be skipped.
      expect([...emitted].sort()).toEqual((await eventIds(f.pool, tenant, 'created_at < $2', [bound])).sort());
      expect(emitted.has(laterId)).toBe(false);
      expect(result.sent).toBe(30);

      // The follow-up replay from the reported bound picks up both, the held one first.
      const next = await runCli(['replay', '--tenant', tenant, '--to-topic', topic, '--from', bound, '--json'], env);
      expect(next.code, next.stderr).toBe(0);
      expect(next.json()).toMatchObject({ sent: 2, first: { id: heldId }, last: { id: laterId } });
      await collector.waitForEvents(32, 20_000);
      expect(new Set(collector.messages.map((m) => m.headers.ce_id))).toEqual(new Set(await eventIds(f.pool, tenant)));
    } finally {
      await holder.end();
    }
  });

  it('--resume refuses a token of another tenant or other filters (exit 2), and a resumed replay keeps the original bound', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const a = uniqueName('res-a-');
    const b = uniqueName('res-b-');
    for (const tenantId of [a, b]) await seedEvents(f.pool, { tenantId, count: 10, start: '2026-07-01T00:00:00Z', types: TYPES });
    const first = await runCliInProcess(['replay', '--tenant', a, '--types', 'product.*', '--dry-run', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    const { resumeToken, upperBound } = JSON.parse(first.stdout);
    const wrongTenant = await runCliInProcess(['replay', '--tenant', b, '--types', 'product.*', '--resume', resumeToken, '--dry-run', '--json'], env);
    expect([wrongTenant.code, wrongTenant.stdout]).toEqual([2, '']);
    expect(wrongTenant.stderr).toContain(`belongs to a replay of tenant "${a}", not "${b}"`);
    const otherTypes = await runCliInProcess(['replay', '--tenant', a, '--types', 'order.*', '--resume', resumeToken, '--dry-run', '--json'], env);
    expect(otherTypes.code).toBe(2);
    expect(otherTypes.stderr).toMatch(/other filters/);
    // The same replay resumes, with the bound it started with (even though time went on).
    const resumed = await runCliInProcess(['replay', '--tenant', a, '--types', 'product.*', '--resume', resumeToken, '--dry-run', '--json'], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout).upperBound).toEqual({ bound: upperBound.bound, limitedBy: 'resumed', hiddenSessions: 0 });
  });

  it('the default target (every consumer group) needs --yes in a script, and a "no" on a terminal exits 1; nothing is sent', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const tenant = uniqueName('ask-');
    await seedEvents(f.pool, { tenantId: tenant, count: 3, start: '2026-08-01T00:00:00Z', types: ['order.placed'] });
    await createTopics(f.brokers, [{ topic: `${prefix}order` }]);
    const refused = await runCli(['replay', '--tenant', tenant], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/shared event topics.*Refusing without --yes/);
    // On a terminal, answered "n".
    const { runCli: run } = (await import(pathToFileURL(CLI_MAIN.replace(/main\.js$/, 'cli.js')).href)) as {
      runCli: (argv: string[], io: unknown) => Promise<number>;
    };
    let stderr = '';
    const code = await run(['replay', '--tenant', tenant], {
      stdout: new Writable({ write: (_c, _e, done) => done() }),
      stderr: new Writable({
        write: (chunk, _e, done) => {
          stderr += String(chunk);
          done();
        },
      }),
      stdin: Object.assign(Readable.from(['n\n']), { isTTY: true }),
      env,
      signal: new AbortController().signal,
    });
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('[y/N]');
    expect(stderr).toContain('not confirmed');
    expect(await f.messageCount(`${prefix}order`)).toBe(0);
    // --group, --to-topic and --dry-run do not ask.
    const dry = await runCli(['replay', '--tenant', tenant, '--dry-run', '--json'], env);
    expect([dry.code, dry.json().sent]).toEqual([0, 3]);
  });
});
