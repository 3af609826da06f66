/**
 * Test helpers: real OpenTelemetry SDK objects recording in memory, registered globally the
 * way an app's `startTelemetry` would, so library code under test needs no special wiring.
 */
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { PrometheusMetrics } from './prometheus-metrics.js';

/** What `installTestTelemetry` registered. */
export interface TestTelemetry {
  /** Every span ended so far. */
  readonly exporter: InMemorySpanExporter;
  readonly prometheus: PrometheusMetrics;
  spans(): ReadableSpan[];
  /** Unregisters the globals and shuts the providers down. */
  uninstall(): Promise<void>;
}

/** Registers an in-memory tracer provider, a Prometheus-readable meter provider, the async-hooks context manager and W3C propagation. */
export function installTestTelemetry(): TestTelemetry {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const prometheus = new PrometheusMetrics();
  const meterProvider = new MeterProvider({ readers: [prometheus.reader] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    exporter,
    prometheus,
    spans: () => exporter.getFinishedSpans(),
    async uninstall() {
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

export type { ReadableSpan } from '@opentelemetry/sdk-trace';
