#!/usr/bin/env node
// `pnpm bench`: every figure beside a baseline measured in the same run, on the same
// Postgres and Kafka, because shared machines are noisy. Options: --quick (smaller sizes),
// --only producer|relay|installed-relay|latency|consumer|replay|isolation|isolation-consumer|isolation-relay|isolation-slow|relay-memory
// (comma-separated; relay-memory runs only when named), --rows <n> (the relay drain's and
// relay-memory's backlog), --drain-rounds <n> (the relay drain's rounds), --json <file>. Every
// measured window prints how busy the machine was outside the bench. For the relay drain:
// BENCH_LANES=N sets the relay's lanes (default 2);
// BENCH_PROF=<dir> writes a V8 CPU profile of each relay process there (read it with Chrome
// DevTools), and for the consumer bench one of each pass (this process); BENCH_HEAP_SNAPSHOT=<dir>
// a heap snapshot of the relay mid-drain.
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { copyFile, cp, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import { execFile, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { Kafka, logLevel } from 'kafkajs';
import { encodeEvent } from '@eventbus/core';
import { createTestDatabase, createTopics, ensureKafka, ensurePostgres, uniqueName } from '@eventbus/dev-services';
import { installExample, packPublishedPackages, REPO_ROOT, runCommand } from '@eventbus/dev-services/packed-install';
import { KAFKAJS_PATCH_REVISION } from '@eventbus/kafka';
import { EventWriter } from '@eventbus/producer';
import { EventConsumer } from '@eventbus/consumer';
import { shardForTenant } from '@eventbus/schema';
import { consumerThroughputBench } from './consumer-throughput.mjs';
import { consumerIsolationBench } from './isolation.mjs';
import { relayIsolationBench } from './isolation-relay.mjs';
import { machineLoadWindow, processTicks, setBenchServices, showMachineLoad, TICKS_PER_SECOND } from './machine-load.mjs';
import { RELAY_NODE_FLAGS, RELAY_PROCESS, startRelayProcess } from './start-relay-process.mjs';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    json: { type: 'string' },
    'latency-rates': { type: 'string', default: '1000,200' },
    // The failing tenant's rates of the consumer isolation cases (events/s).
    'isolation-rates': { type: 'string', default: '100,1000' },
    // The backlog of the relay drain (default 200,000, --quick 50,000) and of relay-memory
    // (default 1,000,000).
    rows: { type: 'string' },
    // The relay drain's rounds (default 3, --quick 2): each runs the claim loop, kafkajs and
    // both relays on rows / rounds.
    'drain-rounds': { type: 'string' },
  },
});
const quick = values.quick;
/** Benches run only when named: relay-memory drains 1,000,000 rows, minutes on this machine. */
const OPT_IN = ['relay-memory'];
/** `--only relay,replay`: the named benches, in their usual order. */
const runs = (name) => (values.only ? values.only.split(',').includes(name) : !OPT_IN.includes(name));
const say = (m) => process.stderr.write(`${m}\n`);
const results = {};
const PAYLOAD = { text: 'x'.repeat(480), n: 1 }; // ~512 bytes serialized
let fillRound = 0; // keeps event keys unique across backlog fills
const fmt = (n) => Math.round(n).toLocaleString('en-US');
/** How long the relay process idles after its drain before its idle RSS is read (BENCH_IDLE_SECONDS, default 5). */
const RELAY_IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 5);

/**
 * CPU seconds used so far by the three parties of a drain: this process (relay or baseline
 * client), the backends of the bench's database and the bench's Kafka broker JVM, read from
 * /proc (machine-load.mjs, partyOf; Linux only, elsewhere the figures are missing). The
 * difference of two snapshots says which resource a phase spent its time on: on a 2-core
 * machine a sum near 2 cores means the phase was CPU-bound, whatever each part did.
 * Kept apart, outside the sum, and printed beside it: the Postgres server's own processes
 * (postmaster, checkpointer, walwriter, background writer), which serve every database and do
 * in a window mostly work that is not that window's (a checkpoint writes the pages the
 * backlog's fill dirtied, in whichever drain it falls); the backends of the server's other
 * databases and other broker JVMs, which are other programs'. Counting every Postgres process
 * and every broker charged each phase with that work in proportion to its length, and the
 * relay's drain, the longest, most: on a shared machine the raw claim loop, which never
 * touches Kafka, was charged Kafka CPU (docs/performance.md, how the relay drain is measured).
 */
