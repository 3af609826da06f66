#!/usr/bin/env node
// Where the relay's Postgres CPU per event goes, beside the raw claim loop of `pnpm bench --only
// relay` (run.mjs, rawClaim): each variant drains a fresh backlog of --rows (filled as the bench
// fills it), and prints per event
// - the CPU of each backend of the probe's database, by application_name (from
//   /proc/<pid>/schedstat, nanoseconds), of the server's own processes and of other databases'
//   backends, which the bench keeps apart;
// - the CPU each statement kind cost its backend (the claim loop reads schedstat around its own
//   statements; the relay process does with relay-postgres-probe-preload.mjs);
// - what Postgres counted in pg_stat_database and pg_stat*_user_tables/indexes: blocks hit,
//   tuples returned, index entries read (outbox_fresh_idx: the dead entries a claim walks);
// - context switches of the backends per 1,000 events.
// Variants (--variants, in this order, --reps times):
//   claim          the bench's raw claim loop: one connection, all 64 shards, BEGIN/claim/COMMIT
//   claim-lanes    two connections on disjoint shards (the relay's lanes), each holding its
//                  transaction open 15 ms after the claim (the relay's Kafka send)
//   claim-spinner  `claim` beside a process that keeps one core busy walking 64 MB of memory
//                  (what the relay's node process and Kafka's JVM do to the cores and the
//                  caches beside its backends)
//   relay          bench/relay-process.mjs, as the bench runs it (2 lanes, batches of 1,000)
//   relay-1-lane   the same with BENCH_LANES=1
// Usage: node bench/relay-postgres-probe.mjs [--rows 60000] [--variants claim,relay] [--reps 2]
// (KAFKA_BROKERS and DATABASE_URL as for the bench). Linux only.
import { fork, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createTestDatabase, createTopics, ensureKafka, ensurePostgres, uniqueName } from '@eventbus/dev-services';
import { shardForTenant } from '@eventbus/schema';
import { RELAY_NODE_FLAGS, RELAY_PROCESS } from './start-relay-process.mjs';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '60000' },
    variants: { type: 'string', default: 'claim,relay,claim-lanes,relay-1-lane,claim-spinner' },
    reps: { type: 'string', default: '1' },
  },
});
const rows = Number(values.rows);
const say = (m) => process.stderr.write(`${m}\n`);
const PAYLOAD = { text: 'x'.repeat(480), n: 1 }; // as the bench's
const BATCH = 1000;
const postgres = await ensurePostgres(say);
const kafka = await ensureKafka(say);
const database = await createTestDatabase(postgres.address, 'probe');
const pool = new pg.Pool({ connectionString: database.url, max: 4 });
pool.on('error', (error) => say(`probe pool: ${error.message}`));
const topic = `${uniqueName('bench.')}.order`;
const prefix = topic.slice(0, topic.length - 'order'.length);
await createTopics(kafka.address.split(','), [{ topic, numPartitions: 12 }]);
const { CLAIM_BATCH_SQL, CLAIM_SESSION_SQL } = await import('../packages/outbox/dist/outbox/claim-batch.js');

/** CPU nanoseconds a process has run so far (/proc/<pid>/schedstat, first field). */
function cpuNs(pid) {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'latin1').split(' ')[0]);
}

/** Every Postgres process: its title (argv[0]), CPU ns and context switches so far. */
function postgresProcesses() {
  const out = new Map();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const title = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0].trim();
      if (!/(^|\/)postgres/.test(title)) continue;
      const status = readFileSync(`/proc/${pid}/status`, 'latin1');
      out.set(Number(pid), {
        title,
        ns: cpuNs(pid),
        voluntary: Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)[1]),
        involuntary: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)[1]),
      });
    } catch {
      // Ended meanwhile.
    }
  }
  return out;
}

const STATS_SQL = `SELECT
  (SELECT row_to_json(d) FROM (SELECT blks_hit, tup_returned, tup_fetched FROM pg_stat_database WHERE datname = current_database()) d) AS db,
  (SELECT json_object_agg(relname, json_build_object('heap_blks_hit', heap_blks_hit, 'idx_blks_hit', idx_blks_hit))
     FROM pg_statio_user_tables WHERE schemaname = 'eventbus' AND relname IN ('outbox', 'event_log')) AS io,
  (SELECT json_object_agg(indexrelname, idx_tup_read) FROM pg_stat_user_indexes WHERE schemaname = 'eventbus' AND relname = 'outbox') AS idx`;
async function pgStats() {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_stat_clear_snapshot()');
    return (await client.query(STATS_SQL)).rows[0];
  } finally {
    client.release();
  }
}

