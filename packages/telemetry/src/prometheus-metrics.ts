import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';

/**
 * A metric reader that renders every instrument of its MeterProvider in the Prometheus
 * text format on demand: the app's own HTTP server serves it at /metrics, so the exporter's
 * built-in server stays off. No `otel_scope_*` labels and no `target_info`: the series look
 * like hand-written Prometheus metrics and keep the names dashboards already use.
 */
export class PrometheusMetrics {
  readonly reader = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true });
  private readonly serializer = new PrometheusSerializer(undefined, false, undefined, true, true);

  /** Collects now (observable callbacks run, e.g. the backlog query) and renders. */
  async text(): Promise<string> {
    // A failed observable callback only leaves its own series out; the rest is served.
    const { resourceMetrics } = await this.reader.collect();
    return `${this.serializer.serialize(resourceMetrics).trimEnd()}\n`;
  }
}
