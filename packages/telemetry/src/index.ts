export { startTelemetry, type Telemetry, type TelemetryOptions } from './start-telemetry.js';
export { otelExportRequested } from './telemetry-env.js';
export { PrometheusMetrics } from './prometheus-metrics.js';
export { traceLogFields } from './log-fields.js';
export { withSpan } from './with-span.js';
