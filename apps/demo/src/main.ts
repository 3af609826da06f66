#!/usr/bin/env node
/**
 * `pnpm demo`: the whole pipeline on local defaults, with a live view.
 *
 * domain service (orders in Postgres, each with its event in the same transaction)
 *   → outbox → OutboxRelay (LISTEN/NOTIFY) → Kafka topic eventbus-demo.order
 *   → EventConsumer group "demo-billing": writes one invoice per order through the inbox (effectively once)
 *   → EventConsumer group "demo-shipping": refuses some orders on purpose, so retries and dead letters show
 *   → DlqMirror: the shipping group's DLQ topic → eventbus.dead_letters
 * and the operator console (`eventbus console`) in-process on 127.0.0.1 while it runs; its URL is printed first.
 *
 * Options: --duration <seconds> (default 30), --rate <orders/s> (default 200), --json (summary as JSON on stdout),
 * --external (a relay and a DLQ mirror already run elsewhere, e.g. the docker-compose services: start neither here).
 * Environment: DATABASE_URL, KAFKA_BROKERS (else found or started like the tests do),
 * EVENTBUS_TOPIC_PREFIX (default eventbus-demo.), DEMO_GROUP_PREFIX (default demo-),
 * DEMO_CONSOLE_PORT (default 8080; when taken, a free port; 0 = always a free port).
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { NonRetriableError } from '@eventbus/core';
import { startConsole } from '@eventbus/console';
import { EventConsumer } from '@eventbus/consumer';
import { countDeadLetteredEvents, DlqMirror } from '@eventbus/dead-letters';
import { createTopics, ensureKafka, ensurePostgres, redactUrl, withDatabase } from '@eventbus/dev-services';
import { ConsumerGroupLagReader, KafkaPublisher } from '@eventbus/kafka';
import { EventMetrics, type EventMetric } from '@eventbus/monitor';
import { outboxBacklog } from '@eventbus/outbox';
import { EventWriter } from '@eventbus/producer';
import { OutboxRelay } from '@eventbus/relay';
import { runMigrations } from '@eventbus/schema';
import { startTelemetry, withSpan } from '@eventbus/telemetry';
import type { ContractPayload } from '@eventbus/contracts';
import { orderPlaced } from './catalog.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '30' },
    rate: { type: 'string', default: '200' },
    json: { type: 'boolean', default: false },
    external: { type: 'boolean', default: false },
  },
});
const durationS = Number(values.duration);
const rate = Number(values.rate);
if (!Number.isFinite(durationS) || durationS <= 0 || !Number.isFinite(rate) || rate <= 0 || rate > 5000) {
  process.stderr.write('usage: pnpm demo [--duration <seconds>] [--rate <orders per second, 1-5000>] [--json] [--external]\n');
  process.exit(2);
}
const say = (m: string) => process.stderr.write(`${m}\n`);
// Overridable so that runs side by side on one Kafka (tests) do not share topics or groups.
const PREFIX = process.env.EVENTBUS_TOPIC_PREFIX || 'eventbus-demo.';
const GROUP_PREFIX = process.env.DEMO_GROUP_PREFIX || 'demo-';
const TOPIC = `${PREFIX}order`;
const BILLING = `${GROUP_PREFIX}billing`;
const SHIPPING = `${GROUP_PREFIX}shipping`;
/** Short delays so the demo shows retries and dead letters within seconds (the default retryConfig is 1 s ×2 up to 60 s, 5 retries). */
const SHIPPING_RETRIES = { maxRetries: 3, initialDelayMs: 500, backoffMultiplier: 2, maxDelayMs: 4000 };

/** An order.placed payload, as its contract (./catalog.ts) defines it. */
type Order = ContractPayload<typeof orderPlaced>;

/** What the groups did with this run's events, by event id (Sets: a redelivery is not counted twice). */
class Tally {
  readonly billed = new Set<string>();
  readonly shipped = new Set<string>();
  readonly deadLettered = new Set<string>();
  retries = 0;
  written = 0;
  readonly latency = new EventMetrics();
}