function cpuSnapshot() {
  const self = process.cpuUsage();
  const snap = { at: performance.now(), node: (self.user + self.system) / 1e6, pids: new Map() };
  // Not Linux: no processes are listed, and only this process is measured.
  for (const [pid, { party, ticks }] of processTicks()) if (party) snap.pids.set(pid, { party, seconds: ticks / TICKS_PER_SECOND });
  return snap;
}
/** Cores used between two snapshots, per party (a process that ended in between is not counted). */
function coresUsed(before, after) {
  const s = (after.at - before.at) / 1000;
  const used = { node: (after.node - before.node) / s, postgres: 0, kafka: 0, postgresServer: 0, postgresOtherDatabases: 0, kafkaOtherBrokers: 0 };
  for (const [pid, { party, seconds }] of after.pids) used[party] += (seconds - (before.pids.get(pid)?.seconds ?? 0)) / s;
  return { ...used, total: used.node + used.postgres + used.kafka };
}
/** The median of `xs` (the mean of the middle two for an even count). */
function median(xs) {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
const showCores = (c) =>
  `cores used: node ${c.node.toFixed(2)}, postgres ${c.postgres.toFixed(2)}, kafka ${c.kafka.toFixed(2)} = ${c.total.toFixed(2)}; not counted: postgres server processes ${c.postgresServer.toFixed(2)}, other databases' backends ${c.postgresOtherDatabases.toFixed(2)}, other brokers ${c.kafkaOtherBrokers.toFixed(2)}`;

const postgres = await ensurePostgres(say);
const kafka = await ensureKafka(say);
const brokers = kafka.address.split(',');
const database = await createTestDatabase(postgres.address, 'bench');
if (!setBenchServices({ database: database.name, brokers }))
  say(`no broker JVM found listening on ${kafka.address} on this host: the Kafka CPU figures count every broker JVM here`);
const pool = new pg.Pool({ connectionString: database.url, max: 12 });
// An idle connection's error (the database dropped WITH (FORCE) at the end, a server restart)
// must not end the bench: the pool opens a new connection for the next query.
pool.on('error', (error) => say(`bench pool: an idle connection failed (${error.message})`));
const db = drizzle(pool);
say(`bench database ${database.name}, kafka ${kafka.address}, node ${process.version}\n`);

try {
  if (runs('producer')) await producerBench();
  if (runs('relay')) await relayDrainBench();
  if (runs('relay-memory')) await relayMemoryBench();
  if (runs('installed-relay')) await installedRelayBench();
  if (runs('latency')) await latencyBench();
  if (runs('consumer')) await consumerBench();
  if (runs('replay')) await replayBench();
  // `isolation` runs both halves; `isolation-consumer` or `isolation-relay` one of them;
  // `isolation-slow` only the consumer's slow-handler case between two controls.
  if (runs('isolation') || runs('isolation-consumer') || runs('isolation-relay') || runs('isolation-slow')) {
    results.isolation = {};
    if (runs('isolation') || runs('isolation-consumer') || runs('isolation-slow'))
      results.isolation.consumer = await consumerIsolationBench({
        brokers,
        databaseUrl: database.url,
        db,
        say,
        quick,
        slowOnly: !runs('isolation') && !runs('isolation-consumer'),
        rates: values['isolation-rates'].split(',').map(Number),
      });
    if (runs('isolation') || runs('isolation-relay'))
      results.isolation.relay = await relayIsolationBench({ brokers, databaseUrl: database.url, pool, say, quick });
  }
} finally {
  await pool.end();
  await database.drop();
  await kafka.stop();
  await postgres.stop();
}
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
process.stdout.write(`${JSON.stringify(results)}\n`);

/** An encoded event of the benches: 512-byte payload, type order.placed. */
function benchEvent(tenantId, eventKey) {
  return encodeEvent({
    id: randomUUID(),
    tenantId,
    projectId: null,
    eventKey,
    eventType: 'order.placed',
    version: 1,
    payloadJson: JSON.stringify(PAYLOAD),
    correlationId: 'bench',
    causationId: null,
    createdAt: new Date(),
    traceparent: null,
    tracestate: null,
  });
}

/**
 * Per-event transactions from 8 concurrent writers, for a fixed time each, and what an event
 * costs the transaction: the writes beside the domain row, the NOTIFY, each index, the WAL, and
 * what the writers' backends wait on in (b), (c) and (d).
 */
async function producerBench() {
  say('## producer: 8 concurrent writers, one event per transaction, 512-byte payloads');
  await pool.query('CREATE TABLE IF NOT EXISTS public.bench_orders (id uuid PRIMARY KEY, tenant_id text NOT NULL, payload jsonb NOT NULL)');
  const seconds = quick ? 3 : 8;
  const machine = {};
  const wal = {};
  const waits = {};
  const run = async (label, body, runSeconds = seconds, { sampleWaits = false, wal: measureWal = true } = {}) => {
    let count = 0;
    const window = machineLoadWindow();
    const deadline = Date.now() + runSeconds * 1000;
    const sampler = sampleWaits ? sampleBackendWaits(deadline) : undefined;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        while (Date.now() < deadline) {
          await db.transaction(async (tx) => body(tx, w, count));
          count++;
        }
      }),
    );
    const rate = count / runSeconds;
    const load = window.end();
    (machine[label] ??= []).push(load);
    // Every round's: a checkpoint during one try makes each first touch of a page write a full image.
    // Once per variant is enough: it is the least of 10 tries, and the steady state's figure.
    if (measureWal) wal[label] = Math.min(wal[label] ?? Number.POSITIVE_INFINITY, await walBytesPerTransaction(body));
    say(`  ${label.padEnd(50)} ${fmt(rate).padStart(7)} tx/s  ${fmt(wal[label]).padStart(5)} WAL bytes/tx   ${showMachineLoad(load)}`);
    if (sampler) {
      const waiting = await sampler;
      (waits[label] ??= []).push(waiting);
      const top = Object.entries(waiting).filter(([, n]) => n >= 0.05);
      say(`      the 8 writers' backends, mean number by what they wait on: ${top.map(([what, n]) => `${what} ${n.toFixed(2)}`).join(', ')}`);
    }
    return rate;
  };
  /**
   * Where the writers' backends spend a window: pg_stat_activity sampled every 20 ms until
   * `deadline`, the mean number of the bench database's client backends per wait event
   * ('ClientRead': waiting for node; 'Lock:object': the NOTIFY's commit lock; 'LWLock:WALWrite':
   * waiting for another backend's WAL flush, i.e. sharing it; 'active': running).
   */
  const sampleBackendWaits = async (deadline) => {
    const client = await pool.connect();
    const sums = {};
    let samples = 0;
    try {
      while (Date.now() < deadline) {
        const { rows } = await client.query(
          `SELECT coalesce(wait_event_type || ':' || wait_event, state) AS what, count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle' GROUP BY 1`,
        );
        samples++;
        for (const { what, n } of rows) sums[what] = (sums[what] ?? 0) + n;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      client.release();
    }
    return Object.fromEntries(
      Object.entries(sums)
        .map(([what, n]) => [what, n / samples])
        .sort((x, y) => y[1] - x[1]),
    );
  };
  /**
   * WAL bytes per transaction of `body`: pg_current_wal_lsn() before and after 30 of them, one
   * at a time. The WAL is the whole server's, so other databases' writes count too: the least
   * of 10 tries is the figure (others only ever add; so do full-page images after a
   * checkpoint, which the least leaves out: it is the steady state's figure).
   */
  const walBytesPerTransaction = async (body) => {
    const n = 30;
    let least = Number.POSITIVE_INFINITY;
    for (let attempt = 0; attempt < 10; attempt++) {
      const before = (await pool.query('SELECT pg_current_wal_lsn() AS lsn')).rows[0].lsn;
      for (let i = 0; i < n; i++) await db.transaction(async (tx) => body(tx, i % 8, i));
      const { bytes } = (await pool.query('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::float8 AS bytes', [before])).rows[0];
      least = Math.min(least, bytes / n);
    }
    return least;
  };
  const { PgDialect } = await import('drizzle-orm/pg-core');
  const dialect = new PgDialect();
  /** A named prepared statement on the caller's transaction, as EventWriter runs its insert. */
  const prepared = (tx, name, statement) => tx._.session.prepareQuery(dialect.sqlToQuery(statement), undefined, name, false).execute();
  const { uuidv7 } = await import('../packages/core/dist/uuid.js');
  const payloadJson = JSON.stringify(PAYLOAD);
  const domain = (tx, w) => tx.execute(sql`INSERT INTO public.bench_orders VALUES (${randomUUID()}, ${`tenant-${w}`}, ${payloadJson}::jsonb)`);
  const withEvent = async (tx, w) => {
    await domain(tx, w);
    await new EventWriter(tx).writeEventWithOutbox({ tenantId: `tenant-${w}`, eventKey: randomUUID(), eventType: 'order.placed', payload: PAYLOAD });
  };
  /** One event-log row as the writer fills it (uuidv7 id, the same columns), in a plain prepared INSERT … VALUES. */
  const logRow = (table, w) => sql`INSERT INTO ${sql.raw(table)} (id, tenant_id, project_id, event_key, event_type, event_version, payload,
      correlation_id, causation_id, traceparent, tracestate)
    VALUES (${uuidv7()}::uuid, ${`tenant-${w}`}, NULL, ${randomUUID()}, 'order.placed', 1, ${payloadJson}::jsonb, ${randomUUID()}, NULL, NULL, NULL)`;
  // (d): the least a transactional event log asks of the transaction, the issue's baseline.
  const withLogRow = async (tx, w) => {
    await domain(tx, w);
    await prepared(tx, 'bench_insert_log_row', logRow('eventbus.event_log', w));
  };
  // (e): the same write through a contract, so its schema (zod) checks the payload first.
  const { defineEvent, validatePayload } = await import('@eventbus/contracts');
  const { z } = await import('zod');
  const orderPlaced = defineEvent({ type: 'order.placed', schema: z.object({ text: z.string().max(1000), n: z.number().int() }) });
  const withContract = async (tx, w) => {
    await domain(tx, w);
    await new EventWriter(tx).writeEventWithOutbox(orderPlaced, { tenantId: `tenant-${w}`, eventKey: randomUUID(), payload: PAYLOAD });
  };
  // Short windows, interleaved: the writers wait on the WAL flush, whose speed on this shared
  // disk drifts by up to 2× within minutes (one run's (a) fell from 4,321 to 2,647 tx/s between
  // two rounds with the machine otherwise quiet), so a ratio of two windows minutes apart
  // measured the drift. Each round runs every variant for a few seconds, (b) and (d) in
  // alternating order; each ratio is taken within a round, and the median over the rounds
  // is the figure.
  const rounds = quick ? 2 : 6;
  const windowSeconds = quick ? 2 : 4;
  const a = [],
    b = [],
    c = [],
    d = [],
    e = [];
  for (let r = 0; r < rounds; r++) {
    say(`  round ${r + 1} of ${rounds}`);
    const firstRound = r === 0;
    a.push(await run('(a) domain row only', domain, windowSeconds, { wal: firstRound }));
    const dThenB = r % 2 === 0;
    const runD = async () =>
      d.push(await run('(d) domain row + one event-log insert', withLogRow, windowSeconds, { sampleWaits: firstRound, wal: firstRound }));
    const runB = async () => b.push(await run('(b) domain row + writeEventWithOutbox', withEvent, windowSeconds, { sampleWaits: firstRound, wal: firstRound }));
    if (dThenB) {
      await runD();
      await runB();
    } else {
      await runB();
      await runD();
    }
    e.push(await run('(e) (b) with a contract (zod schema)', withContract, windowSeconds, { wal: firstRound }));
    await pool.query('ALTER TABLE eventbus.outbox DISABLE TRIGGER outbox_notify');
    c.push(await run('(c) (b) with the NOTIFY trigger disabled', withEvent, windowSeconds, { sampleWaits: firstRound, wal: firstRound }));
    await pool.query('ALTER TABLE eventbus.outbox ENABLE TRIGGER outbox_notify');
    await pool.query('TRUNCATE eventbus.outbox');
  }
  const indexes = await indexCosts({ run, domain, prepared, logRow, seconds: quick ? 2 : 4 });
  // The schema check alone, outside any transaction: what (e) adds to each write.
  const checks = 20_000;
  const started = process.hrtime.bigint();
  for (let i = 0; i < checks; i++) await validatePayload(orderPlaced, PAYLOAD);
  const validationUs = Number(process.hrtime.bigint() - started) / 1000 / checks;
  /** The median over the rounds of x / y, each pair from one round. */
  const ratio = (xs, ys) => median(xs.map((x, i) => x / ys[i]));
  const perRound = (xs, ys) => xs.map((x, i) => (x / ys[i]).toFixed(2)).join(' ');
  results.producer = {
    rounds,
    windowSeconds,
    domainOnlyTxPerS: median(a),
    withOutboxTxPerS: median(b),
    withOutboxNoNotifyTxPerS: median(c),
    withLogRowTxPerS: median(d),
    withContractTxPerS: median(e),
    perRound: { a, b, c, d, e },
    ratioBtoA: ratio(b, a),
    ratioCtoA: ratio(c, a),
    ratioDtoA: ratio(d, a),
    ratioBtoD: ratio(b, d),
    ratioCtoD: ratio(c, d),
    ratioEtoB: ratio(e, b),
    contractValidationUs: validationUs,
    walBytesPerTx: wal,
    backendWaits: waits,
    indexes,
    machine,
  };
  say(
    `  medians over ${rounds} rounds: (a) ${fmt(median(a))}, (d) ${fmt(median(d))}, (b) ${fmt(median(b))}, (c) ${fmt(median(c))}, (e) ${fmt(median(e))} tx/s\n` +
      `  b/d per round: ${perRound(b, d)}\n` +
      `  ratios, median of the rounds': b/d = ${ratio(b, d).toFixed(2)} (target ≥ 0.85), b/a = ${ratio(b, a).toFixed(2)}, d/a = ${ratio(d, a).toFixed(2)}, c/a = ${ratio(c, a).toFixed(2)}, c/d = ${ratio(c, d).toFixed(2)}, e/b = ${ratio(e, b).toFixed(2)}` +
      ` (the zod check alone: ${validationUs.toFixed(1)} µs per payload)\n`,
  );
}

