import { context, trace } from '@opentelemetry/api';

/**
 * `trace_id` and `span_id` of the active span (the field names of the OpenTelemetry log
 * data model), or nothing when no valid span is active. Use it as pino's `mixin`, so every
 * line logged inside a handler or a traced request carries them.
 */
export function traceLogFields(): { trace_id?: string; span_id?: string; trace_flags?: string } {
  const span = trace.getSpanContext(context.active());
  if (!span || !trace.isSpanContextValid(span)) return {};
  return { trace_id: span.traceId, span_id: span.spanId, trace_flags: `0${span.traceFlags.toString(16)}`.slice(-2) };
}