type Db = ReturnType<typeof drizzle>;

async function main() {
  // Exports traces only when OTEL_EXPORTER_OTLP_ENDPOINT (or another OTel exporter variable) is set.
  const telemetry = await startTelemetry({ serviceName: 'eventbus-demo' });
  say('eventbus demo: finding or starting Postgres and Kafka …');
  const postgres = await ensurePostgres(say);
  const kafka = await ensureKafka(say);
  const databaseUrl = await demoDatabase(postgres.address);
  await runMigrations({ connectionString: databaseUrl, log: say });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 8 });
  const db = drizzle(pool);
  await db.execute(
    sql`CREATE TABLE IF NOT EXISTS public.demo_orders (id text PRIMARY KEY, tenant_id text NOT NULL, total numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
  );
  await db.execute(sql`CREATE TABLE IF NOT EXISTS public.demo_invoices (order_id text PRIMARY KEY, tenant_id text NOT NULL, total numeric NOT NULL)`);
  const brokers = kafka.address.split(',');
  await createTopics(brokers, [{ topic: TOPIC, numPartitions: 6 }]);
  const runId = Date.now().toString(36);
  const tally = new Tally();

  // With --external, the relay and the mirror are other processes (docker compose): the demo
  // is then only the domain service and the two consumer groups.
  const relay = values.external
    ? undefined
    : new OutboxRelay({ connectionString: databaseUrl, brokers, routing: { prefix: PREFIX }, instanceId: 'demo-relay' });
  await relay?.start();
  const groups = startGroups({ brokers, databaseUrl, pool, runId, tally });
  await Promise.all(groups.map((g) => g.start()));
  const operatorConsole = await startDemoConsole(pool, brokers, databaseUrl);
  say(`console: ${operatorConsole.url} (live while the demo runs; afterwards: pnpm eventbus console, see the summary)`);

  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const deadline = Date.now() + durationS * 1000;
  // Dead letters of this run that the mirror has written into the DLQ table, by event.
  const mirroredRows = async () => (tally.deadLettered.size === 0 ? 0 : await countDeadLetteredEvents(pool, SHIPPING, [...tally.deadLettered]));
  const published = () => relay?.metrics.published ?? tally.billed.size; // an external relay's count is not visible here
  const stopView = startLiveView(pool, tally, published, deadline);

  await placeOrders(db, runId, tally, deadline, abort.signal);
  // Let the pipeline finish what was written: billing, shipping's retries, the DLQ mirror.
  const drained = async () =>
    tally.billed.size >= tally.written && tally.shipped.size + tally.deadLettered.size >= tally.written && (await mirroredRows()) >= tally.deadLettered.size;
  const drainDeadline = Date.now() + 30_000;
  while (Date.now() < drainDeadline && !(await drained())) await new Promise((r) => setTimeout(r, 200));
  stopView();

  const final = tally.latency.stats(durationS * 1000 + 60_000);
  const invoices = Number((await pool.query(`SELECT count(*)::int AS n FROM public.demo_invoices WHERE order_id LIKE $1`, [`o-${runId}-%`])).rows[0].n);
  const summary = {
    written: tally.written,
    published: published(),
    consumedByBilling: tally.billed.size,
    invoices,
    shippedOk: tally.shipped.size,
    retries: tally.retries,
    deadLettered: tally.deadLettered.size,
    mirroredToTable: await mirroredRows(),
    latencyMs: { p50: final.p50Latency, p95: final.p95Latency, p99: final.p99Latency, max: final.maxLatency },
    lost: tally.written - tally.billed.size,
  };
  await operatorConsole.stop();
  await Promise.all(groups.map((g) => g.stop()));
  await relay?.stop();
  await telemetry.shutdown();
  await pool.end();
  await kafka.stop();
  await postgres.stop();

  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  printSummary(summary, `DATABASE_URL='${redactUrl(databaseUrl)}' KAFKA_BROKERS=${brokers.join(',')} EVENTBUS_TOPIC_PREFIX=${PREFIX}`);
  process.exit(summary.lost === 0 ? 0 : 1);
}

/**
 * The two consumer groups and, unless --external, the DLQ mirror: billing writes one invoice
 * per order through the inbox; shipping refuses some orders on purpose so retries and dead
 * letters show.
 */
function startGroups(options: {
  brokers: string[];
  databaseUrl: string;
  pool: pg.Pool;
  runId: string;
  tally: Tally;
}): Array<{ start(): Promise<void>; stop(): Promise<void> }> {
  const { brokers, databaseUrl, pool, runId, tally } = options;
  const ours = (event: { payload: Order }) => event.payload.run === runId;

  const billing = new EventConsumer({
    brokers,
    groupId: BILLING,
    routing: { prefix: PREFIX },
    fromBeginning: true,
    connectionString: databaseUrl,
    onMetric: (m: EventMetric) => m.status === 'success' && tally.latency.record(m),
  });
  // By contract: the handler's payload is typed and was checked by the schema before the call.
  billing.subscribe(orderPlaced, async (event, ctx) => {
    if (!ours(event)) return;
    const order = event.payload;
    // The invoice and the inbox row commit together: a redelivered event bills nothing twice.
    await ctx.processOnce(async (tx) => {
      await tx.execute(sql`INSERT INTO public.demo_invoices (order_id, tenant_id, total) VALUES (${order.orderId}, ${event.tenantId}, ${order.total})`);
    });
    tally.billed.add(event.id);
  });

  const shipping = new EventConsumer({
    brokers,
    groupId: SHIPPING,
    routing: { prefix: PREFIX },
    fromBeginning: true,
    retryConfig: SHIPPING_RETRIES,
    onMetric: (m: EventMetric) => {
      if (m.status === 'failed') tally.retries++; // an attempt that failed and goes to the retry topic
      if (m.status === 'dead_lettered') tally.deadLettered.add(m.eventId);
    },
  });
  shipping.subscribe(orderPlaced, async (event, ctx) => {
    if (!ours(event)) return;
    const { total } = event.payload;
    // Three business outcomes, so every path of the consumer shows up in the live view:
    if (total < 20) throw new NonRetriableError(`order total ${total} is under the shipping minimum of 20`); // straight to the DLQ
    if (total > 900) throw new Error(`order total ${total} is over the shipping limit of 900`); // retried, then the DLQ
    if (total > 800 && ctx.attempt === 1) throw new Error('carrier API timed out'); // recovers on the first retry
    tally.shipped.add(event.id);
  });
  const mirror = values.external
    ? undefined
    : new DlqMirror({ brokers, pool, routing: { prefix: PREFIX }, groups: [SHIPPING], groupId: `${GROUP_PREFIX}dlq-mirror` });
  return mirror ? [billing, shipping, mirror] : [billing, shipping];
}

/** The domain service: at `rate` orders per second until the deadline, each order and its event in one transaction. */
async function placeOrders(db: Db, runId: string, tally: Tally, deadline: number, signal: AbortSignal): Promise<void> {
  const tenants = ['acme', 'globex', 'initech', 'umbrella', 'hooli'];
  const interval = 1000 / rate;
  let next = Date.now();
  for (let seq = 0; !signal.aborted && Date.now() < deadline; seq++) {
    const orderId = `o-${runId}-${seq}`;
    const tenantId = tenants[seq % tenants.length]!;
    const total = Math.round(Math.random() * 1000);
    // The span stands for the request that places the order: its trace continues through the
    // relay's send span to both groups' process spans (see docs/consumers.md, tracing).
    await withSpan('POST /orders', () =>
      db.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO public.demo_orders (id, tenant_id, total) VALUES (${orderId}, ${tenantId}, ${total})`);
        // The contract gives the type and version and checks the payload before any SQL.
        await new EventWriter(tx).writeEventWithOutbox(orderPlaced, { tenantId, eventKey: `order-${orderId}-placed`, payload: { orderId, total, run: runId } });
      }),
    );
    tally.written++;
    next += interval;
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

