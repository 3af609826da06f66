import { metrics } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { PrometheusMetrics } from './prometheus-metrics.js';
import { otelExportRequested } from './telemetry-env.js';

/** Options of `startTelemetry`. */
export interface TelemetryOptions {
  /** `service.name` of the resource, unless OTEL_SERVICE_NAME says otherwise. */
  serviceName: string;
  /** Keep every metric readable in Prometheus text format (an app that serves /metrics). Default false. */
  prometheus?: boolean;
  /** Decides whether the SDK starts; default `process.env` (the SDK itself always reads `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** What `startTelemetry` started. */
export interface Telemetry {
  /** True when the OpenTelemetry SDK runs because OTEL_* variables asked for an exporter. */
  readonly exporting: boolean;
  /** Every metric in Prometheus text format; undefined unless `prometheus` was asked for. */
  readonly prometheus: PrometheusMetrics | undefined;
  /** Flushes spans and metrics still buffered and stops; idempotent. Call it on SIGTERM before exiting. */
  shutdown(): Promise<void>;
}

/**
 * Starts OpenTelemetry for an app, before the app creates relays or consumers (their
 * instruments bind to the meter provider that is global at that moment).
 *
 * - OTEL_EXPORTER_OTLP_ENDPOINT (or another standard OTEL_* exporter variable) set: starts
 *   `@opentelemetry/sdk-node` from the environment (OTLP traces; metrics by
 *   OTEL_METRICS_EXPORTER unless `prometheus`, which then takes the metrics), with the
 *   async-hooks context manager and the W3C propagator. Loaded only then.
 * - Otherwise: no tracer provider (spans are the API's no-op), and for `prometheus` just a
 *   MeterProvider with a Prometheus reader.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const env = options.env ?? process.env;
  const prometheus = options.prometheus ? new PrometheusMetrics() : undefined;
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || options.serviceName;
  let stop: () => Promise<void>;
  const exporting = otelExportRequested(env);
  if (exporting) {
    const { startNodeSdk } = await import('@opentelemetry/sdk-node');
    const sdk = startNodeSdk({
      resourceAttributes: { 'service.name': serviceName },
      ...(prometheus ? { metricReaders: [prometheus.reader] } : {}),
      // Logs go to stdout as JSON (pino) with trace ids; no OTel log pipeline.
      logRecordProcessors: [],
    });
    stop = () => sdk.shutdown();
  } else if (prometheus) {
    const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': serviceName }), readers: [prometheus.reader] });
    metrics.setGlobalMeterProvider(provider);
    stop = () => provider.shutdown();
  } else {
    stop = async () => {};
  }
  let stopping: Promise<void> | undefined;
  return {
    exporting,
    prometheus,
    shutdown: () => (stopping ??= stop()),
  };
}
