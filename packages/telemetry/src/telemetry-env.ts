/**
 * Whether the standard OpenTelemetry variables ask this process to export anything. Only
 * then do the apps load and start `@opentelemetry/sdk-node` (a few MB of modules, exporters,
 * timers); otherwise tracing stays the API's no-op and costs next to nothing.
 */
export function otelExportRequested(env: NodeJS.ProcessEnv): boolean {
  const value = (name: string) => env[name]?.trim() ?? '';
  if (value('OTEL_SDK_DISABLED').toLowerCase() === 'true') return false;
  if (value('OTEL_CONFIG_FILE')) return true;
  if (value('OTEL_EXPORTER_OTLP_ENDPOINT') || value('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') || value('OTEL_EXPORTER_OTLP_METRICS_ENDPOINT')) return true;
  const exporterChosen = (name: string) => {
    const names = value(name)
      .toLowerCase()
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    return names.length > 0 && names.some((n) => n !== 'none');
  };
  return exporterChosen('OTEL_TRACES_EXPORTER') || exporterChosen('OTEL_METRICS_EXPORTER');
}