/**
 * What each index of the event log and the outbox costs a write: the domain row plus plain
 * inserts into scratch copies of the two tables (same columns and defaults, no triggers),
 * with their indexes added one at a time, each step timed and its WAL per transaction read.
 * Plain INSERT … VALUES as in (d), not the writer's statement (its ON CONFLICT needs the
 * unique index), so the steps add up to (d) plus an outbox row, not to (b).
 */
async function indexCosts({ run, domain, prepared, logRow, seconds }) {
  say(`  where an event's cost goes: the domain row + inserts into scratch copies of the tables, indexes added one at a time (${seconds} s each)`);
  await pool.query(`DROP SCHEMA IF EXISTS bench_scratch CASCADE; CREATE SCHEMA bench_scratch;
    CREATE TABLE bench_scratch.event_log (LIKE eventbus.event_log INCLUDING DEFAULTS);
    CREATE TABLE bench_scratch.outbox (LIKE eventbus.outbox INCLUDING DEFAULTS INCLUDING IDENTITY)`);
  const logOnly = async (tx, w) => {
    await domain(tx, w);
    await prepared(tx, 'bench_scratch_log', logRow('bench_scratch.event_log', w));
  };
  const logAndOutbox = async (tx, w) => {
    await domain(tx, w);
    await prepared(
      tx,
      'bench_scratch_log_outbox',
      sql`WITH e AS (${logRow('bench_scratch.event_log', w)} RETURNING id) INSERT INTO bench_scratch.outbox (event_id, shard) SELECT id, ${w}::smallint FROM e`,
    );
  };
  const steps = [
    { label: 'event log, no index', body: logOnly },
    { label: '+ primary key (id)', body: logOnly, ddl: 'ALTER TABLE bench_scratch.event_log ADD PRIMARY KEY (id)' },
    { label: '+ unique (tenant_id, event_key)', body: logOnly, ddl: 'CREATE UNIQUE INDEX ON bench_scratch.event_log (tenant_id, event_key)' },
    { label: '+ (tenant_id, created_at, id)', body: logOnly, ddl: 'CREATE INDEX ON bench_scratch.event_log (tenant_id, created_at, id)' },
    { label: '+ (event_type, created_at): all 4, = (d)', body: logOnly, ddl: 'CREATE INDEX ON bench_scratch.event_log (event_type, created_at)' },
    { label: '+ an outbox row, no index', body: logAndOutbox },
    { label: '+ outbox primary key (id)', body: logAndOutbox, ddl: 'ALTER TABLE bench_scratch.outbox ADD PRIMARY KEY (id)' },
    { label: '+ outbox unique (event_id)', body: logAndOutbox, ddl: 'CREATE UNIQUE INDEX ON bench_scratch.outbox (event_id)' },
    { label: '+ outbox (shard, id): all 3', body: logAndOutbox, ddl: 'CREATE INDEX ON bench_scratch.outbox (shard, id)' },
  ];
  const out = [];
  try {
    for (const step of steps) {
      if (step.ddl) await pool.query(step.ddl);
      // Each step on tables of the same size: a larger index is slower for that alone.
      await pool.query('TRUNCATE bench_scratch.event_log, bench_scratch.outbox');
      const rate = await run(`  ${step.label}`, step.body, seconds);
      out.push({ step: step.label, txPerS: rate });
    }
  } finally {
    await pool.query('DROP SCHEMA bench_scratch CASCADE');
  }
  return out;
}

/**
 * Empties the outbox and the event log, so that every drain starts from tables of the same
 * size: the event log keeps each drain's rows, and a drain that joins a larger event log than
 * the one before it would be slower for that alone. The event log refuses TRUNCATE
 * (append-only) but for this throwaway database.
 */
async function emptyOutboxAndLog() {
  await pool.query(`BEGIN;
    ALTER TABLE eventbus.event_log DISABLE TRIGGER event_log_no_truncate;
    TRUNCATE eventbus.outbox, eventbus.event_log;
    ALTER TABLE eventbus.event_log ENABLE TRIGGER event_log_no_truncate;
    COMMIT`);
}

/** Fills the outbox with `rows` events over 50 tenants, in one statement per 20k. */
async function fillBacklog(rows) {
  const round = fillRound++;
  const tenants = Array.from({ length: 50 }, (_, i) => `tenant-${i}`);
  const shards = tenants.map(shardForTenant);
  for (let done = 0; done < rows; done += 20_000) {
    const n = Math.min(20_000, rows - done);
    await pool.query(
      `WITH e AS (
         INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id)
         SELECT gen_random_uuid(), ($1::text[])[1 + g % 50], 'k' || $6::int || '-' || ($3::bigint + g), 'order.placed', $2::jsonb, 'bench'
         FROM generate_series(1, $4::int) g RETURNING id, tenant_id)
       INSERT INTO eventbus.outbox (event_id, shard)
       SELECT id, ($5::int[])[array_position($1::text[], tenant_id)] FROM e`,
      [tenants, JSON.stringify(PAYLOAD), done, n, shards, round],
    );
  }
  // Both tables: autovacuum would otherwise start on the event log's new rows (an insert
  // threshold, Postgres 13+) in the middle of the drain that follows and take its CPU.
  await pool.query('VACUUM ANALYZE eventbus.outbox, eventbus.event_log');
}

/**
 * Fills a fresh backlog of `rows` and drains it with a relay in a process of its own
 * (`script`: bench/relay-process.mjs, or a copy of it inside an installed service), so the RSS
 * and node CPU measured are the relay's alone (run in the bench's process, its peak RSS of
 * 232-260 MB also held the baselines' leftovers and the bench's own pool).
 * `idempotent` false turns the idempotent producer off. The rate counts from the relay's
 * first claim to the last event published: the process' start, its connections and the
 * boot self-test are not in it. Also returns what the relay process reported about itself:
 * the @eventbus/relay module it loaded and its kafkajs patch revision. `idleSeconds` 0 skips
 * the idle wait (and the idle RSS figures are undefined).
 */
