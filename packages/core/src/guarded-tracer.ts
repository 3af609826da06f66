import {
  context as otelContext,
  INVALID_SPAN_CONTEXT,
  trace,
  type Attributes,
  type AttributeValue,
  type Context,
  type Exception,
  type Link,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TimeInput,
  type Tracer,
} from '@opentelemetry/api';
import { errorMessage } from './errors.js';

/** The class of the API's own non-recording span (no SDK, or sampled out): its methods do nothing, so nothing of it can throw. */
const API_NON_RECORDING_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT).constructor;

/**
 * `tracer` with every call made safe, the way guardedLogger makes a logger safe: a tracer or
 * span that throws (an SDK's sampler or span processor failing, a custom exporter called in
 * `end()`) leaves the span out, and the first such failure is reported once as a process
 * warning. The libraries start and end spans inside their loops (a consumer's batch, a relay's
 * send): an exception there would end the batch or fail the send, and the consumer would crash,
 * restart and handle the same batch again, forever; the relay would send the same rows again.
 *
 * A span the tracer starts is wrapped so its methods are guarded too, unless it is the API's
 * own non-recording span (no SDK registered, or sampled out): that path, the common one, costs
 * no wrapper per span.
 */
export function guardedTracer(tracer: Tracer): Tracer {
  let warned = false;
  const failed = (call: string, error: unknown): void => {
    if (warned) return;
    warned = true;
    process.emitWarning(`the event bus's tracer threw in ${call}; the spans it fails on are left out: ${errorMessage(error)}`, {
      code: 'EVENTBUS_TRACER_FAILED',
    });
  };
  const startSpan = (name: string, options?: SpanOptions, parent?: Context): Span => {
    let span: Span;
    try {
      span = tracer.startSpan(name, options, parent);
    } catch (error) {
      failed('startSpan', error);
      return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    }
    return span.constructor === API_NON_RECORDING_SPAN ? span : new GuardedSpan(span, failed);
  };
  // startActiveSpan(name, fn) | (name, options, fn) | (name, options, context, fn), as the API's own tracers read it.
  const startActiveSpan = (name: string, ...args: unknown[]): unknown => {
    const fn = args.pop() as (span: Span) => unknown;
    const options = args[0] as SpanOptions | undefined;
    const parent = (args[1] as Context | undefined) ?? otelContext.active();
    const span = startSpan(name, options, parent);
    return otelContext.with(trace.setSpan(parent, span), fn, undefined, span);
  };
  return { startSpan, startActiveSpan: startActiveSpan as Tracer['startActiveSpan'] };
}

/** A span whose every call is guarded (see guardedTracer). */
class GuardedSpan implements Span {
  constructor(
    private readonly span: Span,
    private readonly failed: (call: string, error: unknown) => void,
  ) {}

  spanContext(): SpanContext {
    return this.call('spanContext', () => this.span.spanContext(), INVALID_SPAN_CONTEXT);
  }

  isRecording(): boolean {
    return this.call('isRecording', () => this.span.isRecording(), false);
  }

  setAttribute(key: string, value: AttributeValue): this {
    return this.guard('setAttribute', () => this.span.setAttribute(key, value));
  }

  setAttributes(attributes: Attributes): this {
    return this.guard('setAttributes', () => this.span.setAttributes(attributes));
  }

  addEvent(name: string, attributesOrStartTime?: Attributes | TimeInput, startTime?: TimeInput): this {
    return this.guard('addEvent', () => this.span.addEvent(name, attributesOrStartTime, startTime));
  }

  addLink(link: Link): this {
    return this.guard('addLink', () => this.span.addLink(link));
  }

  addLinks(links: Link[]): this {
    return this.guard('addLinks', () => this.span.addLinks(links));
  }

  setStatus(status: SpanStatus): this {
    return this.guard('setStatus', () => this.span.setStatus(status));
  }

  updateName(name: string): this {
    return this.guard('updateName', () => this.span.updateName(name));
  }

  recordException(exception: Exception, time?: TimeInput): void {
    this.guard('recordException', () => this.span.recordException(exception, time));
  }

  end(endTime?: TimeInput): void {
    this.guard('end', () => this.span.end(endTime));
  }

  /** `run`'s result, or `fallback` when it throws (reported once through `failed`). */
  private call<T>(name: string, run: () => T, fallback: T): T {
    try {
      return run();
    } catch (error) {
      this.failed(name, error);
      return fallback;
    }
  }

  private guard(name: string, run: () => unknown): this {
    this.call(name, run, undefined);
    return this;
  }
}
