import { context, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import { backoffDelayMs, decodeEvent, headersToStrings, HEADER } from '@eventbus/core';
import type { EventMetric, EventStatus } from '@eventbus/monitor';
import type { InboxTransaction } from './inbox.js';
import { encodeDlqHeaders } from '@eventbus/core';
import { describeFailure, isNonRetriable } from './failure.js';
import { headerBytes, keyBytes } from '@eventbus/core';
import type { BatchControl, InboundMessage } from '@eventbus/kafka';
import { withoutHeaders, type MessageOrigin } from '@eventbus/core';
import type { ResolvedConsumerOptions, ResolvedSubscription } from './options.js';
import { decodeRetryHeaders, encodeRetryHeaders, RETRY_HEADER } from '@eventbus/core';
import { runHandler } from './run-handler.js';
import type { SerialPublisher } from './serial-publisher.js';
import { ConsumerInstruments } from './telemetry/consumer-instruments.js';
import { PROCESS_SPAN_EVENT, recordFailure, startProcessSpan } from './telemetry/process-span.js';
import type { ConsumedEvent, HandlerContext } from './types.js';

/** What became of one message: `done` resolves its offset; the others end the batch without resolving it. */
type MessageResult = 'done' | 'paused' | 'interrupted';

/** In-order mode: the message a paused partition retries, and which handlers still fail on it. */
interface InOrderRetry {
  offset: string;
  attempt: number;
  firstFailureAt: number;
  pending: ResolvedSubscription[];
}

/** Facts of a delivery shared by its handlers. */
interface Delivery {
  message: InboundMessage;
  origin: MessageOrigin;
  /** The original headers (retry headers removed), decoded as UTF-8: what handlers, spans and decoding read. */
  headers: Record<string, string>;
  /** The same headers with their values as received (Buffers): what retry and DLQ copies carry. */
  headerBytes: Record<string, string | Buffer>;
}

/** Collaborators of `BatchProcessor`, owned by `EventConsumer`. */
export interface BatchProcessorDeps {
  options: ResolvedConsumerOptions;
  subscriptions: readonly ResolvedSubscription[];
  publisher: SerialPublisher;
  recordMetric: (metric: EventMetric) => void;
  /** Aborted when stop()'s grace period expires. */
  stopSignal: AbortSignal;
  processOnce: (groupId: string, eventId: string, effect: (tx: InboxTransaction) => Promise<void>) => Promise<boolean>;
}

/**
 * Handles batches: decodes, filters by subscription, runs handlers, and on failure sends the
 * event to the retry topic or the DLQ, or (in-order mode) retries it in place.
 *
 * Waiting never happens inside a batch: a retry message that is not due yet, or an in-order
 * retry's backoff, pauses the partition and schedules its resume, leaving the offset
 * unresolved so the message is fetched again. kafkajs fetches a broker's partitions in
 * rounds and waits for every batch of a round, so sleeping in one batch would stall every
 * other partition of that broker; a paused partition stalls nothing but itself.
 */
export class BatchProcessor {
  private readonly inOrder = new Map<string, InOrderRetry>();
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  // Taken at construction (the consumer's start()), after the app started its OTel SDK.
  private readonly tracer: Tracer = trace.getTracer('@eventbus/consumer');
  private readonly instruments: ConsumerInstruments;
  /** Half the group's heartbeat interval: how often a batch, and a long handler call, heartbeat. */
  private readonly heartbeatEveryMs: number;

  constructor(private readonly deps: BatchProcessorDeps) {
    this.instruments = new ConsumerInstruments(deps.options.groupId);
    this.heartbeatEveryMs = Math.max(100, Math.floor(deps.options.heartbeatIntervalMs / 2));
  }

  /**
   * Processes a batch message by message, resolving each offset once the message is finished
   * with (the client commits resolved offsets in the background, every second).
   *
   * Between messages it heartbeats once half a heartbeat interval passed since the last
   * heartbeat (here or inside a handler call): kafkajs itself heartbeats only between
   * batches, so a batch of many short handlers would otherwise send no heartbeat at all
   * (runHandler's timer restarts with every call) and get the member evicted. The check is a
   * subtraction per message; kafkajs throttles the calls again. A rebalance reported by a
   * heartbeat rejects and ends the batch (resolved offsets committed first), so the member
   * rejoins at once instead of finishing stale work.
   */
  async handleBatch(messages: readonly InboundMessage[], control: BatchControl): Promise<void> {
    const heartbeatEveryMs = this.heartbeatEveryMs;
    let lastHeartbeatAt = Date.now();
    const heartbeat = () => {
      lastHeartbeatAt = Date.now();
      return control.heartbeat();
    };
    for (const message of messages) {
      if (!control.isRunning() || control.isStale()) return;
      const result = await this.handleMessage(message, control, heartbeat);
      if (result !== 'done') return;
      control.resolveOffset(message.offset);
      if (Date.now() - lastHeartbeatAt >= heartbeatEveryMs) await heartbeat();
    }
  }

  /** Cancels scheduled resumes (stop): the partitions are about to be released anyway. */
  cancelTimers(): void {
    for (const timer of this.resumeTimers) clearTimeout(timer);
    this.resumeTimers.clear();
  }

  /** `heartbeat`: the batch's (it notes when the last one was sent), for runHandler to call during a long handler. */
  private async handleMessage(message: InboundMessage, control: BatchControl, heartbeat: () => Promise<void>): Promise<MessageResult> {
    const { options } = this.deps;
    const raw = headersToStrings(message.headers);
    let delivery: Delivery = {
      message,
      origin: { topic: message.topic, partition: message.partition, offset: message.offset, timestamp: message.timestamp },
      headers: raw,
      headerBytes: headerBytes(message.headers),
    };
    let attempt = 1;
    let firstFailureAt: number | undefined;
    let only: string | undefined;
    if (message.topic === options.retryTopic) {
      let retry: ReturnType<typeof decodeRetryHeaders>;
      try {
        retry = decodeRetryHeaders(raw);
      } catch (error) {
        await this.deadLetter(delivery, error, { attempts: 1, firstFailureAt: Date.now() });
        return 'done';
      }
      if (retry.info.dueAt > Date.now()) {
        this.pauseUntil(control, retry.info.dueAt);
        return 'paused';
      }
      delivery = {
        message,
        origin: retry.info.origin,
        headers: retry.original,
        headerBytes: withoutHeaders(delivery.headerBytes, Object.values(RETRY_HEADER)),
      };
      attempt = retry.info.attempt;
      firstFailureAt = retry.info.firstFailureAt;
      only = retry.info.subscription;
    }

    let event: ConsumedEvent;
    try {
      // The original record's timestamp: createdAt of an event that has no `time` (another SDK's).
      event = decodeEvent(message.value, delivery.headers, { timestamp: delivery.origin.timestamp });
    } catch (error) {
      // The bytes will not change: straight to the DLQ, the worker carries on. The span
      // shows the undecodable message in its trace (its headers may still carry one).
      const { span, context: spanContext } = startProcessSpan(this.tracer, { message, headers: delivery.headers, groupId: options.groupId, attempt });
      try {
        recordFailure(span, error);
        await context.with(spanContext, () => this.deadLetter(delivery, error, { attempts: attempt, firstFailureAt: firstFailureAt ?? Date.now() }));
        span.addEvent(PROCESS_SPAN_EVENT.deadLettered, this.deadLetterEventAttributes(attempt));
      } finally {
        span.end();
      }
      this.metric(undecodedEvent(delivery.headers), attempt, 'dead_lettered', 'undecodable');
      return 'done';
    }

    const key = `${message.topic}|${message.partition}`;
    const resumed = this.inOrder.get(key);
    const state = resumed?.offset === message.offset ? resumed : undefined;
    if (!state) this.inOrder.delete(key);
    const pending = state?.pending ?? this.deps.subscriptions.filter((s) => (only === undefined || s.name === only) && s.matches(event.eventType));
    if (pending.length === 0) return 'done'; // not for us: skip, the offset is committed
    const current = state?.attempt ?? attempt;
    let firstFailure = state?.firstFailureAt ?? firstFailureAt;
    const stillFailing: ResolvedSubscription[] = [];

    for (const subscription of pending) {
      // One CONSUMER span per handler call; the handler runs with it active, so the spans
      // its own code starts nest under it. Retries and DLQ moves are events on it.
      const { span, context: handlerContext } = startProcessSpan(this.tracer, {
        message,
        headers: delivery.headers,
        groupId: options.groupId,
        attempt: current,
        subscription: subscription.name,
      });
      try {
        const outcome = await runHandler(
          (signal) => context.with(handlerContext, () => subscription.handler(event, this.context(event, delivery, current, signal))),
          {
            timeoutMs: options.handlerTimeoutMs,
            stopSignal: this.deps.stopSignal,
            heartbeat,
            heartbeatEveryMs: this.heartbeatEveryMs,
          },
        );
        if (outcome.ok) {
          this.metric(event, current, 'success');
          continue;
        }
        recordFailure(span, outcome.error);
        // Stopping: leave the offset unresolved; the next owner of the partition delivers it again.
        if (outcome.interrupted) {
          span.addEvent(PROCESS_SPAN_EVENT.interrupted);
          return 'interrupted';
        }
        const now = Date.now();
        firstFailure ??= now;
        const facts = { attempts: current, firstFailureAt: firstFailure, subscription: subscription.name };
        if (isNonRetriable(outcome.error) || current >= 1 + options.retryConfig.maxRetries) {
          await context.with(handlerContext, () => this.deadLetter(delivery, outcome.error, facts));
          span.addEvent(PROCESS_SPAN_EVENT.deadLettered, this.deadLetterEventAttributes(current));
          this.metric(event, current, 'dead_lettered');
        } else if (options.mode === 'non-blocking') {
          const delayMs = backoffDelayMs(options.retryConfig, current);
          await context.with(handlerContext, () =>
            this.publishRetry(delivery, { attempt: current + 1, dueAt: now + delayMs, firstFailureAt: facts.firstFailureAt, subscription: subscription.name }),
          );
          span.addEvent(PROCESS_SPAN_EVENT.retryScheduled, retryEventAttributes(current + 1, delayMs, options.retryTopic));
          this.metric(event, current, 'failed');
        } else {
          span.addEvent(PROCESS_SPAN_EVENT.retryInPlace, retryEventAttributes(current + 1, backoffDelayMs(options.retryConfig, current)));
          this.metric(event, current, 'failed');
          stillFailing.push(subscription);
        }
      } finally {
        span.end();
      }
    }

    if (stillFailing.length > 0) {
      this.inOrder.set(key, { offset: message.offset, attempt: current + 1, firstFailureAt: firstFailure!, pending: stillFailing });
      this.pauseUntil(control, Date.now() + backoffDelayMs(options.retryConfig, current));
      return 'paused';
    }
    this.inOrder.delete(key);
    return 'done';
  }

  private context(event: ConsumedEvent, delivery: Delivery, attempt: number, signal: AbortSignal): HandlerContext {
    const { groupId } = this.deps.options;
    return {
      attempt,
      signal,
      topic: delivery.origin.topic,
      partition: delivery.origin.partition,
      offset: delivery.origin.offset,
      groupId,
      processOnce: (effect) => this.deps.processOnce(groupId, event.id, effect),
    };
  }

  private deadLetterEventAttributes(attempts: number): Attributes {
    return { 'eventbus.dlq.topic': this.deps.options.dlqTopic, 'eventbus.attempts': attempts };
  }

  private pauseUntil(control: BatchControl, at: number): void {
    const resume = control.pause();
    const timer = setTimeout(
      () => {
        this.resumeTimers.delete(timer);
        resume();
      },
      Math.max(0, at - Date.now()),
    );
    this.resumeTimers.add(timer);
  }

  private async publishRetry(delivery: Delivery, retry: { attempt: number; dueAt: number; firstFailureAt: number; subscription: string }): Promise<void> {
    const { message } = delivery;
    await this.deps.publisher.publish([
      {
        topic: this.deps.options.retryTopic,
        // The original bytes of key, value and headers: the same partition, and what the producer sent.
        key: keyBytes(message.key),
        value: message.value ?? Buffer.alloc(0),
        headers: encodeRetryHeaders(delivery.headerBytes, { ...retry, origin: delivery.origin }),
      },
    ]);
  }

  private async deadLetter(delivery: Delivery, error: unknown, facts: { attempts: number; firstFailureAt: number; subscription?: string }): Promise<void> {
    const { options } = this.deps;
    const { message } = delivery;
    const failure = describeFailure(error);
    options.logger.warn({ groupId: options.groupId, ...delivery.origin, error: failure.errorMessage, attempts: facts.attempts }, 'event dead-lettered');
    const headers = encodeDlqHeaders(delivery.headerBytes, {
      ...failure,
      origin: delivery.origin,
      groupId: options.groupId,
      attempts: facts.attempts,
      firstFailureAt: facts.firstFailureAt,
      lastFailureAt: Date.now(),
      retryTopic: options.retryTopic,
      ...(facts.subscription === undefined ? {} : { subscription: facts.subscription }),
    });
    // The original bytes of key, value and headers (see publishRetry).
    await this.deps.publisher.publish([{ topic: options.dlqTopic, key: keyBytes(message.key), value: message.value ?? Buffer.alloc(0), headers }]);
  }

  /** `eventTypeLabel`: the metric label, `undecodable` for a message whose type header cannot be trusted (bounded labels). */
  private metric(
    event: { id: string; eventType: string; tenantId: string; createdAt?: Date },
    attempt: number,
    status: EventStatus,
    eventTypeLabel = event.eventType,
  ): void {
    const now = Date.now();
    const latencyMs = event.createdAt ? Math.max(0, now - event.createdAt.getTime()) : 0;
    try {
      this.instruments.record(eventTypeLabel, status, latencyMs);
      this.deps.recordMetric({
        timestamp: now,
        eventId: event.id,
        eventType: event.eventType,
        tenantId: event.tenantId,
        latencyMs,
        retryCount: attempt - 1,
        status,
      });
    } catch (error) {
      // Metrics must never stop consumption.
      this.deps.options.logger.warn({ error: (error as Error).message }, 'recording a metric failed');
    }
  }
}

/** Attributes of a retry span event: which attempt comes next, when, and through which topic. */
function retryEventAttributes(nextAttempt: number, delayMs: number, retryTopic?: string): Attributes {
  const attributes: Attributes = { 'eventbus.retry.attempt': nextAttempt, 'eventbus.retry.delay_ms': delayMs };
  if (retryTopic !== undefined) attributes['eventbus.retry.topic'] = retryTopic;
  return attributes;
}

/** The identity of an undecodable message, as far as its headers tell. */
function undecodedEvent(headers: Record<string, string>): { id: string; eventType: string; tenantId: string; createdAt?: Date } {
  const time = new Date(headers[HEADER.time] ?? '');
  return {
    id: headers[HEADER.id] ?? '',
    eventType: headers[HEADER.type] ?? '',
    tenantId: headers[HEADER.tenantId] ?? '',
    ...(Number.isNaN(time.getTime()) ? {} : { createdAt: time }),
  };
}
