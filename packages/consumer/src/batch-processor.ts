import { backoffDelayMs, decodeEvent, headersToStrings, HEADER } from '@eventbus/core';
import type { EventMetric, EventStatus } from '@eventbus/monitor';
import type { InboxTransaction } from './inbox.js';
import { encodeDlqHeaders } from './dlq-headers.js';
import { describeFailure, isNonRetriable } from './failure.js';
import type { BatchControl, InboundMessage } from './kafka/consumer-client.js';
import type { MessageOrigin } from './message-origin.js';
import type { ResolvedConsumerOptions, ResolvedSubscription } from './options.js';
import { decodeRetryHeaders, encodeRetryHeaders } from './retry-headers.js';
import { runHandler } from './run-handler.js';
import type { SerialPublisher } from './serial-publisher.js';
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
  /** The original headers (retry headers removed). */
  headers: Record<string, string>;
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

  constructor(private readonly deps: BatchProcessorDeps) {}

  /** Processes a batch message by message, resolving each offset once the message is finished with. */
  async handleBatch(messages: readonly InboundMessage[], control: BatchControl): Promise<void> {
    for (const message of messages) {
      if (!control.isRunning() || control.isStale()) return;
      const result = await this.handleMessage(message, control);
      if (result !== 'done') return;
      control.resolveOffset(message.offset);
    }
  }

  /** Cancels scheduled resumes (stop): the partitions are about to be released anyway. */
  cancelTimers(): void {
    for (const timer of this.resumeTimers) clearTimeout(timer);
    this.resumeTimers.clear();
  }

  private async handleMessage(message: InboundMessage, control: BatchControl): Promise<MessageResult> {
    const { options } = this.deps;
    const raw = headersToStrings(message.headers);
    let delivery: Delivery = {
      message,
      origin: { topic: message.topic, partition: message.partition, offset: message.offset, timestamp: message.timestamp },
      headers: raw,
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
      delivery = { message, origin: retry.info.origin, headers: retry.original };
      attempt = retry.info.attempt;
      firstFailureAt = retry.info.firstFailureAt;
      only = retry.info.subscription;
    }

    let event: ConsumedEvent;
    try {
      event = decodeEvent(message.value, delivery.headers);
    } catch (error) {
      // The bytes will not change: straight to the DLQ, the worker carries on.
      await this.deadLetter(delivery, error, { attempts: attempt, firstFailureAt: firstFailureAt ?? Date.now() });
      this.metric(undecodedEvent(delivery.headers), attempt, 'dead_lettered');
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
      const outcome = await runHandler((signal) => subscription.handler(event, this.context(event, delivery, current, signal)), {
        timeoutMs: options.handlerTimeoutMs,
        stopSignal: this.deps.stopSignal,
        heartbeat: control.heartbeat,
        heartbeatEveryMs: Math.max(100, Math.floor(options.heartbeatIntervalMs / 2)),
      });
      if (outcome.ok) {
        this.metric(event, current, 'success');
        continue;
      }
      // Stopping: leave the offset unresolved; the next owner of the partition delivers it again.
      if (outcome.interrupted) return 'interrupted';
      const now = Date.now();
      firstFailure ??= now;
      if (isNonRetriable(outcome.error) || current >= 1 + options.retryConfig.maxRetries) {
        await this.deadLetter(delivery, outcome.error, { attempts: current, firstFailureAt: firstFailure, subscription: subscription.name });
        this.metric(event, current, 'dead_lettered');
      } else if (options.mode === 'non-blocking') {
        await this.publishRetry(delivery, {
          attempt: current + 1,
          dueAt: now + backoffDelayMs(options.retryConfig, current),
          firstFailureAt: firstFailure,
          subscription: subscription.name,
        });
        this.metric(event, current, 'failed');
      } else {
        this.metric(event, current, 'failed');
        stillFailing.push(subscription);
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

  private pauseUntil(control: BatchControl, at: number): void {
    const resume = control.pause();
    const timer = setTimeout(() => {
      this.resumeTimers.delete(timer);
      resume();
    }, Math.max(0, at - Date.now()));
    this.resumeTimers.add(timer);
  }

  private async publishRetry(delivery: Delivery, retry: { attempt: number; dueAt: number; firstFailureAt: number; subscription: string }): Promise<void> {
    const { message } = delivery;
    await this.deps.publisher.publish([
      {
        topic: this.deps.options.retryTopic,
        key: message.key?.toString('utf8') ?? '',
        value: message.value ?? Buffer.alloc(0),
        headers: encodeRetryHeaders(delivery.headers, { ...retry, origin: delivery.origin }),
      },
    ]);
  }

  private async deadLetter(delivery: Delivery, error: unknown, facts: { attempts: number; firstFailureAt: number; subscription?: string }): Promise<void> {
    const { options } = this.deps;
    const { message } = delivery;
    const failure = describeFailure(error);
    options.logger.warn({ groupId: options.groupId, ...delivery.origin, error: failure.errorMessage, attempts: facts.attempts }, 'event dead-lettered');
    const headers = encodeDlqHeaders(delivery.headers, {
      ...failure,
      origin: delivery.origin,
      groupId: options.groupId,
      attempts: facts.attempts,
      firstFailureAt: facts.firstFailureAt,
      lastFailureAt: Date.now(),
      retryTopic: options.retryTopic,
      ...(facts.subscription === undefined ? {} : { subscription: facts.subscription }),
    });
    await this.deps.publisher.publish([{ topic: options.dlqTopic, key: message.key?.toString('utf8') ?? '', value: message.value ?? Buffer.alloc(0), headers }]);
  }

  private metric(event: { id: string; eventType: string; tenantId: string; createdAt?: Date }, attempt: number, status: EventStatus): void {
    const now = Date.now();
    try {
      this.deps.recordMetric({
        timestamp: now,
        eventId: event.id,
        eventType: event.eventType,
        tenantId: event.tenantId,
        latencyMs: event.createdAt ? Math.max(0, now - event.createdAt.getTime()) : 0,
        retryCount: attempt - 1,
        status,
      });
    } catch (error) {
      // Metrics must never stop consumption.
      this.deps.options.logger.warn({ error: (error as Error).message }, 'recording a metric failed');
    }
  }
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
