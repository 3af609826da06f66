#!/usr/bin/env node
/**
 * One consumer process of the fault matrix: an `EventConsumer` whose handler records every
 * delivery it receives in `faults.deliveries` (event id, tenant, sequence, partition,
 * offset, worker, time) and applies one side effect per event through `ctx.processOnce`
 * (the inbox), so the checker can show both at-least-once delivery and once-only effects.
 *
 * Poison events (payload `{ poison: 'nonretriable' | 'always' }`) are never recorded as
 * delivered: they throw `NonRetriableError` or a plain error on every attempt, and must end
 * in the group's DLQ (and, through the DlqMirror, in `eventbus.dead_letters`).
 *
 * With POISON_MODE=ignore the worker handles poison events like any other: the control
 * group of scenario 7, whose latency is the "without poison" figure measured at the same
 * time on the same events. RECORD_AS labels its rows (`main` or `control`).
 *
 * Environment: DATABASE_URL, KAFKA_BROKERS, TOPIC_PREFIX, GROUP_ID, WORKER_ID, POISON_MODE, RECORD_AS,
 * HANDLER_DELAY_MS (upper bound of a random pause inside the handler, so a SIGKILL lands
 * mid-handler), SESSION_TIMEOUT_MS, KAFKAJS_LOG_LEVEL (kafkajs' own log: 1 error to
 * 5 debug; default none). The consumer's warnings and errors go to stderr as JSON lines.
 * Prints one JSON line `{"ready":true}` on stdout once it has joined the group.
 */
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { EventConsumer, NonRetriableError } from '@eventbus/consumer';
import { KafkajsConsumerClient, type ConsumerGroupSettings } from '@eventbus/kafka';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    process.stderr.write(`consumer-worker: ${name} is missing\n`);
    process.exit(2);
  }
  return value;
};

const databaseUrl = env('DATABASE_URL');
const workerId = env('WORKER_ID');
const handlerDelayMs = Number(env('HANDLER_DELAY_MS', '0'));
const poisonMode = env('POISON_MODE', 'fail');
const recordAs = env('RECORD_AS', 'main');

/** The consumer's warnings (failed offset commits, dead letters) as JSON lines on stderr: the process log shows when they happened. */
function stderrLine(level: string) {
  return (fields: Record<string, unknown>, message: string) =>
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
}

const pool = new pg.Pool({ connectionString: databaseUrl, max: 4, application_name: `faults-worker ${workerId}` });
pool.on('error', () => undefined);

interface WorkloadPayload {
  seq: number;
  poison?: 'nonretriable' | 'always';
}

const consumer = new EventConsumer({
  brokers: env('KAFKA_BROKERS').split(','),
  groupId: env('GROUP_ID'),
  routing: { prefix: env('TOPIC_PREFIX') },
  fromBeginning: true,
  connectionString: databaseUrl,
  // Poison that fails every time reaches the DLQ after three attempts, about a second.
  retryConfig: { maxRetries: 2, initialDelayMs: 200, maxDelayMs: 1000 },
  handlerTimeoutMs: 15_000,
  shutdownGraceMs: 5000,
  sessionTimeoutMs: Number(env('SESSION_TIMEOUT_MS', '6000')),
  heartbeatIntervalMs: 1000,
  clientId: `faults-${workerId}`,
  // Each handler makes three round trips to Postgres (record, inbox, effect). 4 partitions
  // at a time (the default) keeps the connections of 4 workers, relays and the checker
  // well under Postgres' default max_connections (100) on a server other tests share.
  partitionsConsumedConcurrently: 4,
  onMetric: () => undefined,
  // Silent by default, like the consumer itself; turned up to see what the group did during a fault.
  ...(process.env.KAFKAJS_LOG_LEVEL
    ? {
        consumerClient: (settings: ConsumerGroupSettings) =>
          new KafkajsConsumerClient({ ...settings, brokers: env('KAFKA_BROKERS').split(','), kafkajs: { logLevel: Number(process.env.KAFKAJS_LOG_LEVEL) } }),
      }
    : {}),
  logger: { debug() {}, info() {}, warn: stderrLine('warn'), error: stderrLine('error') },
});

consumer.subscribe<WorkloadPayload>({
  eventTypes: ['order.placed'],
  name: 'checker',
  handler: async (event, ctx) => {
    const poison = poisonMode === 'fail' ? event.payload.poison : undefined;
    if (poison === 'nonretriable') throw new NonRetriableError(`poison event ${event.id}`);
    if (poison === 'always') throw new Error(`poison event ${event.id} fails on every attempt`);
    await pool.query(
      `INSERT INTO faults.deliveries (grp, event_id, tenant_id, seq, worker, kafka_partition, kafka_offset, attempt, received_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [recordAs, event.id, event.tenantId, event.payload.seq, workerId, ctx.partition, ctx.offset, ctx.attempt, Date.now()],
    );
    if (handlerDelayMs > 0) await new Promise((r) => setTimeout(r, Math.random() * handlerDelayMs));
    await ctx.processOnce(async (tx) => {
      await tx.execute(sql`INSERT INTO faults.effects (grp, event_id, worker) VALUES (${recordAs}, ${event.id}, ${workerId})`);
    });
  },
});

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  await consumer.stop();
  await pool.end().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());

consumer.start().then(
  () => process.stdout.write(`${JSON.stringify({ ready: true, worker: workerId })}\n`),
  (error: Error) => {
    process.stderr.write(`consumer-worker ${workerId}: start failed: ${error.message}\n`);
    process.exit(1);
  },
);