/** One line a second on stderr (rewritten in place on a terminal); returns its stop. */
function startLiveView(pool: pg.Pool, tally: Tally, published: () => number, deadline: number): () => void {
  const tty = process.stderr.isTTY;
  let last = { written: 0, published: 0, billed: 0 };
  const view = setInterval(async () => {
    const backlog = await outboxBacklog(pool).catch(() => undefined);
    const s = tally.latency.stats(10_000);
    const now = { written: tally.written, published: published(), billed: tally.billed.size };
    const line =
      `written ${now.written - last.written}/s  published ${now.published - last.published}/s  consumed ${now.billed - last.billed}/s  ` +
      `latency p50 ${s.p50Latency.toFixed(0)} ms p99 ${s.p99Latency.toFixed(0)} ms  retries ${tally.retries}  DLQ ${tally.deadLettered.size}  ` +
      `backlog ${backlog?.pending ?? '?'}  left ${Math.max(0, Math.round((deadline - Date.now()) / 1000))} s`;
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
    last = now;
  }, 1000);
  return () => {
    clearInterval(view);
    if (tty) process.stderr.write('\n');
  };
}

interface Summary {
  written: number;
  published: number;
  consumedByBilling: number;
  invoices: number;
  shippedOk: number;
  retries: number;
  deadLettered: number;
  mirroredToTable: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  lost: number;
}

