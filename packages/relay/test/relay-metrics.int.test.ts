import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@eventbus/dev-services';
import { installTestTelemetry, type TestTelemetry } from '@eventbus/telemetry/testing';
import { observeRelayGauges } from '../src/index.js';
import { relayFixture } from './relay-fixture.js';

let telemetry: TestTelemetry;
let f: Awaited<ReturnType<typeof relayFixture>>;
beforeAll(async () => {
  // Before any relay exists: RelayMetrics binds to the global meter provider at construction.
  telemetry = installTestTelemetry();
  f = await relayFixture('relaymetrics');
});
afterAll(async () => {
  await f?.close();
  await telemetry?.uninstall();
});

/** The value of one exposition line, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('relay metrics through OpenTelemetry', () => {
  it('counts published events by type and topic, observes backlog, DLQ size, reconnects and shards, with bounded labels', async () => {
    const relay = await f.startRelay();
    const stopGauges = observeRelayGauges({ relay, pool: f.pool });
    try {
      const topic = `${f.prefix}order`;
      await f.collect([topic]);
      for (let i = 0; i < 3; i++) await f.write({ tenantId: `tenant-${i}`, eventType: i === 2 ? 'order.shipped' : 'order.placed' });
      // A consumer-stage dead letter (as the DLQ mirror writes it) and a re-driven one, which no longer counts.
      await f.pool.query(
        `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, error_class, error_message, attempts, first_failed_at, last_failed_at, status)
         VALUES ('consumer:billing:t:0:1', 'consumer', 'billing', 'Error', 'boom', 3, now(), now(), 'pending'),
                ('consumer:billing:t:0:2', 'consumer', 'billing', 'Error', 'boom', 3, now(), now(), 'redriven')`,
      );
      await waitFor(async () => (await f.pending()) === 0 && relay.metrics.published === 3, { message: 'three events published' });

      const text = await telemetry.prometheus.text();
      expect(sample(text, `eventbus_events_published_total{stage="relay",event_type="order.placed",topic="${topic}"}`)).toBe(2);
      expect(sample(text, `eventbus_events_published_total{stage="relay",event_type="order.shipped",topic="${topic}"}`)).toBe(1);
      expect(sample(text, 'eventbus_relay_published_total')).toBe(3);
      expect(sample(text, 'eventbus_relay_dead_lettered_total')).toBe(0);
      expect(sample(text, 'eventbus_relay_batches_total')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'eventbus_relay_publish_latency_ms_count')).toBe(3);
      expect(sample(text, 'eventbus_relay_publish_latency_ms_bucket{le="+Inf"}')).toBe(3);
      expect(sample(text, 'eventbus_relay_batch_size_count')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'eventbus_outbox_backlog')).toBe(0);
      expect(sample(text, 'eventbus_outbox_failing')).toBe(0);
      expect(sample(text, 'eventbus_outbox_oldest_age_seconds')).toBe(0);
      expect(sample(text, 'eventbus_dlq_size{stage="consumer",group="billing"}')).toBe(1);
      expect(sample(text, 'eventbus_relay_listen_reconnects_total')).toBe(0);
      expect(sample(text, 'eventbus_relay_shards_owned')).toBe(relay.shards.length);
      expect(sample(text, 'eventbus_relay_held_topics')).toBe(0);
      expect(sample(text, 'eventbus_relay_held_topics_overdue')).toBe(0);
      expect(sample(text, 'eventbus_relay_held_back_total')).toBe(0);
      // Bounded labels: neither tenants nor event ids appear anywhere.
      expect(text).not.toMatch(/tenant/);
    } finally {
      stopGauges();
    }
  });

  it('reports the age of the oldest pending event while the relay is stopped', async () => {
    await f.reset();
    await f.pool.query(`DELETE FROM eventbus.outbox`);
    await f.write({ tenantId: 'tenant-late' });
    // Observing works without a running relay: the gauges read Postgres.
    const stopGauges = observeRelayGauges({ relay: { listenReconnects: 0, shards: [] }, pool: f.pool });
    try {
      const age = await waitFor(
        async () => {
          const value = sample(await telemetry.prometheus.text(), 'eventbus_outbox_oldest_age_seconds');
          return value !== undefined && value > 0.2 ? value : undefined;
        },
        { message: 'a growing oldest age' },
      );
      expect(age).toBeLessThan(60);
      expect(sample(await telemetry.prometheus.text(), 'eventbus_outbox_backlog')).toBe(1);
    } finally {
      stopGauges();
    }
  });
});