async function drainInRelayProcess({ rows, batchSize, prefix, idempotent = true, script = RELAY_PROCESS, idleSeconds = RELAY_IDLE_SECONDS }) {
  await fillBacklog(rows);
  const child = fork(script, [database.url, brokers.join(','), prefix, String(batchSize), String(rows)], {
    env: { ...process.env, BENCH_IDEMPOTENT: String(idempotent) },
    execArgv: [...RELAY_NODE_FLAGS, ...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [])],
  });
  const fromChild = (key) =>
    new Promise((resolve, reject) => {
      child.on('message', (m) => m[key] && resolve(m));
      child.once('exit', (code) => reject(new Error(`relay process ${script} exited with ${code} before '${key}'`)));
    });
  const ready = fromChild('ready');
  const done = fromChild('done');
  // Both are awaited below; without this, a child that dies early would leave `done`
  // rejected with no handler, and Node would exit before the bench's cleanup.
  done.catch(() => undefined);
  const { relayModule, kafkajsPatch } = await ready;
  const cpuStart = cpuSnapshot(); // the drain's window, as the relay process measures its own
  const window = machineLoadWindow();
  const drained = await done;
  const machine = window.end();
  const rate = drained.drained / drained.seconds;
  // Postgres and Kafka from /proc; node from the relay process (this one only waited).
  const used = coresUsed(cpuStart, cpuSnapshot());
  const node = drained.cpuSeconds / drained.seconds;
  let idleReport = {};
  if (idleSeconds > 0) {
    const idle = fromChild('idle');
    child.send({ idleSeconds });
    idleReport = await idle;
  }
  const { idleRssMb, idleRssFileMb, idleHeapUsedMb, idleHeapTotalMb, idleExternalMb } = idleReport;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send({ stop: true });
  await exited;
  return {
    rate,
    events: drained.drained,
    seconds: drained.seconds,
    cores: { ...used, node, total: node + used.postgres + used.kafka },
    rssPeak: drained.peakRssMb * 2 ** 20,
    idleRssMb,
    idle: { rssFileMb: idleRssFileMb, heapUsedMb: idleHeapUsedMb, heapTotalMb: idleHeapTotalMb, externalMb: idleExternalMb },
    heapUsedMb: drained.heapUsedMb,
    heapTotalMb: drained.heapTotalMb,
    externalMb: drained.externalMb,
    heapSpacesMb: drained.heapSpacesMb,
    machine,
    relayModule,
    kafkajsPatch,
  };
}

/**
 * Kafka's own producer benchmark (`org.apache.kafka.tools.ProducerPerformance`, Java) on the
 * same broker: `rows` records of `recordSize` bytes to a new 12-partition topic, acks=-1 and
 * the Java client's defaults otherwise (idempotent, batch.size 16 KB, linger.ms 5), no key and
 * no headers. Its jars are the ones scripts/kafka-local.sh assembles from Maven Central
 * (kafka-tools among them); without them or a `java`, the baseline is skipped and says why.
 * Its figure is the tool's own "records/sec", timed by the tool from its first send (not the
 * JVM's start).
 */
async function javaProducerBaseline({ rows, recordSize }) {
  const version = process.env.KAFKA_VERSION ?? '4.1.1';
  const lib = join(process.env.KAFKA_CACHE_DIR ?? join(homedir(), '.cache', 'eventbus-kafka'), version, 'lib');
  const label = "  (c) Kafka's Java ProducerPerformance       ";
  if (!existsSync(join(lib, `kafka-tools-${version}.jar`))) {
    say(`${label} skipped: no ${join(lib, `kafka-tools-${version}.jar`)} (scripts/kafka-local.sh install fetches it)`);
    return { skipped: `no kafka-tools jar in ${lib}` };
  }
  const topic = `${uniqueName('bench.')}.java`;
  await createTopics(brokers, [{ topic, numPartitions: 12 }]);
  const args = [
    '-Xmx256m',
    '-cp',
    `${lib}/*`,
    'org.apache.kafka.tools.ProducerPerformance',
    '--topic',
    topic,
    '--num-records',
    String(rows),
    '--record-size',
    String(recordSize),
    '--throughput',
    '-1',
    '--producer-props',
    `bootstrap.servers=${brokers.join(',')}`,
    'acks=-1',
  ];
  const window = machineLoadWindow();
  let stdout;
  try {
    ({ stdout } = await new Promise((resolve, reject) =>
      execFile('java', args, { maxBuffer: 16 * 2 ** 20 }, (error, out, err) =>
        error ? reject(Object.assign(error, { stderr: err })) : resolve({ stdout: out }),
      ),
    ));
  } catch (error) {
    say(`${label} failed: ${error.message.split('\n')[0]} ${String(error.stderr ?? '').slice(-300)}`);
    return { failed: error.message };
  }
  const machine = window.end();
  // The summary line: "200000 records sent, 123456.7 records/sec (60.28 MB/sec), 85.3 ms avg latency, ..."
  const summary = stdout.trim().split('\n').at(-1);
  const recordsPerS = Number(/records sent, ([\d.]+) records\/sec/.exec(summary)?.[1]);
  if (!Number.isFinite(recordsPerS)) {
    say(`${label} no figure in its output: ${summary}`);
    return { failed: `unparsed output: ${summary}` };
  }
  say(`${label} ${fmt(recordsPerS).padStart(8)} records/s  (${recordSize}-byte values, no key or headers; the client's defaults but acks=-1)`);
  say(`      ${showMachineLoad(machine)}`);
  return { recordsPerS, recordSize, summary, machine };
}

/**
 * The relay's drain against its baselines, measured in rounds: each round runs (b) a raw
 * claim-and-delete loop without Kafka, (a) a raw kafkajs producer with the same batches, the
 * relay (idempotent producer, as deployed) and the relay with it off, each on `rows / rounds`
 * rows, in an order rotated between rounds. Kafka's Java producer (c) runs once, before them.
 */
