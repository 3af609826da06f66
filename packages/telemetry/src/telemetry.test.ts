import { afterEach, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { traceLogFields } from './log-fields.js';
import { startTelemetry } from './start-telemetry.js';
import { installTestTelemetry, type TestTelemetry } from './testing.js';
import { withSpan } from './with-span.js';

let installed: TestTelemetry | undefined;
afterEach(async () => {
  await installed?.uninstall();
  installed = undefined;
});

describe('traceLogFields as pino mixin', () => {
  it('puts trace_id and span_id of the active span on each line, and nothing outside a span', async () => {
    installed = installTestTelemetry();
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write: (chunk, _enc, done) => {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const log = pino({ mixin: traceLogFields }, sink);
    const tracer = trace.getTracer('test');
    let ids: { traceId: string; spanId: string } | undefined;
    await tracer.startActiveSpan('request', async (span) => {
      await Promise.resolve();
      log.info('inside');
      ids = span.spanContext();
      span.end();
    });
    log.info('outside');
    expect(lines[0]).toMatchObject({ msg: 'inside', trace_id: ids!.traceId, span_id: ids!.spanId, trace_flags: '01' });
    expect(lines[1]!.msg).toBe('outside');
    expect(lines[1]).not.toHaveProperty('trace_id');
  });
});

describe('PrometheusMetrics', () => {
  it('renders counters with _total, histograms with buckets, no scope labels and no target_info', async () => {
    installed = installTestTelemetry();
    const meter = metrics.getMeter('test');
    meter.createCounter('eventbus.test.things').add(3, { event_type: 'order.placed' });
    meter.createHistogram('eventbus.test.latency_ms', { advice: { explicitBucketBoundaries: [1, 10] } }).record(5);
    const text = await installed.prometheus.text();
    expect(text).toMatch(/^# TYPE eventbus_test_things_total counter$/m);
    expect(text).toMatch(/^eventbus_test_things_total\{event_type="order.placed"\} 3$/m);
    expect(text).toMatch(/^eventbus_test_latency_ms_bucket\{le="10"\} 1$/m);
    expect(text).toMatch(/^eventbus_test_latency_ms_bucket\{le="1"\} 0$/m);
    expect(text).not.toContain('otel_scope');
    expect(text).not.toContain('target_info');
  });
});

describe('startTelemetry', () => {
  it('without OTEL_* variables starts no SDK, yet serves Prometheus metrics when asked', async () => {
    const telemetry = await startTelemetry({ serviceName: 'test', prometheus: true, env: {} });
    try {
      expect(telemetry.exporting).toBe(false);
      // No tracer provider: spans are the API's no-op, not recorded.
      expect(trace.getTracer('t').startSpan('x').isRecording()).toBe(false);
      metrics.getMeter('test').createCounter('eventbus.test.started').add(1);
      expect(await telemetry.prometheus!.text()).toMatch(/^eventbus_test_started_total 1$/m);
    } finally {
      await telemetry.shutdown();
      await telemetry.shutdown(); // idempotent
      metrics.disable();
    }
  });

  it('with OTEL_TRACES_EXPORTER set starts the SDK and records spans', async () => {
    // The SDK reads process.env itself; console output is avoided by an exporter of `none` for metrics.
    // Only these keys change, and only they are restored: process.env stays the same object
    // (replacing it would detach it from the real environment for the rest of the worker).
    const set = { OTEL_TRACES_EXPORTER: 'console', OTEL_METRICS_EXPORTER: 'none', OTEL_LOG_LEVEL: 'none' };
    const saved = Object.fromEntries(Object.keys(set).map((key) => [key, process.env[key]]));
    Object.assign(process.env, set);
    const telemetry = await startTelemetry({ serviceName: 'test' });
    try {
      expect(telemetry.exporting).toBe(true);
      expect(trace.getTracer('t').startSpan('x').isRecording()).toBe(true);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      const write = process.stdout.write;
      process.stdout.write = () => true; // the console exporter prints the ended span on flush
      try {
        await telemetry.shutdown();
      } finally {
        process.stdout.write = write;
      }
      trace.disable();
      metrics.disable();
      context.disable();
      propagation.disable();
    }
  });
});

describe('withSpan', () => {
  it('runs the function in an active span, ends it, and records a thrown error', async () => {
    installed = installTestTelemetry();
    const inner = await withSpan('eventbus replay', async () => trace.getActiveSpan()!.spanContext().spanId, { attributes: { 'eventbus.replay.id': 'r-1' } });
    await expect(
      withSpan('eventbus dlq redrive', async () => {
        throw new Error('no such row');
      }),
    ).rejects.toThrow('no such row');
    const [ok, failed] = installed.spans();
    expect(ok!.name).toBe('eventbus replay');
    expect(ok!.spanContext().spanId).toBe(inner);
    expect(ok!.attributes['eventbus.replay.id']).toBe('r-1');
    expect(failed!.status).toMatchObject({ code: 2, message: 'no such row' });
    expect(failed!.events.map((e) => e.name)).toEqual(['exception']);
  });
});
