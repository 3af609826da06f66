import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { installTestTelemetry } from '@eventbus/telemetry/testing';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { EventWriter } from '@eventbus/producer';
import { createTopics, uniqueName, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { startRelayProcess } from './relay-process-fixture.js';

let database: TestDatabase;
let pool: pg.Pool;
const children: ChildProcess[] = [];

beforeAll(async () => {
  database = await testDatabase('relaymetricsapp');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pool.on('error', () => undefined);
});
// Both tests share the database: a relay a failed test left running would claim the next
// test's events (and publish them under its own prefix).
afterEach(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('apps/relay telemetry', () => {
  it('serves the OpenTelemetry metrics in Prometheus format: events by type, latency and batch histograms, backlog, DLQ size', async () => {
    const prefix = `${uniqueName('metricsapp.')}.`;
    const topic = `${prefix}order`;
    const brokers = testServices().kafkaBrokers;
    await createTopics(brokers, [{ topic }]);
    const relay = startRelayProcess(
      {
        DATABASE_URL: database.url,
        KAFKA_BROKERS: brokers.join(','),
        EVENTBUS_TOPIC_PREFIX: prefix,
        RELAY_POLL_INTERVAL_MS: '200',
        RELAY_REBALANCE_INTERVAL_MS: '300',
      },
      children,
    );
    const port = await waitFor(() => /"port":(\d+)/.exec(relay.output())?.[1], { timeoutMs: 20_000, message: 'relay ready' });
    const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

    // Before any event: counters show at 0, gauges read Postgres.
    const idle = await metrics();
    expect(idle).toMatch(/^eventbus_relay_published_total 0$/m);
    expect(idle).toMatch(/^eventbus_outbox_backlog 0$/m);
    expect(idle).toMatch(/^eventbus_relay_listen_reconnects_total 0$/m);

    await new EventWriter(drizzle(pool)).writeEventsWithOutbox([
      { tenantId: 't-1', eventKey: 'a', eventType: 'order.placed', payload: {} },
      { tenantId: 't-2', eventKey: 'b', eventType: 'order.placed', payload: {} },
    ]);
    await pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, event_type, error_class, error_message, attempts, first_failed_at, last_failed_at)
       VALUES ('relay:x', 'relay', 'order.placed', 'PublishError', 'too large', 6, now(), now())`,
    );
    // Both counters and the backlog in one scrape: a scrape is not atomic across meters. The
    // relay's meter is read after its gauges' Postgres queries, the publisher's before them, so
    // one scrape can show the relay's count ahead of the publisher's by a batch that landed in
    // between. And the counters move when Kafka acknowledges, before the lane's transaction
    // deletes the rows, so the backlog gauge can still count a published row.
    const published = `eventbus_events_published_total{stage="relay",event_type="order.placed",topic="${topic}"} 2`;
    const text = await waitFor(
      async () => {
        const t = await metrics();
        const settled = /^eventbus_relay_published_total 2$/m.test(t) && t.includes(published) && /^eventbus_outbox_backlog 0$/m.test(t);
        return settled ? t : undefined;
      },
      { timeoutMs: 30_000, message: 'two events published, by both counters, and the backlog empty' },
    );
    expect(text).toMatch(/^# TYPE eventbus_relay_publish_latency_ms histogram$/m);
    expect(text).toMatch(/^eventbus_relay_publish_latency_ms_bucket\{le="\+Inf"\} 2$/m);
    expect(text).toMatch(/^eventbus_relay_batch_size_count [1-9]\d*$/m);
    expect(text).toMatch(/^eventbus_outbox_oldest_age_seconds 0$/m);
    expect(text).toMatch(/^eventbus_dlq_size\{stage="relay"\} 1$/m);
    expect(text).toMatch(/^eventbus_relay_shards_owned 64$/m);
    expect(text).not.toMatch(/t-1|t-2/); // no tenant labels

    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('with OTEL_EXPORTER_OTLP_ENDPOINT set, exports the send spans over OTLP, continuing the producer trace, and flushes on SIGTERM', async () => {
    // A stand-in collector: OTLP/HTTP with JSON bodies, so the test can read them.
    const received: any[] = [];
    const collector = createServer(async (req: IncomingMessage, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      if (req.url === '/v1/traces') received.push(JSON.parse(body));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const telemetry = installTestTelemetry(); // this process only needs a producer span and a context manager
    try {
      const prefix = `${uniqueName('otlpapp.')}.`;
      const brokers = testServices().kafkaBrokers;
      const relay = startRelayProcess(
        {
          DATABASE_URL: database.url,
          KAFKA_BROKERS: brokers.join(','),
          EVENTBUS_TOPIC_PREFIX: prefix,
          RELAY_POLL_INTERVAL_MS: '200',
          RELAY_REBALANCE_INTERVAL_MS: '300',
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          // Long enough that only the SIGTERM flush can deliver the spans in time.
          OTEL_BSP_SCHEDULE_DELAY: '60000',
        },
        children,
      );
      await waitFor(() => /"otlp":true/.test(relay.output()), { timeoutMs: 20_000, message: 'relay ready with OTLP' });
      const producer = await trace.getTracer('orders-api').startActiveSpan('POST /orders', async (span) => {
        await new EventWriter(drizzle(pool)).writeEventWithOutbox({ tenantId: 't-otlp', eventKey: 'otlp-1', eventType: 'order.placed', payload: {} });
        span.end();
        return span.spanContext();
      });
      await waitFor(async () => (await pool.query(`SELECT count(*)::int AS n FROM eventbus.outbox`)).rows[0].n === 0, {
        timeoutMs: 30_000,
        message: 'event published',
      });
      relay.child.kill('SIGTERM');
      expect(await relay.exited).toBe(0);

      const spans = received.flatMap((r) =>
        r.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((sp: any) => ({ ...sp, resource: rs.resource })))),
      );
      const send = spans.find((sp) => sp.name === `send ${prefix}order`);
      expect(send, `spans received: ${spans.map((sp) => sp.name).join(', ')}`).toBeDefined();
      expect(send.traceId).toBe(producer.traceId);
      expect(send.parentSpanId).toBe(producer.spanId);
      expect(send.resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'eventbus-relay' } });
    } finally {
      await telemetry.uninstall();
      collector.close();
    }
  });
});