async function relayDrainBench() {
  const rows = values.rows ? Number(values.rows) : quick ? 50_000 : 200_000;
  // Rounds, not one drain of each: on this shared machine the baselines moved from 34k to 60k
  // msgs/s between two runs, so a ratio of drains run one after the other measured that drift. Each ratio is taken within a round; the median over the rounds is the
  // figure, and the rotation keeps any one variant from always running first (or last).
  const rounds = values['drain-rounds'] ? Number(values['drain-rounds']) : quick ? 2 : 3;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--drain-rounds must be a positive integer, got ${values['drain-rounds']}`);
  /** Round r's rows: `rows` split over the rounds, their sizes differing by one at most. */
  const rowsIn = (r) => Math.floor((rows * (r + 1)) / rounds) - Math.floor((rows * r) / rounds);
  const sizes = Array.from({ length: rounds }, (_, r) => rowsIn(r));
  const [fewest, most] = [Math.min(...sizes), Math.max(...sizes)];
  const batchSize = 1000;
  say(
    `## relay drain: ${fmt(rows)} pending rows in ${rounds} round(s) of ${fewest === most ? fmt(most) : `${fmt(fewest)}–${fmt(most)}`}, 512-byte payloads, batches of ${batchSize}, acks=-1`,
  );

  const topic = `${uniqueName('bench.')}.order`;
  const prefix = topic.slice(0, topic.length - 'order'.length);
  await createTopics(brokers, [{ topic, numPartitions: 12 }]);
  const sample = benchEvent('tenant-1', 'k');
  const batch = Array.from({ length: batchSize }, (_, i) => ({ ...sample, key: `tenant-${i % 50}`, headers: { ...sample.headers, ce_id: randomUUID() } }));

  // Baseline (c): Kafka's own Java producer tool, records of the same size, on the same broker.
  // The tool's records carry a value only: it gets the bytes of the relay's value, key and
  // headers together, so that both put the same bytes per record on the wire.
  const recordSize = [sample.value, sample.key, ...Object.entries(sample.headers).flat()].reduce((n, x) => n + Buffer.byteLength(x), 0);
  const java = await javaProducerBaseline({ rows, recordSize });

  const { CLAIM_BATCH_SQL, CLAIM_SESSION_SQL } = await import('../packages/outbox/dist/outbox/claim-batch.js');
  const allShards = Array.from({ length: 64 }, (_, i) => i);
  /** Baseline (b): the relay's claim-and-delete statement on the same table, without Kafka. */
  const rawClaim = async (r) => {
    await emptyOutboxAndLog();
    await fillBacklog(rowsIn(r));
    const client = await pool.connect();
    try {
      await client.query(CLAIM_SESSION_SQL); // the relay's claim connections run with it too
      const cpu0 = cpuSnapshot();
      const window = machineLoadWindow();
      const t0 = performance.now();
      let events = 0;
      for (;;) {
        await client.query('BEGIN');
        const { rowCount } = await client.query(CLAIM_BATCH_SQL, [allShards, batchSize]);
        await client.query('COMMIT');
        if (!rowCount) break;
        events += rowCount;
      }
      const seconds = (performance.now() - t0) / 1000;
      const cores = coresUsed(cpu0, cpuSnapshot());
      const machine = window.end();
      await client.query('RESET ALL');
      return { rate: events / seconds, events, seconds, cores, machine };
    } finally {
      client.release();
    }
  };
  // Baseline (a): one producer for all rounds, connected before the first (the relay process
  // connects its producer before its drain clock starts too).
  const producer = new Kafka({ brokers, logLevel: logLevel.NOTHING }).producer({ maxInFlightRequests: 1 });
  await producer.connect();
  // Not counted: the topic's metadata and the first sends' compilation, which would otherwise
  // fall in the first round's kafkajs window only, and make it measure something the others do not.
  for (let i = 0; i < 5; i++) await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages: batch }] });
  const rawKafka = async (r) => {
    const n = rowsIn(r);
    const cpu0 = cpuSnapshot();
    const window = machineLoadWindow();
    const t0 = performance.now();
    for (let sent = 0; sent < n; sent += batchSize) {
      const messages = n - sent >= batchSize ? batch : batch.slice(0, n - sent);
      await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages }] });
    }
    const seconds = (performance.now() - t0) / 1000;
    return { rate: n / seconds, events: n, seconds, cores: coresUsed(cpu0, cpuSnapshot()), machine: window.end() };
  };
  // Storage, read once: right after the last round's drain by the relay as deployed.
  let storage;
  const size = async () =>
    (
      await pool.query(`SELECT pg_total_relation_size('eventbus.outbox') AS outbox, pg_total_relation_size('eventbus.event_log') AS log,
      (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'eventbus.outbox'::regclass) AS dead,
      (SELECT count(*) FROM eventbus.event_log) AS events`)
    ).rows[0];
  /**
   * The relay in a process of its own, from the moment it runs to the last event published
   * (its start is not timed); the idle RSS is read once, after the last round's drain.
   */
  const relayDrain = (idempotent) => async (round) => {
    const last = round === rounds - 1;
    await emptyOutboxAndLog();
    const d = await drainInRelayProcess({ rows: rowsIn(round), batchSize, prefix, idempotent, idleSeconds: idempotent && last ? RELAY_IDLE_SECONDS : 0 });
    if (idempotent && last) {
      const afterDrain = await size();
      await pool.query('VACUUM eventbus.outbox');
      storage = { afterDrain, vacuumed: await size() };
    }
    return d;
  };
  const variants = {
    rawClaim: { label: '(b) raw claim-and-delete loop, no Kafka', unit: 'rows/s  ', run: rawClaim },
    rawKafka: { label: '(a) raw kafkajs producer, same batches', unit: 'msgs/s  ', run: rawKafka },
    relay: { label: 'relay (OutboxRelay, one instance)', unit: 'events/s', run: relayDrain(true) },
    relayNotIdempotent: { label: 'relay without the idempotent producer', unit: 'events/s', run: relayDrain(false) },
  };
  /**
   * Round r's order: the three slots (claim loop, kafkajs, the two relays) rotated by r, so
   * each slot runs first in one round of three; the two relays swap places every round.
   */
  const orderOf = (r) => {
    const slots = [['rawClaim'], ['rawKafka'], r % 2 === 0 ? ['relay', 'relayNotIdempotent'] : ['relayNotIdempotent', 'relay']];
    return [...slots.slice(r % 3), ...slots.slice(0, r % 3)].flat();
  };
  const perRoundData = [];
  try {
    for (let r = 0; r < rounds; r++) {
      say(`  round ${r + 1} of ${rounds}`);
      const order = orderOf(r);
      const round = { round: r + 1, order };
      for (const key of order) {
        const v = variants[key];
        const d = await v.run(r);
        round[key] = d;
        say(`    ${v.label.padEnd(42)} ${fmt(d.rate).padStart(8)} ${v.unit}  ${showCores(d.cores)}`);
        say(`        ${showMachineLoad(d.machine)}`);
      }
      const slower = Math.min(round.rawClaim.rate, round.rawKafka.rate);
      round.ratioToSlowerBaseline = round.relay.rate / slower;
      round.ratioToRawKafka = round.relay.rate / round.rawKafka.rate;
      round.ratioToRawClaim = round.relay.rate / round.rawClaim.rate;
      round.idempotentToPlain = round.relay.rate / round.relayNotIdempotent.rate;
      say(
        `    relay / slower baseline ${round.ratioToSlowerBaseline.toFixed(2)} (× kafkajs ${round.ratioToRawKafka.toFixed(2)}, × claim loop ${round.ratioToRawClaim.toFixed(2)}); idempotent / plain ${round.idempotentToPlain.toFixed(2)}`,
      );
      perRoundData.push(round);
    }
  } finally {
    await producer.disconnect();
  }

  const of = (key) => perRoundData.map((round) => round[key]);
  const rates = (key) => of(key).map((d) => d.rate);
  const spread = (xs) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
  const relayRate = median(rates('relay'));
  say(
    `  medians of ${rounds} round(s): relay ${fmt(relayRate)} events/s, without the idempotent producer ${fmt(median(rates('relayNotIdempotent')))}; raw kafkajs ${fmt(median(rates('rawKafka')))} msgs/s; raw claim ${fmt(median(rates('rawClaim')))} rows/s`,
  );
  const toJava = java.recordsPerS ? `; median relay / Kafka's Java producer ${(relayRate / java.recordsPerS).toFixed(2)}` : '';
  say(
    `  relay / slower baseline, median of the rounds' ratios: ${median(of('ratioToSlowerBaseline')).toFixed(2)} (${spread(of('ratioToSlowerBaseline'))}; target ≥ 0.8); × kafkajs ${median(of('ratioToRawKafka')).toFixed(2)} (${spread(of('ratioToRawKafka'))}), × claim loop ${median(of('ratioToRawClaim')).toFixed(2)} (${spread(of('ratioToRawClaim'))})${toJava}`,
  );
  say(`  idempotent / plain, median of the rounds' ratios: ${median(of('idempotentToPlain')).toFixed(2)} (${spread(of('idempotentToPlain'))})`);
  // CPU per event of each part over all its rounds (each round's cores × its seconds, summed,
  // over the events): what the drain would reach if it had the cores to itself.
  const cpuUsPerEvent = {};
  const coresOverRounds = {};
  for (const key of Object.keys(variants)) {
    const ds = of(key);
    const seconds = ds.reduce((n, d) => n + d.seconds, 0);
    const events = ds.reduce((n, d) => n + d.events, 0);
    const sum = (party) => ds.reduce((n, d) => n + d.cores[party] * d.seconds, 0);
    const parties = ['node', 'postgres', 'kafka', 'total', 'postgresServer', 'postgresOtherDatabases', 'kafkaOtherBrokers'];
    cpuUsPerEvent[key] = Object.fromEntries(parties.map((p) => [p, (sum(p) / events) * 1e6]));
    coresOverRounds[key] = Object.fromEntries(parties.map((p) => [p, sum(p) / seconds]));
  }
  const showPerEvent = (c) =>
    `${c.total.toFixed(0)} (node ${c.node.toFixed(0)}, postgres ${c.postgres.toFixed(0)}, kafka ${c.kafka.toFixed(0)}; not counted: postgres server ${c.postgresServer.toFixed(1)}, other databases ${c.postgresOtherDatabases.toFixed(1)}, other brokers ${c.kafkaOtherBrokers.toFixed(1)})`;
  say(
    `  CPU µs per event, all rounds: raw kafkajs ${showPerEvent(cpuUsPerEvent.rawKafka)}, raw claim ${showPerEvent(cpuUsPerEvent.rawClaim)}, relay ${showPerEvent(cpuUsPerEvent.relay)}, relay without the idempotent producer ${showPerEvent(cpuUsPerEvent.relayNotIdempotent)}`,
  );
  // RSS: the largest peak of the rounds' relay processes (each drains its round's rows) and the
  // idle figure of the last one.
  const peak = of('relay').reduce((a, b) => (b.rssPeak > a.rssPeak ? b : a));
  const idleRssMb = of('relay').at(-1).idleRssMb;
  say(
    `  relay process RSS: peak ${(peak.rssPeak / 2 ** 20).toFixed(0)} MB (VmHWM, start to drained, the largest of the ${rounds} round(s)' processes), idle ${idleRssMb.toFixed(0)} MB (the last one, ${RELAY_IDLE_SECONDS} s after its drain, nothing pending); V8 heap at that peak's sample: ${peak.heapUsedMb.toFixed(0)} MB used of ${peak.heapTotalMb.toFixed(0)}, outside it (Buffers) ${peak.externalMb.toFixed(0)} MB`,
  );
  // Storage: the drained outbox holds only dead tuples until vacuum; the event log is the history.
  const mb = (b) => (Number(b) / 2 ** 20).toFixed(1);
  const { afterDrain, vacuumed } = storage;
  say(
    `  storage after the last round's relay drain: outbox ${mb(afterDrain.outbox)} MB (${fmt(Number(afterDrain.dead))} dead tuples), after VACUUM ${mb(vacuumed.outbox)} MB; event_log ${mb(afterDrain.log)} MB for ${fmt(Number(afterDrain.events))} events\n`,
  );
  /** A window's machine load averaged over the rounds, each round weighted by its seconds. */
  const machineOverRounds = (key) => {
    const ds = of(key);
    if (ds.some((d) => !d.machine)) return undefined;
    const seconds = ds.reduce((n, d) => n + d.seconds, 0);
    const mean = (field) => ds.reduce((n, d) => n + d.machine[field] * d.seconds, 0) / seconds;
    return { cores: ds[0].machine.cores, busyCores: mean('busyCores'), outsideBenchCores: mean('outsideBenchCores'), stolenCores: mean('stolenCores') };
  };
  const roundData = (d) => ({ eventsPerS: d.rate, events: d.events, seconds: d.seconds, coresUsed: d.cores, machine: d.machine });
  results.relayDrain = {
    rows,
    rounds,
    batchSize,
    // Rates: the medians of the rounds'; ratios: the medians of the rounds' own ratios.
    relayEventsPerS: relayRate,
    relayNotIdempotentEventsPerS: median(rates('relayNotIdempotent')),
    idempotentToPlain: median(of('idempotentToPlain')),
    rawKafkaMsgsPerS: median(rates('rawKafka')),
    rawClaimRowsPerS: median(rates('rawClaim')),
    javaProducer: java,
    ratioToSlowerBaseline: median(of('ratioToSlowerBaseline')),
    ratioToSlowerBaselineRange: [Math.min(...of('ratioToSlowerBaseline')), Math.max(...of('ratioToSlowerBaseline'))],
    ratioToRawKafka: median(of('ratioToRawKafka')),
    ratioToRawClaim: median(of('ratioToRawClaim')),
    ...(java.recordsPerS ? { ratioToJavaProducer: relayRate / java.recordsPerS } : {}),
    rssPeakMb: peak.rssPeak / 2 ** 20,
    idleRssMb,
    // Over the rounds, each round weighted by its seconds; each round's own in `perRound`.
    machine: {
      rawClaim: machineOverRounds('rawClaim'),
      rawKafka: machineOverRounds('rawKafka'),
      javaProducer: java.machine,
      relay: machineOverRounds('relay'),
      relayNotIdempotent: machineOverRounds('relayNotIdempotent'),
    },
    coresUsed: coresOverRounds,
    cpuUsPerEvent,
    perRound: perRoundData.map((round) => ({
      round: round.round,
      rows: rowsIn(round.round - 1),
      order: round.order,
      ...Object.fromEntries(Object.keys(variants).map((key) => [key, roundData(round[key])])),
      ratioToSlowerBaseline: round.ratioToSlowerBaseline,
      ratioToRawKafka: round.ratioToRawKafka,
      ratioToRawClaim: round.ratioToRawClaim,
      idempotentToPlain: round.idempotentToPlain,
    })),
    storage: {
      outboxBytesDrained: Number(afterDrain.outbox),
      deadTuples: Number(afterDrain.dead),
      outboxBytesVacuumed: Number(vacuumed.outbox),
      eventLogBytes: Number(afterDrain.log),
    },
  };
}

