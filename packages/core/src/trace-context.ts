import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { context, createTraceState, propagation, trace, TraceFlags, type SpanContext } from '@opentelemetry/api';

/** The W3C trace context of the active OpenTelemetry span, or nulls when there is none. */
export function currentTraceContext(): { traceparent: string | null; tracestate: string | null } {
  const span = trace.getSpanContext(context.active());
  if (!span || !trace.isSpanContextValid(span)) return { traceparent: null, tracestate: null };
  return {
    traceparent: formatTraceparent(span),
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

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/**
 * The span context a W3C `traceparent` header names (marked remote), or undefined when the
 * header is absent or malformed. Parsed here rather than through the global propagator:
 * the message format fixes W3C headers, whichever propagator an app registered.
 */
export function parseTraceparent(traceparent: string | undefined | null, tracestate?: string | null): SpanContext | undefined {
  // On the relay's hot path (once per message): one regex, no second validation pass.
  const match = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!match || match[1] === ZERO_TRACE_ID || match[2] === ZERO_SPAN_ID) return undefined;
  const spanContext: SpanContext = { traceId: match[1]!, spanId: match[2]!, traceFlags: parseInt(match[3]!, 16) & TraceFlags.SAMPLED, isRemote: true };
  if (tracestate) spanContext.traceState = createTraceState(tracestate);
  return spanContext;
}

/** The W3C `traceparent` header of a span context. */
export function formatTraceparent(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00';
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}
