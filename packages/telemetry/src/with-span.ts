import { SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';

/**
 * Runs `fn` in a new active span (a CLI command, a demo request) and ends it, recording a
 * thrown error as the span's exception and status. Everything `fn` does, e.g. writing events
 * or a replay's `send` spans, joins this span's trace.
 */
export async function withSpan<T>(name: string, fn: (span: Span) => Promise<T>, options: { tracer?: string; attributes?: Attributes } = {}): Promise<T> {
  const tracer = trace.getTracer(options.tracer ?? '@eventbus/telemetry');
  return tracer.startActiveSpan(name, { attributes: options.attributes ?? {} }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      throw error;
    } finally {
      span.end();
    }
  });
}