/**
 * `--only relay-memory`: the relay process' memory draining a large backlog (default
 * 1,000,000 rows, `--rows`) with the relay app's default batch size, and idle after it; the
 * target is a peak RSS of at most 128 MB. BENCH_HEAP_SNAPSHOT=<dir> writes a heap snapshot of
 * the relay process mid-drain.
 */
async function relayMemoryBench() {
  const rows = values.rows ? Number(values.rows) : 1_000_000;
  const batchSize = 500; // RELAY_BATCH_SIZE's default
  say(`## relay memory: ${fmt(rows)} pending rows, 512-byte payloads, batches of ${batchSize} (the app's default), acks=-1`);
  const topic = `${uniqueName('bench.')}.order`;
  await createTopics(brokers, [{ topic, numPartitions: 12 }]);
  const t0 = performance.now();
  const d = await drainInRelayProcess({ rows, batchSize, prefix: topic.slice(0, topic.length - 'order'.length) });
  const relayCpuUs = (d.cores.node / d.rate) * 1e6;
  say(
    `  filled and drained in ${((performance.now() - t0) / 1000).toFixed(0)} s; drain ${fmt(d.rate)} events/s, relay process CPU ${relayCpuUs.toFixed(0)} µs/event   ${showMachineLoad(d.machine)}`,
  );
  const within = (mb) => (mb <= 128 ? 'within' : 'over');
  say(
    `  relay process RSS: peak ${(d.rssPeak / 2 ** 20).toFixed(0)} MB (${within(d.rssPeak / 2 ** 20)} 128), idle ${d.idleRssMb.toFixed(0)} MB (${within(d.idleRssMb)} 128, ${RELAY_IDLE_SECONDS} s after the drain); at the largest RSS sampled: V8 heap ${d.heapUsedMb.toFixed(0)} MB used of ${d.heapTotalMb.toFixed(0)}, Buffers outside it ${d.externalMb.toFixed(0)} MB`,
  );
  say(
    `  V8 heap spaces then (MB committed): ${Object.entries(d.heapSpacesMb)
      .map(([space, n]) => `${space} ${n}`)
      .join(', ')}`,
  );
  say(
    `  at idle: V8 heap ${d.idle.heapUsedMb.toFixed(0)} MB used of ${d.idle.heapTotalMb.toFixed(0)}, Buffers outside it ${d.idle.externalMb.toFixed(0)} MB, file-backed RSS (node's binary, libraries) ${d.idle.rssFileMb?.toFixed(0) ?? '?'} MB\n`,
  );
  results.relayMemory = {
    rows,
    batchSize,
    eventsPerS: d.rate,
    relayCpuUsPerEvent: relayCpuUs,
    rssPeakMb: d.rssPeak / 2 ** 20,
    idleRssMb: d.idleRssMb,
    idle: d.idle,
    heapUsedMb: d.heapUsedMb,
    heapTotalMb: d.heapTotalMb,
    externalMb: d.externalMb,
    heapSpacesMb: d.heapSpacesMb,
    machine: d.machine,
  };
}

/** A relay process that did not run the relay or the kafkajs the bench meant to measure. */
class BenchSetupError extends Error {
  name = 'BenchSetupError';
}

/**
 * The relay a service gets from npm against the workspace relay, in one run: the published
 * packages packed and `npm install`ed into a copy of examples/order-service (the same install
 * as apps/cli/test/packed-install.int.test.ts), then drains of the same backlog by
 *   (a) the workspace relay (kafkajs patched by pnpm's patchedDependencies),
 *   (b) the installed relay, kafkajs patched by the example's postinstall (patch-package),
 *   (c) the installed relay on plain kafkajs (a copy of that install with the patch reversed),
 * interleaved a, b, c, a, b, c, ... so that machine noise spreads over all three. Each drain
 * runs bench/relay-process.mjs (a copy of it inside the install for b and c, where its imports
 * resolve to the installed packages) and reports which relay module and kafkajs patch
 * revision it loaded; the bench refuses a drain that ran the wrong ones.
 */