/** An empty outbox and event log, then `rows` pending events over 50 tenants, vacuumed (run.mjs, fillBacklog). */
let fillRound = 0;
async function fill() {
  await pool.query(`BEGIN; ALTER TABLE eventbus.event_log DISABLE TRIGGER event_log_no_truncate; TRUNCATE eventbus.outbox, eventbus.event_log;
    ALTER TABLE eventbus.event_log ENABLE TRIGGER event_log_no_truncate; COMMIT`);
  const round = fillRound++;
  const tenants = Array.from({ length: 50 }, (_, i) => `tenant-${i}`);
  const shards = tenants.map(shardForTenant);
  for (let done = 0; done < rows; done += 20_000) {
    await pool.query(
      `WITH e AS (INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id)
         SELECT gen_random_uuid(), ($1::text[])[1 + g % 50], 'k' || $6::int || '-' || ($3::bigint + g), 'order.placed', $2::jsonb, 'bench'
         FROM generate_series(1, $4::int) g RETURNING id, tenant_id)
       INSERT INTO eventbus.outbox (event_id, shard) SELECT id, ($5::int[])[array_position($1::text[], tenant_id)] FROM e`,
      [tenants, JSON.stringify(PAYLOAD), done, Math.min(20_000, rows - done), shards, round],
    );
  }
  await pool.query('VACUUM ANALYZE eventbus.outbox, eventbus.event_log');
}

/** Prints a variant's figures per event: CPU by process, statements, what Postgres counted. */
function report({ label, events, seconds, before, after, names, statements, statsBefore, statsAfter }) {
  const cpu = new Map();
  const switches = { voluntary: 0, involuntary: 0 };
  for (const [pid, p] of after) {
    const was = before.get(pid);
    const ns = p.ns - (was?.ns ?? 0);
    if (ns <= 0) continue;
    let who;
    if (names.has(pid) || p.title.split(/\s+/).includes(database.name)) {
      who = `backend ${names.get(pid) || '(no application_name)'}`;
      switches.voluntary += p.voluntary - (was?.voluntary ?? 0);
      switches.involuntary += p.involuntary - (was?.involuntary ?? 0);
    } else if (p.title.split(/\s+/).some((w) => w === '[local]' || /\(\d+\)$/.test(w))) who = "other databases' backends";
    else who = `server: ${p.title.replace(/^postgres: (\S+: )?/, '')}`;
    cpu.set(who, (cpu.get(who) ?? 0) + ns);
  }
  const us = (ns) => (ns / 1e3 / events).toFixed(1).padStart(6);
  say(`\n## ${label}: ${events} events in ${seconds.toFixed(2)} s (${Math.round(events / seconds)}/s)`);
  const backends = [...cpu].filter(([who]) => who.startsWith('backend ')).reduce((n, [, ns]) => n + ns, 0);
  say(
    `  the probe database's backends ${us(backends)} µs/event (context switches per 1,000 events: ${((switches.voluntary / events) * 1000).toFixed(1)} voluntary, ${((switches.involuntary / events) * 1000).toFixed(1)} involuntary)`,
  );
  for (const [who, ns] of [...cpu].sort((a, b) => b[1] - a[1])) if (ns / 1e3 / events >= 0.05) say(`    ${us(ns)} µs/event  ${who}`);
  if (statements) {
    say('  statements (count, their backend CPU per event):');
    for (const [text, { count, ns }] of [...statements].sort((a, b) => b[1].ns - a[1].ns))
      if (ns / 1e3 / events >= 0.01) say(`    ${String(count).padStart(5)} ${us(ns)} µs/event  ${text}`);
  }
  const per = (a, b) => ((Number(b) - Number(a)) / events).toFixed(2);
  const { db: d0, io: io0, idx: i0 } = statsBefore;
  const { db: d1, io: io1, idx: i1 } = statsAfter;
  say(
    `  per event: blocks hit ${per(d0.blks_hit, d1.blks_hit)} (outbox heap ${per(io0.outbox.heap_blks_hit, io1.outbox.heap_blks_hit)}, outbox indexes ${per(io0.outbox.idx_blks_hit, io1.outbox.idx_blks_hit)}, event_log heap ${per(io0.event_log.heap_blks_hit, io1.event_log.heap_blks_hit)} and indexes ${per(io0.event_log.idx_blks_hit, io1.event_log.idx_blks_hit)}); tuples returned ${per(d0.tup_returned, d1.tup_returned)}, fetched ${per(d0.tup_fetched, d1.tup_fetched)}; outbox index entries read: ${Object.keys(
      i1,
    )
      .map((name) => `${name} ${per(i0[name], i1[name])}`)
      .join(', ')}`,
  );
}

