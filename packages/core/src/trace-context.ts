import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { context, propagation, trace, TraceFlags } from '@opentelemetry/api';

/** The W3C trace context of the active OpenTelemetry span, or nulls when there is none. */
export function currentTraceContext(): { traceparent: string | null; tracestate: string | null } {
  const span = trace.getSpanContext(context.active());
  if (!span || !trace.isSpanContextValid(span)) return { traceparent: null, tracestate: null };
  const flags = (span.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00';
  return {
    traceparent: `00-${span.traceId}-${span.spanId}-${flags}`,
    tracestate: span.traceState?.serialize() || null,
  };
}

const correlationStorage = new AsyncLocalStorage<string>();

/** Runs `fn` with `correlationId` as the default correlation id of every event it writes. */
export function withCorrelationId<T>(correlationId: string, fn: () => T): T {
  return correlationStorage.run(correlationId, fn);
}

/**
 * The correlation id for a new event: the caller's (`withCorrelationId`), else an OpenTelemetry
 * baggage entry `correlation_id`, else the active trace id (so events written in one request
 * share it), else a new uuid.
 */
export function currentCorrelationId(): string {
  const fromStorage = correlationStorage.getStore();
  if (fromStorage) return fromStorage;
  const fromBaggage = propagation.getBaggage(context.active())?.getEntry('correlation_id')?.value;
  if (fromBaggage) return fromBaggage;
  const span = trace.getSpanContext(context.active());
  if (span && trace.isSpanContextValid(span)) return span.traceId;
  return randomUUID();
}