async function installedRelayBench() {
  const rows = quick ? 50_000 : 200_000;
  // Five rounds: on this shared machine single-round ratios of (b) to (a), which run the same
  // code, spread over 0.80-1.46 (Node 24) and 0.80-4.53 (Node 20) in runs of five.
  const rounds = quick ? 1 : 5;
  const batchSize = 1000;
  say(`## installed relay vs workspace relay: ${fmt(rows)} pending rows per drain, batches of ${batchSize}, acks=-1, ${rounds} round(s) of (a), (b), (c)`);
  const work = await realpath(await mkdtemp(join(tmpdir(), 'eventbus-bench-installed-')));
  const topic = `${uniqueName('bench.')}.order`;
  const prefix = topic.slice(0, topic.length - 'order'.length);
  let topicCreated = false;
  try {
    const t0 = performance.now();
    const packed = await packPublishedPackages(join(work, 'packs'));
    const patched = join(work, 'patched');
    // No dev dependencies: the drain needs the installed packages, not TypeScript.
    await installExample(packed, patched, { omitDev: true });
    const plain = join(work, 'plain');
    await cp(patched, plain, { recursive: true, verbatimSymlinks: true });
    await runCommand(join(plain, 'node_modules/.bin/patch-package'), ['--reverse'], { cwd: plain });
    for (const dir of [patched, plain]) await copyFile(RELAY_PROCESS, join(dir, 'relay-process.mjs'));
    say(
      `  packed ${packed.tarballs.size} packages and installed them into examples/order-service with npm in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );

    const variants = [
      { key: 'a', label: '(a) workspace relay', script: RELAY_PROCESS, under: join(REPO_ROOT, 'packages', 'relay'), kafkajsPatch: KAFKAJS_PATCH_REVISION },
      {
        key: 'b',
        label: '(b) installed, kafkajs patched (postinstall)',
        script: join(patched, 'relay-process.mjs'),
        under: patched,
        kafkajsPatch: KAFKAJS_PATCH_REVISION,
      },
      { key: 'c', label: '(c) installed, plain kafkajs', script: join(plain, 'relay-process.mjs'), under: plain, kafkajsPatch: null },
    ];
    await createTopics(brokers, [{ topic, numPartitions: 12 }]);
    topicCreated = true;
    const drain = async (script, n) => {
      await emptyOutboxAndLog();
      return drainInRelayProcess({ rows: n, batchSize, prefix, script });
    };
    // Not counted: the topic's first writes and the first relay process' cold caches.
    await drain(RELAY_PROCESS, rows / 10);
    const drains = [];
    for (let round = 1; round <= rounds; round++) {
      let aRate = 0;
      for (const v of variants) {
        const d = await drain(v.script, rows);
        const loaded = fileURLToPath(d.relayModule);
        if (!loaded.startsWith(v.under + sep)) throw new BenchSetupError(`${v.label} loaded @eventbus/relay from ${loaded}, not from ${v.under}`);
        if (d.kafkajsPatch !== v.kafkajsPatch)
          throw new BenchSetupError(`${v.label} ran kafkajs patch revision ${d.kafkajsPatch ?? 'none'}, expected ${v.kafkajsPatch ?? 'none'}`);
        // CPU per event: the relay process' own (from process.cpuUsage, so not moved by other
        // work on the machine) and all parties' (Postgres and Kafka from /proc, whoever used them).
        const relayCpu = (d.cores.node / d.rate) * 1e6;
        const totalCpu = (d.cores.total / d.rate) * 1e6;
        if (v.key === 'a') aRate = d.rate;
        const ratio = v.key === 'a' ? '' : `  ${v.key}/a ${(d.rate / aRate).toFixed(2)}`;
        say(
          `  ${(v.key === 'a' ? `round ${round}` : '').padEnd(8)} ${v.label.padEnd(46)} ${fmt(d.rate).padStart(8)} events/s  CPU µs/event: relay ${relayCpu.toFixed(0).padStart(3)}, all ${totalCpu.toFixed(0).padStart(3)}${ratio}; ${showMachineLoad(d.machine)}`,
        );
        drains.push({
          round,
          variant: v.key,
          eventsPerS: d.rate,
          ratioToA: d.rate / aRate,
          relayCpuUsPerEvent: relayCpu,
          totalCpuUsPerEvent: totalCpu,
          coresUsed: d.cores,
          machine: d.machine,
        });
      }
    }
    const of = (key, field) => drains.filter((d) => d.variant === key).map((d) => d[field]);
    const summary = {};
    for (const v of variants) {
      const ratios = of(v.key, 'ratioToA');
      summary[v.key] = {
        label: v.label,
        medianEventsPerS: median(of(v.key, 'eventsPerS')),
        medianRatioToA: median(ratios),
        ratioRange: [Math.min(...ratios), Math.max(...ratios)],
        bestEventsPerS: Math.max(...of(v.key, 'eventsPerS')),
        medianRelayCpuUsPerEvent: median(of(v.key, 'relayCpuUsPerEvent')),
        medianTotalCpuUsPerEvent: median(of(v.key, 'totalCpuUsPerEvent')),
      };
    }
    for (const v of variants) {
      summary[v.key].bestRatioToA = summary[v.key].bestEventsPerS / summary.a.bestEventsPerS;
      summary[v.key].relayCpuRatioToA = summary[v.key].medianRelayCpuUsPerEvent / summary.a.medianRelayCpuUsPerEvent;
    }
    // Three views of the same drains, because other work on the machine only ever slows a drain
    // down, by any amount: the median of the same-round ratios (each pairs drains minutes apart
    // at most); the best drain of each relay (the least disturbed); and the relay process' own
    // CPU per event, which other work moves least.
    say(`  ${rounds} round(s), as ratios to (a): median of the same-round throughput ratios (their range); best drain of each; relay CPU per event (median)`);
    for (const v of variants) {
      const m = summary[v.key];
      const range = rounds > 1 && v.key !== 'a' ? ` (${m.ratioRange.map((r) => r.toFixed(2)).join('–')})` : '';
      say(
        `    ${v.label.padEnd(46)} median ${m.medianRatioToA.toFixed(2)}${range}; best ${fmt(m.bestEventsPerS)} events/s = ${m.bestRatioToA.toFixed(2)}; relay CPU ${m.medianRelayCpuUsPerEvent.toFixed(0)} µs/event = ${m.relayCpuRatioToA.toFixed(2)} (all parties ${m.medianTotalCpuUsPerEvent.toFixed(0)})`,
      );
    }
    say('');
    results.installedRelay = { rows, batchSize, rounds, drains, summary };
  } finally {
    await rm(work, { recursive: true, force: true });
    // Every drain wrote its rows to this topic (600,000 records a round) and nothing reads them.
    if (topicCreated) {
      const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topic] }).catch((error) => say(`  could not delete topic ${topic}: ${error.message}`));
      await admin.disconnect();
    }
  }
}

/**
 * End-to-end latency at a steady rate, without coordinated omission: the load generator
 * keeps its schedule (up to 64 writes in flight) whatever the pipeline does. Two figures:
 * from the commit (the write's promise resolved) to a consumer's receipt, which is what the
 * relay adds; and from the scheduled write time, which also counts Postgres queueing.
 */
async function latencyBench() {
  // 1,000/s is the issue's figure; 200/s shows the pipeline where Postgres is not near its
  // commit ceiling on this machine (see the producer bench), i.e. the relay's own latency.
  results.latency = [];
  for (const rate of values['latency-rates'].split(',').map(Number)) results.latency.push(await latencyAt(rate));
}

async function latencyAt(rate) {
  const seconds = quick ? 5 : 15;
  const warmup = quick ? 1 : 3;
  say(`## end-to-end latency at a steady ${rate} events/s for ${seconds} s (after ${warmup} s of warm-up at the same rate)`);
  /**
   * Observers: a raw kafkajs consumer, or (`observer: 'EventConsumer'`) the product's own
   * consumer with a handler that only notes the arrival, which adds decoding, subscription
   * matching, metrics and its offset commits to what is measured.
   */
  const measure = async (label, topic, send, observer = 'kafkajs') => {
    const scheduled = new Map();
    const committed = new Map();
    const warm = new Set();
    const received = new Map();
    /** The record's timestamp (CreateTime: set by the producer's send), on performance.now()'s clock: splits the latency into before and after Kafka. */
    const sentAt = new Map();
    const arrived = (id, recordTimestamp) => {
      if (!scheduled.has(id) || received.has(id)) return;
      received.set(id, performance.now());
      if (recordTimestamp !== undefined) sentAt.set(id, Number(recordTimestamp) - performance.timeOrigin);
    };
    let consumer;
    if (observer === 'EventConsumer') {
      consumer = new EventConsumer({
        brokers,
        groupId: uniqueName('lat-ec-'),
        routing: { prefix: topic.slice(0, -'order'.length) },
        fromBeginning: false,
        onMetric: () => {},
      });
      consumer.subscribe({ eventTypes: ['order.*'], handler: async (event) => arrived(event.eventKey) });
      await consumer.start();
    } else {
      const k = new Kafka({ brokers, logLevel: logLevel.NOTHING });
      const raw = k.consumer({ groupId: uniqueName('lat-'), maxWaitTimeInMs: 5, minBytes: 1 });
      await raw.connect();
      await raw.subscribe({ topic, fromBeginning: false });
      // autoCommit off: kafkajs 2.2.4 otherwise awaits an OffsetCommit after every fetched
      // batch, which stalls its fetch loop and adds ~30 ms at p50 here to whatever is measured
      // (measured: 33 ms → 1.8 ms at 200 msgs/s). This consumer only observes; it commits nothing.
      await raw.run({
        autoCommit: false,
        eachMessage: async ({ message }) => arrived((message.headers.ce_eventkey ?? message.headers.ce_id).toString(), message.timestamp),
      });
      consumer = { stop: () => raw.disconnect() };
    }
    await new Promise((r) => setTimeout(r, 3000)); // let the group settle before measuring
    // The first `warmup` seconds run at the same rate but are reported apart: they hold the
    // cold start (JIT, the pool opening its connections and preparing its statements, the
    // first plans on fresh tables), which put p99 at 160-280 ms for the first second of the
    // pipeline and 5-24 ms for every later one (measured per second).
    const warmupCount = rate * warmup;
    const window = machineLoadWindow();
    const start = performance.now();
    const total = warmupCount + rate * seconds;
    const inFlight = new Set();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const id = randomUUID();
      scheduled.set(id, due);
      if (i < warmupCount) warm.add(id);
      const p = send(id, i)
        .then((at) => committed.set(id, at))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size > 64) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const deadline = Date.now() + 20_000;
    while (received.size < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const machine = window.end();
    await consumer.stop();
    const summarize = (from, inWarmup = false, to = received) => {
      const xs = [...to]
        .filter(([id]) => warm.has(id) === inWarmup && from.has(id))
        .map(([id, at]) => Math.max(0, at - from.get(id)))
        .sort((x, y) => x - y);
      const q = (p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];
      return { p50: q(0.5), p99: q(0.99), max: xs[xs.length - 1] };
    };
    /** p99 from commit for each second of the measured part: shows whether a tail is one stall or spread. */
    const p99BySecond = () => {
      const bySecond = [];
      for (const [id, at] of received) {
        if (warm.has(id)) continue;
        const second = Math.floor((scheduled.get(id) - start) / 1000) - warmup;
        (bySecond[second] ??= []).push(at - committed.get(id));
      }
      return bySecond.map((xs) => Math.round(xs.sort((x, y) => x - y)[Math.floor(0.99 * xs.length)]));
    };
    const r = {
      received: received.size - [...warm].filter((id) => received.has(id)).length,
      expected: total - warmupCount,
      fromCommit: summarize(committed),
      fromSchedule: summarize(scheduled),
      warmupFromCommit: summarize(committed, true),
      p99BySecond: p99BySecond(),
      machine,
    };
    // The record timestamp has millisecond resolution and the producer sets it as it builds the
    // request: "commit → send" holds the relay's wait for its claim, the claim and the encoding;
    // "send → consumer" Kafka's acknowledgement (acks=-1), the fetch and the delivery.
    if (sentAt.size > 0) r.split = { commitToSend: summarize(committed, false, sentAt), sendToConsumer: summarize(sentAt) };
    const show = (x) => `p50 ${x.p50.toFixed(1)} ms  p99 ${x.p99.toFixed(1)} ms  max ${x.max.toFixed(1)} ms`;
    say(`  ${label.padEnd(40)} from commit/ack:  ${show(r.fromCommit)}  (${r.received}/${r.expected})`);
    say(`  ${''.padEnd(40)} from schedule:    ${show(r.fromSchedule)}`);
    say(`  ${''.padEnd(40)} warm-up (${warmup} s), from commit: ${show(r.warmupFromCommit)}; p99 per second after it: ${r.p99BySecond.join(' ')}`);
    if (r.split)
      say(`  ${''.padEnd(40)} commit → record timestamp (send): ${show(r.split.commitToSend)}; record timestamp → consumer: ${show(r.split.sendToConsumer)}`);
    say(`  ${''.padEnd(40)} ${showMachineLoad(machine)}`);
    return r;
  };
  // Baseline: a raw kafkajs producer sending each event as it is "written"; its "commit" is the send call.
  const rawTopic = `${uniqueName('lat.')}.raw`;
  await createTopics(brokers, [{ topic: rawTopic, numPartitions: 6 }]);
  const k = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const producer = k.producer();
  await producer.connect();
  const raw = await measure('raw kafkajs producer → consumer', rawTopic, (id, i) => {
    const at = performance.now();
    return producer
      .send({ topic: rawTopic, acks: -1, messages: [{ key: `tenant-${i % 50}`, value: JSON.stringify(PAYLOAD), headers: { ce_id: id } }] })
      .then(() => at);
  });
  await producer.disconnect();
  // The pipeline: a committed transaction → NOTIFY → relay → Kafka → consumer.
  const prefix = `${uniqueName('lat.')}.`;
  await createTopics(brokers, [{ topic: `${prefix}order`, numPartitions: 6 }]);
  // The relay runs in a process of its own, as deployed: in the bench's process its batches
  // waited behind the writers' callbacks and the consumer's on one event loop.
  const relay = await startRelayProcess({ databaseUrl: database.url, brokers, prefix });
  const writer = new EventWriter(db);
  // The scheduled id travels as the event key (ce_eventkey); the writer assigns the event id.
  const write = (id, i) =>
    writer.writeEventWithOutbox({ tenantId: `tenant-${i % 50}`, eventKey: id, eventType: 'order.placed', payload: PAYLOAD }).then(() => performance.now());
  const pipeline = await measure('writeEventWithOutbox → relay → consumer', `${prefix}order`, write);
  const product = await measure('  … → EventConsumer handler', `${prefix}order`, write, 'EventConsumer');
  await relay.stop();
  // The same pipeline with the idempotent producer off: what broker-side deduplication costs.
  const plainRelay = await startRelayProcess({ databaseUrl: database.url, brokers, prefix, idempotent: false });
  const plain = await measure('  … same, idempotent producer off', `${prefix}order`, write);
  await plainRelay.stop();
  say(
    `  idempotent / plain producer, from commit: p50 ${(pipeline.fromCommit.p50 / plain.fromCommit.p50).toFixed(2)}×, p99 ${(pipeline.fromCommit.p99 / plain.fromCommit.p99).toFixed(2)}×`,
  );
  say(
    `  pipeline / raw, from commit: p50 ${(pipeline.fromCommit.p50 / raw.fromCommit.p50).toFixed(2)}×, p99 ${(pipeline.fromCommit.p99 / raw.fromCommit.p99).toFixed(2)}×`,
  );
  say(
    `  EventConsumer / raw kafkajs consumer (same pipeline), from commit: p50 ${(product.fromCommit.p50 / pipeline.fromCommit.p50).toFixed(2)}×, p99 ${(product.fromCommit.p99 / pipeline.fromCommit.p99).toFixed(2)}×\n`,
  );
  return { rate, seconds, warmupSeconds: warmup, rawKafka: raw, pipeline, pipelineNotIdempotent: plain, withEventConsumer: product };
}

/** Consumer throughput: bench/consumer-throughput.mjs. */
async function consumerBench() {
  results.consumer = await consumerThroughputBench({ brokers, say, quick, benchEvent });
}

/**
 * Replay (`eventbus replay`'s engine): one tenant's EventLog republished in keyset pages with
 * acks=-1, against the read path alone (dry run) and, when it ran in the same process, the
 * relay's drain rate. One tenant means one key, so one partition: the replay's ceiling is
 * one partition leader, where the relay spreads 50 tenants over 12 partitions.
 */
async function replayBench() {
  const { republishEvents } = await import('@eventbus/replay');
  const { KafkaPublisher } = await import('@eventbus/kafka');
  const rows = quick ? 50_000 : 200_000;
  const pageSize = 1000;
  say(`## replay: ${fmt(rows)} EventLog events of one tenant, 512-byte payloads, pages of ${pageSize}, acks=-1`);
  const tenantId = uniqueName('replay-');
  await pool.query(
    `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id, created_at)
     SELECT gen_random_uuid(), $1, 'r-' || g, 'order.placed', $2::jsonb, 'bench', now() - interval '1 day' + g * interval '1 millisecond'
     FROM generate_series(1, $3::int) g`,
    [tenantId, JSON.stringify(PAYLOAD), rows],
  );
  const topic = `${uniqueName('bench.')}.replayed`;
  await createTopics(brokers, [{ topic, numPartitions: 12 }]);
  const target = { kind: 'topic', topic };
  let window = machineLoadWindow();
  let t0 = performance.now();
  await republishEvents(pool, { filter: { tenantId }, target, dryRun: true, pageSize });
  const readRate = rows / ((performance.now() - t0) / 1000);
  const readMachine = window.end();
  say(`  (b) read path alone (dry run)                ${fmt(readRate).padStart(8)} events/s   ${showMachineLoad(readMachine)}`);
  const publisher = new KafkaPublisher({ brokers });
  await publisher.connect();
  window = machineLoadWindow();
  t0 = performance.now();
  const result = await republishEvents(pool, { filter: { tenantId }, target, publisher, pageSize });
  const replayRate = result.sent / ((performance.now() - t0) / 1000);
  const replayMachine = window.end();
  await publisher.disconnect();
  const relayRate = results.relayDrain?.relayEventsPerS;
  const ratio = relayRate
    ? ` = ${(replayRate / relayRate).toFixed(2)} × the relay's drain (${fmt(relayRate)}/s)`
    : ' (run with the relay bench for the ratio to its drain rate)';
  say(`  replay (republishEvents, one tenant)         ${fmt(replayRate).padStart(8)} events/s${ratio}`);
  say(`      ${showMachineLoad(replayMachine)}\n`);
  results.replay = {
    events: result.sent,
    pageSize,
    replayEventsPerS: replayRate,
    readOnlyEventsPerS: readRate,
    machine: { readOnly: readMachine, replay: replayMachine },
    ...(relayRate ? { ratioToRelayDrain: replayRate / relayRate } : {}),
  };
}
