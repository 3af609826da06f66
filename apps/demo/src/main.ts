#!/usr/bin/env node
/**
 * `pnpm demo`: the whole pipeline on local defaults, with a live view.
 *
 * domain service (orders in Postgres, events in the same transaction)
 *   → outbox → OutboxRelay (LISTEN/NOTIFY) → Kafka topic eventbus-demo.order
 *   → two consumer groups: "billing" (always succeeds) and "shipping" (refuses some orders)
 *
 * Options: --duration <seconds> (default 30), --rate <orders/s> (default 200), --json (summary as JSON on stdout).
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { Kafka, logLevel } from 'kafkajs';
import { decodeEvent } from '@eventbus/core';
import { createTopics, ensureKafka, ensurePostgres, redactUrl, withDatabase } from '@eventbus/dev-services';
import { EventMetrics } from '@eventbus/monitor';
import { EventWriter } from '@eventbus/producer';
import { OutboxRelay, outboxBacklog } from '@eventbus/relay';
import { runMigrations } from '@eventbus/schema';

const { values } = parseArgs({
  options: { duration: { type: 'string', default: '30' }, rate: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } },
});
const durationS = Number(values.duration);
const rate = Number(values.rate);
if (!Number.isFinite(durationS) || durationS <= 0 || !Number.isFinite(rate) || rate <= 0 || rate > 5000) {
  process.stderr.write('usage: pnpm demo [--duration <seconds>] [--rate <orders per second, 1-5000>] [--json]\n');
  process.exit(2);
}
const say = (m: string) => process.stderr.write(`${m}\n`);
const PREFIX = 'eventbus-demo.';
const TOPIC = `${PREFIX}order`;

async function main() {
  say('eventbus demo: finding or starting Postgres and Kafka …');
  const postgres = await ensurePostgres(say);
  const kafka = await ensureKafka(say);
  const databaseUrl = await demoDatabase(postgres.address);
  await runMigrations({ connectionString: databaseUrl, log: say });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 8 });
  const db = drizzle(pool);
  await db.execute(sql`CREATE TABLE IF NOT EXISTS public.demo_orders (id text PRIMARY KEY, tenant_id text NOT NULL, total numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
  const brokers = kafka.address.split(',');
  await createTopics(brokers, [{ topic: TOPIC, numPartitions: 6 }]);

  const relay = new OutboxRelay({ connectionString: databaseUrl, brokers, routing: { prefix: PREFIX }, instanceId: 'demo-relay' });
  await relay.start();

  // Two consumer groups on the same events. "shipping" refuses orders over 900 (a business
  // rule that fails on purpose) so retries and dead letters show up.
  const stats = { written: 0, billing: 0, shippingOk: 0, shippingRetries: 0, shippingDead: 0 };
  const latency = new EventMetrics();
  const client = new Kafka({ brokers, clientId: 'eventbus-demo', logLevel: logLevel.NOTHING });
  const runId = Date.now().toString(36);
  const billing = client.consumer({ groupId: `demo-billing-${runId}`, maxWaitTimeInMs: 20 });
  const shipping = client.consumer({ groupId: `demo-shipping-${runId}`, maxWaitTimeInMs: 20 });
  const dlqPool = pool;
  for (const [consumer, name] of [[billing, 'billing'], [shipping, 'shipping']] as const) {
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: false });
    await consumer.run({
      eachMessage: async ({ message, partition, topic }) => {
        const event = decodeEvent(message.value, message.headers);
        const latencyMs = Date.now() - event.createdAt.getTime();
        if (name === 'billing') {
          stats.billing++;
          latency.record({ timestamp: Date.now(), eventId: event.id, eventType: event.eventType, tenantId: event.tenantId, latencyMs, retryCount: 0, status: 'success' });
          return;
        }
        const total = (event.payload as { total: number }).total;
        if (total <= 900) {
          stats.shippingOk++;
          return;
        }
        // In-place retries are the consumer package's job; here the demo records the
        // refusal the way the DLQ mirror would, so `eventbus dlq list` has rows to show.
        stats.shippingRetries++;
        stats.shippingDead++;
        await dlqPool.query(
          `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, event_key, topic, partition, "offset",
             message_key, value, headers, error_class, error_message, attempts, first_failed_at, last_failed_at)
           VALUES ($1, 'consumer', 'demo-shipping', $2, $3, $4, $5, $6, $7, $8, $3, $9, '{}'::jsonb, 'OverLimitError', $10, 1, now(), now())
           ON CONFLICT (dedupe_key) DO NOTHING`,
          [`consumer:demo-shipping:${topic}:${partition}:${message.offset}`, event.id, event.tenantId, event.eventType, event.eventKey, topic, partition, message.offset,
           JSON.stringify(event.payload), `order total ${total} is over the shipping limit of 900`],
        );
      },
    });
  }

  // The domain service: each order and its event in one transaction.
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const deadline = Date.now() + durationS * 1000;
  const tenants = ['acme', 'globex', 'initech', 'umbrella', 'hooli'];
  let seq = 0;
  const writer = (async () => {
    const interval = 1000 / rate;
    let next = Date.now();
    while (!abort.signal.aborted && Date.now() < deadline) {
      const id = `o-${runId}-${seq++}`;
      const tenantId = tenants[seq % tenants.length]!;
      const total = Math.round(Math.random() * 1000);
      await db.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO public.demo_orders (id, tenant_id, total) VALUES (${id}, ${tenantId}, ${total})`);
        await new EventWriter(tx).writeEventWithOutbox({ tenantId, eventKey: `order-${id}-placed`, eventType: 'order.placed', payload: { orderId: id, total } });
      });
      stats.written++;
      next += interval;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();

  const tty = process.stderr.isTTY;
  let last = { ...stats, published: 0 };
  const view = setInterval(async () => {
    const backlog = await outboxBacklog(pool).catch(() => undefined);
    const s = latency.stats(10_000);
    const now = { ...stats, published: relay.metrics.published };
    const line =
      `written ${now.written - last.written}/s  published ${now.published - last.published}/s  consumed ${now.billing - last.billing}/s  ` +
      `latency p50 ${s.p50Latency.toFixed(0)} ms p99 ${s.p99Latency.toFixed(0)} ms  shipping refused ${stats.shippingDead}  ` +
      `backlog ${backlog?.pending ?? '?'}  left ${Math.max(0, Math.round((deadline - Date.now()) / 1000))} s`;
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
    last = now;
  }, 1000);

  await writer;
  // Let the pipeline drain what was written.
  const drainDeadline = Date.now() + 15_000;
  while (Date.now() < drainDeadline && (stats.billing < stats.written || (await outboxBacklog(pool)).pending > 0)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  clearInterval(view);
  if (tty) process.stderr.write('\n');
  const final = latency.stats(durationS * 1000 + 60_000);
  const summary = {
    written: stats.written,
    published: relay.metrics.published,
    consumedByBilling: stats.billing,
    shippedOk: stats.shippingOk,
    deadLettered: stats.shippingDead,
    latencyMs: { p50: final.p50Latency, p95: final.p95Latency, p99: final.p99Latency, max: final.maxLatency },
    lost: stats.written - stats.billing,
  };
  await billing.disconnect();
  await shipping.disconnect();
  await relay.stop();
  await pool.end();
  await kafka.stop();
  await postgres.stop();

  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  say(`
summary: ${summary.written} orders written, ${summary.published} events published, ${summary.consumedByBilling} consumed by billing,
         ${summary.shippedOk} shipped, ${summary.deadLettered} refused by shipping (dead letters), ${summary.lost} lost
latency commit → handler: p50 ${summary.latencyMs.p50.toFixed(1)} ms, p95 ${summary.latencyMs.p95.toFixed(1)} ms, p99 ${summary.latencyMs.p99.toFixed(1)} ms

look further (DATABASE_URL=${redactUrl(databaseUrl)}):
  psql "${redactUrl(databaseUrl)}" -c "SELECT group_id, error_message, count(*) FROM eventbus.dead_letters GROUP BY 1, 2"
  psql "${redactUrl(databaseUrl)}" -c "SELECT event_type, count(*) FROM eventbus.event_log GROUP BY 1"
  (the eventbus CLI — dlq list, stats, replay --dry-run — is not built yet; see the README's status section)`);
  process.exit(summary.lost === 0 ? 0 : 1);
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
  say(`demo failed: ${error.message}`);
  process.exit(1);
});
