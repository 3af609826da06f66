import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installTestTelemetry, type TestTelemetry } from '@eventbus/telemetry/testing';
import { RelayMetrics } from './metrics.js';

let telemetry: TestTelemetry;
beforeEach(() => {
  telemetry = installTestTelemetry();
});
afterEach(async () => {
  await telemetry.uninstall();
});

describe('RelayMetrics', () => {
  it('forwards field increments to OpenTelemetry counters and keeps the in-process numbers', async () => {
    const metrics = new RelayMetrics();
    expect(await telemetry.prometheus.text()).toMatch(/^eventbus_relay_published_total 0$/m);
    metrics.published++;
    metrics.published += 2;
    metrics.batches++;
    metrics.publishLatency.observe(12);
    expect(metrics.published).toBe(3);
    const text = await telemetry.prometheus.text();
    expect(text).toMatch(/^eventbus_relay_published_total 3$/m);
    expect(text).toMatch(/^eventbus_relay_batches_total 1$/m);
    expect(text).toMatch(/^eventbus_relay_publish_latency_ms_bucket\{le="10"\} 0$/m);
    expect(text).toMatch(/^eventbus_relay_publish_latency_ms_bucket\{le="25"\} 1$/m);
    expect(metrics.publishLatency.count).toBe(1);
  });

  it('records relay-stage failures and dead letters by event type', async () => {
    const metrics = new RelayMetrics();
    metrics.recordPublishFailure('media.uploaded');
    metrics.recordPublishFailure('media.uploaded');
    metrics.recordDeadLettered('media.uploaded');
    expect([metrics.publishFailures, metrics.deadLettered]).toEqual([2, 1]);
    const text = await telemetry.prometheus.text();
    expect(text).toMatch(/^eventbus_events_failed_total\{stage="relay",event_type="media.uploaded"\} 2$/m);
    expect(text).toMatch(/^eventbus_events_dead_lettered_total\{stage="relay",event_type="media.uploaded"\} 1$/m);
    expect(text).toMatch(/^eventbus_relay_dead_lettered_total 1$/m);
  });
});
