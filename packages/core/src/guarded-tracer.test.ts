import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { INVALID_SPAN_CONTEXT, trace, type Span, type Tracer } from '@opentelemetry/api';
import { guardedTracer } from './guarded-tracer.js';

describe('guardedTracer', () => {
  let warning: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(() => warning.mockRestore());

  it("hands on the API's non-recording span as it is (no wrapper on the path without an SDK)", () => {
    const span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    const tracer = guardedTracer({ startSpan: () => span, startActiveSpan: vi.fn() } as unknown as Tracer);
    expect(tracer.startSpan('x')).toBe(span);
  });

  it('leaves out what the tracer throws on, reports the first failure once, and hands startActiveSpan callbacks the guarded span', () => {
    const fail = (): never => {
      throw new Error('exporter down');
    };
    const valid = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 };
    let starts = 0;
    const inner = {
      startSpan: () => {
        if (starts++ === 0) fail();
        return {
          spanContext: () => valid,
          isRecording: fail,
          setAttribute: fail,
          addEvent: fail,
          setStatus: fail,
          recordException: fail,
          end: fail,
        } as unknown as Span;
      },
    } as unknown as Tracer;
    const tracer = guardedTracer(inner);
    const first = tracer.startSpan('first');
    expect(first.spanContext()).toBe(INVALID_SPAN_CONTEXT);
    const second = tracer.startSpan('second');
    expect(second.isRecording()).toBe(false);
    expect(second.setAttribute('a', 1).addEvent('e').setStatus({ code: 2 })).toBe(second);
    second.recordException(new Error('x'));
    second.end();
    // The callback gets the (guarded) span and its result is handed back.
    const third = tracer.startActiveSpan('third', (span) => {
      span.end();
      return span.spanContext();
    });
    expect(third).toBe(valid);
    expect(warning).toHaveBeenCalledTimes(1);
    expect(warning.mock.calls[0]![0]).toContain('exporter down');
  });
});