/** The bench's claim loop on `lanes` connections over disjoint shards, each holding its transaction `openMs` after the claim. */
async function claimLoop(label, { lanes = 1, openMs = 0 } = {}) {
  await fill();
  const clients = [];
  for (let i = 0; i < lanes; i++) {
    const client = new pg.Client({ connectionString: database.url, application_name: lanes === 1 ? 'claim loop' : `claim loop ${i}` });
    await client.connect();
    await client.query(CLAIM_SESSION_SQL);
    clients.push(client);
  }
  const statements = new Map(['BEGIN', 'claim (CLAIM_BATCH_SQL)', 'COMMIT'].map((k) => [k, { count: 0, ns: 0 }]));
  const timed = async (client, kind, query) => {
    const s = statements.get(kind);
    const ns0 = cpuNs(client.processID);
    const result = await query();
    s.count++;
    s.ns += cpuNs(client.processID) - ns0;
    return result;
  };
  const statsBefore = await pgStats();
  const names = new Map(clients.map((c, i) => [c.processID, lanes === 1 ? 'claim loop' : `claim loop ${i}`]));
  const before = postgresProcesses();
  const t0 = performance.now();
  let events = 0;
  await Promise.all(
    clients.map(async (client, i) => {
      const shards = Array.from({ length: 64 }, (_, s) => s).filter((s) => s % lanes === i);
      for (;;) {
        await timed(client, 'BEGIN', () => client.query('BEGIN'));
        const { rowCount } = await timed(client, 'claim (CLAIM_BATCH_SQL)', () => client.query(CLAIM_BATCH_SQL, [shards, BATCH]));
        if (openMs) await new Promise((r) => setTimeout(r, openMs));
        await timed(client, 'COMMIT', () => client.query('COMMIT'));
        if (!rowCount) break;
        events += rowCount;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const after = postgresProcesses();
  for (const client of clients) {
    await client.query('SELECT pg_stat_force_next_flush()');
    await client.end();
  }
  report({ label, events, seconds, before, after, names, statements, statsBefore, statsAfter: await pgStats() });
}

/** The bench's relay process on a fresh backlog; its statements through the preload. */
async function relay(label, env = {}) {
  await fill();
  const statsBefore = await pgStats();
  const child = fork(RELAY_PROCESS, [database.url, kafka.address, prefix, String(BATCH), String(rows)], {
    env: { ...process.env, BENCH_IDEMPOTENT: 'true', ...env },
    execArgv: [...RELAY_NODE_FLAGS, '--import', fileURLToPath(new URL('./relay-postgres-probe-preload.mjs', import.meta.url))],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const message = (key) => new Promise((resolve) => child.on('message', (m) => m[key] && resolve(m)));
  const ready = message('ready');
  const done = message('done');
  await ready;
  // Its connections are open now: name them by application_name.
  const { rows: activity } = await pool.query('SELECT pid, application_name FROM pg_stat_activity WHERE datname = current_database()');
  const names = new Map(activity.map((a) => [a.pid, a.application_name.replace(/ vm-\S+?(\/|$)/, ' $1')]));
  const before = postgresProcesses();
  const drained = await done;
  const after = postgresProcesses();
  const exited = new Promise((r) => child.once('exit', r));
  child.send({ stop: true });
  await exited;
  await new Promise((r) => setTimeout(r, 500)); // the ended backends' statistics
  const statements = new Map();
  const marker = stderr.indexOf('relay-postgres-probe statements ');
  if (marker >= 0) {
    const json = stderr.slice(marker + 'relay-postgres-probe statements '.length).split('\n')[0];
    for (const [text, s] of Object.entries(JSON.parse(json))) statements.set(text, s);
  }
  report({ label, events: drained.drained, seconds: drained.seconds, before, after, names, statements, statsBefore, statsAfter: await pgStats() });
  say(`  the relay process (node): ${((drained.cpuSeconds / drained.drained) * 1e6).toFixed(1)} µs/event`);
}

const variants = {
  claim: () => claimLoop('raw claim loop, one connection, 64 shards'),
  'claim-lanes': () => claimLoop('raw claim loop, 2 connections on disjoint shards, each transaction open 15 ms after its claim', { lanes: 2, openMs: 15 }),
  'claim-spinner': async () => {
    const walk = 'const a = new Int32Array(16 << 20); for (let i = 0; ; i = (i + 16) & (a.length - 1)) a[i]++;';
    const spinner = spawn(process.execPath, ['-e', walk], { stdio: 'ignore' });
    try {
      await claimLoop('raw claim loop, one connection, 64 shards, beside a process walking 64 MB on one core');
    } finally {
      spinner.kill();
    }
  },
  relay: () => relay('relay, 2 lanes (bench/relay-process.mjs)'),
  'relay-1-lane': () => relay('relay, 1 lane (bench/relay-process.mjs, BENCH_LANES=1)', { BENCH_LANES: '1' }),
};
try {
  for (let r = 0; r < Number(values.reps); r++)
    for (const name of values.variants.split(',')) {
      if (!variants[name]) throw new Error(`unknown variant ${name}; one of ${Object.keys(variants).join(', ')}`);
      await variants[name]();
    }
} finally {
  await pool.end();
  await database.drop();
  await kafka.stop();
  await postgres.stop();
}