/** The summary for a person, and the CLI commands that look further (the password redacted in `env`). */
function printSummary(summary: Summary, env: string): void {
  say(`
summary: ${summary.written} orders written, ${summary.published} events published, ${summary.consumedByBilling} billed (${summary.invoices} invoices),
         ${summary.shippedOk} shipped, ${summary.retries} shipping retries, ${summary.deadLettered} dead-lettered by shipping
         (${summary.mirroredToTable} mirrored into eventbus.dead_letters), ${summary.lost} lost
latency commit → billing handler: p50 ${summary.latencyMs.p50.toFixed(1)} ms, p95 ${summary.latencyMs.p95.toFixed(1)} ms, p99 ${summary.latencyMs.p99.toFixed(1)} ms

look further:
  ${env} pnpm eventbus dlq list --group ${SHIPPING}
  ${env} pnpm eventbus stats
  ${env} pnpm eventbus console --groups ${BILLING},${SHIPPING}
  ${env} pnpm eventbus replay --tenant acme --types 'order.*' --dry-run`);
}

/**
 * The operator console on 127.0.0.1, reading this demo's database and Kafka: lag of the two
 * groups, dead letters re-driven to the shipping group, replays. Port 8080 unless taken (or
 * DEMO_CONSOLE_PORT says otherwise), then a free one.
 */
async function startDemoConsole(pool: pg.Pool, brokers: string[], databaseUrl: string) {
  const publisher = new KafkaPublisher({ brokers, clientId: 'eventbus-demo-console' });
  await publisher.connect();
  const lag = new ConsumerGroupLagReader({ brokers, clientId: 'eventbus-demo-console' });
  const options = {
    pool,
    publisher,
    lag,
    groups: [BILLING, SHIPPING],
    routing: { prefix: PREFIX },
    describeConnections: { database: databaseUrl, brokers },
  };
  const port = Number(process.env.DEMO_CONSOLE_PORT ?? 8080);
  const server = await startConsole({ ...options, port }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EADDRINUSE') throw error;
    return startConsole({ ...options, port: 0 });
  });
  return {
    url: server.url,
    async stop() {
      await server.stop();
      await lag.disconnect();
      await publisher.disconnect();
    },
  };
}

/** A database of the demo's own on the found server, so it never touches test data. */
async function demoDatabase(serverUrl: string): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  const exists = await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'eventbus_demo'`);
  if (exists.rowCount === 0) await admin.query('CREATE DATABASE eventbus_demo');
  await admin.end();
  return withDatabase(serverUrl, 'eventbus_demo');
}

main().catch((error: Error) => {
  say(`demo failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
