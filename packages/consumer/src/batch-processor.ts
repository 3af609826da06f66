// Node's own setImmediate, not the global one that a test's fake clock replaces: the turn is of the real event loop.
import { setImmediate as eventLoopTurn } from 'node:timers/promises';
import { context, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import {
  backoffDelayMs,
  decodeEventFromStrings,
  errorMessage,
  guardedTracer,
  sleep,
  type FailedEvent,
  headersToStrings,
  HEADER,
  summarizeFailures,
} from '@eventbus/core';
import type { EventMetric, EventStatus } from '@eventbus/monitor';
import type { InboxTransaction } from './inbox.js';
import type { InboxCall } from './inbox-pool.js';
import { coordinatesOnlyDlqRecord, DLQ_HEADER, encodeDlqHeaders, truncatedDlqHeaders } from '@eventbus/core';
import { describeFailure, isNonRetriable } from './failure.js';
import { headerBytes, keyBytes } from '@eventbus/core';
import { isTooLargeRefusal, type BatchControl, type InboundMessage, type OutboundMessage } from '@eventbus/kafka';
import { withoutHeaders, type MessageOrigin } from '@eventbus/core';
import type { ResolvedConsumerOptions, ResolvedSubscription } from './options.js';
import { decodeRetryHeaders, encodeRetryHeaders, RETRY_HEADER } from '@eventbus/core';
import { DetachSlots } from './detach-slots.js';
import { RetryPartitions } from './retry-partitions.js';
import { runHandler } from './run-handler.js';
import { unknownSubscriptionError } from './unknown-subscription.js';
import { type CircuitChange, TenantCircuits } from './tenant-circuit.js';
import { copyBytes, type CopyPublisher } from './copy-publisher.js';
import { ConsumerInstruments } from './telemetry/consumer-instruments.js';
import { PROCESS_SPAN_EVENT, recordFailure, startProcessSpan } from './telemetry/process-span.js';
import type { ConsumedEvent, HandlerContext } from './types.js';

/**
 * What became of one message. `done`: finished with; `copy` is the acknowledgement of the retry
 * or DLQ copy it sent, if any, which its offset waits for. `later`: a retry not due yet (or an
 * in-order retry's backoff) in a detached batch, which waits until `at` and handles the message
 * again. `paused` and `interrupted` end the batch without resolving the offset, so the message
 * is fetched again.
 */
type MessageResult = { status: 'done'; copy?: Promise<unknown> } | { status: 'later'; at: number } | { status: 'paused' } | { status: 'interrupted' };
const DONE: MessageResult = { status: 'done' };
const PAUSED: MessageResult = { status: 'paused' };
const INTERRUPTED: MessageResult = { status: 'interrupted' };
const SUBSCRIPTION_CACHE_SIZE = 1000;
/**
 * How long a batch may hold up kafkajs' fetch round before it goes on by itself
 * (BatchControl.detach). kafkajs fetches the next round of a broker's partitions only when every
 * batch of the last round returned: a tenant whose handler takes seconds to fail (a downstream
 * timing out) would otherwise stall every tenant on that broker, each of its events. Short, so
 * the others wait at most this long per slow batch; not zero, so a fast batch (nearly all of
 * them) costs no pause and resume of its partition.
 */
const SLOW_BATCH_MS = 100;
/** How long a partition that had a slow batch has its batches detached at once. */
const SLOW_PARTITION_MEMORY_MS = 10_000;
/**
 * How long a batch runs on the CPU before it lets the event loop turn (eventLoopTurn). Handlers
 * that fail at once, or return without I/O, chain through microtasks only, and Node runs no
 * socket read, timer or other partition's batch until the chain ends: a thousand retries due
 * together (a tenant failing every event) held every other tenant's events for a hundred
 * milliseconds or more. A few milliseconds bounds that wait; a turn costs microseconds.
 */
const CPU_SLICE_MS = 4;

/** In-order mode: the message a paused partition retries, and which handlers still fail on it. */
interface InOrderRetry {
  offset: string;
  attempt: number;
  firstFailureAt: number;
  pending: ResolvedSubscription[];
  /** The retry and DLQ copies sent for the message's other subscriptions on earlier attempts: its offset waits for them too. */
  copies: Promise<unknown>[];
}

/** Facts of a delivery shared by its handlers. */
interface Delivery {
  message: InboundMessage;
  origin: MessageOrigin;
  /** The original headers (retry headers removed), decoded as UTF-8: what handlers, spans and decoding read. */
  headers: Record<string, string>;
  /** Whether the message came through the retry topic: its copies leave the retry headers out. */
  retried: boolean;
  /** 1 for a first delivery; a retry message's attempt. */
  attempt: number;
  /** A retry message's first failure time. */
  firstFailureAt?: number;
  /** A retry message's subscription: only its handler runs. */
  only?: string;
}

/** What the failing handlers of one message left behind. */
interface Failures {
  /** The first failure of this event (kept across retries). */
  firstFailureAt: number | undefined;
  /** In-order mode: the subscriptions to run again on this message. */
  stillFailing: ResolvedSubscription[];
  /** The acknowledgements of the retry and DLQ copies sent for it. */
  copies: Promise<unknown>[];
}

/** What one batch's messages share: its control, its heartbeat, and whether it may wait for a retry. */
interface BatchRun {
  control: BatchControl;
  /** Where the batch runs (handleBatch): whether it may wait for a message to be due. */
  placement: BatchPlacement;
  /** The batch's heartbeat (it notes when the last one was sent), also for runHandler to call during a long handler. */
  heartbeat: () => Promise<void>;
}

/** How a batch waits for a retry to be due (see handleBatch). */
interface BatchPlacement {
  /**
   * Whether the batch may wait with its messages in memory: true once it is detached (it gives
   * back its DetachSlots place meanwhile), or when it can be at once; false when it runs in the
   * fetch round, where a wait would hold up every other partition.
   */
  wait: () => boolean;
  /** After a wait: takes a place again before handlers run; false when the batch is to end (stop, rebalance, rewind). */
  resume: () => Promise<boolean>;
}

/** Collaborators of `BatchProcessor`, owned by `EventConsumer`. */
export interface BatchProcessorDeps {
  options: ResolvedConsumerOptions;
  subscriptions: readonly ResolvedSubscription[];
  publisher: CopyPublisher;
  recordMetric: (metric: EventMetric) => void;
  /** Aborted when stop()'s grace period expires. */
  stopSignal: AbortSignal;
  /** `ctx.processOnce`: `call` says which handler call it is for (the inbox key, subscription included, and for log lines the tenant). */
  processOnce: (call: InboxCall, effect: (tx: InboxTransaction) => Promise<void>) => Promise<boolean>;
  /** CPU_SLICE_MS unless given (a test on a fake clock, where every handler call seems to take its whole wait, sets its own). */
  cpuSliceMs?: number;
}

/**
 * Handles batches: decodes, filters by subscription, runs handlers, and on failure sends the
 * event to the retry topic or the DLQ, or (in-order mode) retries it in place.
 *
 * Waiting never happens inside kafkajs' fetch round: a retry message that is not due yet, or an
 * in-order retry's backoff, detaches its batch from the round (BatchControl.detach), which then
 * waits with its messages in memory while its partition is paused; where it cannot be detached
 * the partition is paused, its resume scheduled, and the offset left unresolved so the message
 * is fetched again. kafkajs fetches a broker's partitions in rounds and waits for every batch
 * of a round, so sleeping in one batch of the round would stall every other partition of that
 * broker; a paused partition stalls nothing but itself. For the same
 * reason a retry or DLQ copy is not awaited where it is sent: the copies of a batch (and of
 * the batches running beside it) go to Kafka together (CopyPublisher), and each offset is
 * committed once its copy, and every earlier one of its partition, was acknowledged
 * (BatchControl.resolveOffset's `after`), while the partition is fetched and handled on.
 */
export class BatchProcessor {
  private readonly inOrder = new Map<string, InOrderRetry>();
  private readonly subscriptionsByType = new Map<string, readonly ResolvedSubscription[]>();
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  /** Places for batches going on outside the fetch round (SLOW_BATCH_MS), handlers running. */
  private readonly detachSlots: DetachSlots;
  /** When a batch of each partition (`topic|partition`) last took SLOW_BATCH_MS or longer: its batches are detached at once for SLOW_PARTITION_MEMORY_MS. */
  private readonly slowPartitions = new Map<string, number>();
  /**
   * Events dead-lettered since a batch last ended, logged then as one line per distinct error
   * (summarizeFailures): a tenant failing every event would otherwise write a line per event.
   */
  private readonly deadLettered: FailedEvent[] = [];
  // Taken at construction (the consumer's start()), after the app started its OTel SDK. Guarded:
  // spans start and end inside the batch, where a tracer that throws would end it (guardedTracer).
  private readonly tracer: Tracer = guardedTracer(trace.getTracer('@eventbus/consumer'));
  private readonly instruments: ConsumerInstruments;
  /** Half the group's heartbeat interval: how often a batch, and a long handler call, heartbeat. */
  private readonly heartbeatEveryMs: number;
  private readonly cpuSliceMs: number;
  private readonly retryPartitions: RetryPartitions;
  /** The per-tenant circuit breaker; undefined when turned off. */
  private readonly circuits: TenantCircuits | undefined;
  /**
   * How late a retry may run, so that one resume of the retry partition handles the retries
   * due meanwhile together. Resumed for each retry exactly when due, a tenant failing a
   * thousand events a second had its retry partition fetched again every millisecond or so,
   * each fetch returning up to a megabyte of messages to handle one: that decoding took the
   * consumer's CPU from every other tenant. A tenth of the first retry delay, at most 100 ms.
   */
  private readonly retrySlackMs: number;

  constructor(private readonly deps: BatchProcessorDeps) {
    const { tenantCircuitBreaker } = deps.options;
    const circuits = tenantCircuitBreaker
      ? new TenantCircuits(tenantCircuitBreaker, { groupId: deps.options.groupId, probeLeaseMs: deps.options.handlerTimeoutMs + 1000 })
      : undefined;
    this.circuits = circuits;
    this.instruments = new ConsumerInstruments(deps.options.groupId, undefined, circuits && (() => circuits.openCount(performance.now())));
    this.heartbeatEveryMs = Math.max(100, Math.floor(deps.options.heartbeatIntervalMs / 2));
    this.cpuSliceMs = deps.cpuSliceMs ?? CPU_SLICE_MS;
    this.detachSlots = new DetachSlots(deps.options.partitionsConsumedConcurrently);
    this.retryPartitions = new RetryPartitions(deps.options.retryConfig);
    this.retrySlackMs = Math.min(100, Math.floor(deps.options.retryConfig.initialDelayMs / 10));
  }

  /**
   * Handles one partition's batch (workThrough). A batch still going after SLOW_BATCH_MS goes on
   * by itself, its partition paused until it ends, so that the fetch round can end and the other
   * partitions be fetched again meanwhile; so does, at once, every batch of that partition for
   * SLOW_PARTITION_MEMORY_MS after its last slow one, and every batch that is about to wait for
   * a retry to be due (BatchPlacement.wait).
   */
  async handleBatch(messages: readonly InboundMessage[], control: BatchControl): Promise<void> {
    const startedAt = Date.now();
    const canDetach = control.detach !== undefined && messages.length > 0;
    // A wait must end on a stop or rebalance: only with the batch's signal.
    const canWait = canDetach && control.signal !== undefined;
    // 'deciding' until the batch ended, was detached ('running' holds a DetachSlots place,
    // 'waiting' none), or is left in the fetch round for good ('inline'). A holder: the batch's
    // own work changes it while handleBatch awaits.
    const batch: { place: 'deciding' | 'running' | 'waiting' | 'inline'; waited?: true; runningSince?: number } = { place: 'deciding' };
    let askedToDetach: (() => void) | undefined;
    const askedToWait = new Promise<'asked'>((resolve) => (askedToDetach = () => resolve('asked')));
    const slots = this.detachSlots;
    const placement: BatchPlacement = {
      // A batch about to wait for a retry's due time is detached at once and waits with its
      // messages in memory, giving back its place meanwhile: paused and fetched again instead,
      // the retry partition of a tenant failing every event was fetched and decoded again (up
      // to a megabyte) every few retries handled.
      wait: () => {
        if (batch.place === 'deciding' && canWait) {
          batch.place = 'waiting';
          askedToDetach?.();
        } else if (batch.place === 'running' && canWait) {
          slots.give();
          batch.place = 'waiting';
        }
        if (batch.place !== 'waiting') return false;
        batch.waited = true;
        return true;
      },
      // After the wait: handlers run again once a place is free (false: the batch ends).
      resume: async () => {
        if (batch.place !== 'waiting') return true;
        if (!(await slots.take(control.signal!))) return false;
        batch.place = 'running';
        batch.runningSince = Date.now();
        return true;
      },
    };
    const partition = canDetach ? `${messages[0]!.topic}|${messages[0]!.partition}` : '';
    // Once the batch ends: its place given back, and whether it was slow noted. A wait for a
    // retry is not slowness (noted as slow, the partition's next batches would need a place at
    // once); a wait for a place is not counted either.
    const settle = (work: Promise<void>) =>
      work.finally(() => {
        if (batch.place === 'running') slots.give();
        if (!batch.waited && Date.now() - (batch.runningSince ?? startedAt) >= SLOW_BATCH_MS) this.slowPartitions.set(partition, Date.now());
      });
    // A partition that had a slow batch lately goes on by itself at once: a tenant whose every
    // event takes long would otherwise hold up a fetch round for SLOW_BATCH_MS again and again.
    // Noted when a slow batch ends: the partition's next batch is fetched only after that.
    const slowAt = canDetach ? this.slowPartitions.get(partition) : undefined;
    if (slowAt !== undefined && startedAt - slowAt <= SLOW_PARTITION_MEMORY_MS) {
      if (canWait) {
        // With every place taken (other slow batches, retries running), it waits for one
        // detached, its messages in memory: run in the fetch round instead, its slow handlers
        // would hold up every other partition's next fetch.
        batch.place = 'waiting';
        const work = (async () => {
          if (await placement.resume()) await this.workThrough(messages, control, placement);
        })();
        control.detach!(settle(work));
        return;
      }
      if (slots.tryTake()) {
        batch.place = 'running';
        control.detach!(settle(this.workThrough(messages, control, placement)));
        return;
      }
      batch.place = 'inline';
      return this.workThrough(messages, control, placement);
    }
    const work = this.workThrough(messages, control, placement);
    if (batch.place === 'deciding') {
      if (!canDetach) {
        batch.place = 'inline';
        return work;
      }
      if ((await settlesWithin(work, SLOW_BATCH_MS, askedToWait)) === 'settled') return;
      if (batch.place === 'deciding') {
        // Its handler already running, past the places a slow batch waits in line in the fetch round.
        if (!slots.tryTake()) {
          batch.place = 'inline';
          return work;
        }
        batch.place = 'running';
      }
    }
    // Slow, or asked to wait (possibly while it was being started: its first message not due yet).
    control.detach!(settle(work));
  }

  /**
   * Processes a batch message by message, resolving each offset once the message is finished
   * with and its copy, if it sent one, is acknowledged (the client commits resolved offsets in
   * the background, every second).
   *
   * Between messages it heartbeats once half a heartbeat interval passed since the last
   * heartbeat (here or inside a handler call): kafkajs itself heartbeats only between
   * batches, so a batch of many short handlers would otherwise send no heartbeat at all
   * (runHandler's timer restarts with every call) and get the member evicted. The check is a
   * subtraction per message; kafkajs throttles the calls again. A rebalance reported by a
   * heartbeat rejects and ends the batch (resolved offsets committed first), so the member
   * rejoins at once instead of finishing stale work. Every CPU_SLICE_MS of work it lets the
   * event loop turn, so the other partitions' fetches and batches go on beside a long one.
   */
  private async workThrough(messages: readonly InboundMessage[], control: BatchControl, placement: BatchPlacement): Promise<void> {
    const { heartbeatEveryMs, cpuSliceMs } = this;
    let lastHeartbeatAt = Date.now();
    let sliceStartedAt = performance.now();
    const run: BatchRun = {
      control,
      placement,
      heartbeat: () => {
        lastHeartbeatAt = Date.now();
        return control.heartbeat();
      },
    };
    try {
      for (let i = 0; i < messages.length; ) {
        if (!control.isRunning() || control.isStale()) return;
        const message = messages[i]!;
        const result = await this.handleMessage(message, run);
        if (result.status === 'later') {
          // Detached: the wait holds up nothing but this partition; a stop, rebalance or rewind ends it early.
          await sleep(result.at - Date.now(), control.signal);
          if (!(await placement.resume())) return;
          sliceStartedAt = performance.now();
          continue;
        }
        if (result.status !== 'done') return;
        i++;
        // With a copy on its way, the offset (and every later one of the partition) is committed
        // only once Kafka acknowledged the copy; the batch and the partition's fetches go on
        // meanwhile. Committed before the copy was stored, a crash in between would lose the
        // failed event: no copy on the retry topic, and the original never read again.
        control.resolveOffset(message.offset, result.copy);
        if (Date.now() - lastHeartbeatAt >= heartbeatEveryMs) await run.heartbeat();
        if (performance.now() - sliceStartedAt >= cpuSliceMs) {
          await eventLoopTurn();
          sliceStartedAt = performance.now();
        }
      }
    } finally {
      this.logDeadLetters();
    }
  }

  /** One warn line per distinct error for the events dead-lettered since the last call. */
  private logDeadLetters(): void {
    if (this.deadLettered.length === 0) return;
    const { logger, groupId } = this.deps.options;
    for (const line of summarizeFailures(this.deadLettered.splice(0))) logger.warn({ groupId, ...line }, 'event dead-lettered');
  }

  /**
   * The subscriptions a delivery runs: those matching its type, or for a retry message the one
   * it names. First deliveries' lists are kept per event type (a filter over the subscriptions
   * allocated an array for every message); at most SUBSCRIPTION_CACHE_SIZE types, since a
   * topic may carry types without bound.
   */
  private subscriptionsFor(eventType: string, only: string | undefined): readonly ResolvedSubscription[] {
    const { subscriptions } = this.deps;
    if (only !== undefined) return subscriptions.filter((s) => s.name === only && s.matches(eventType));
    let matching = this.subscriptionsByType.get(eventType);
    if (!matching) {
      matching = subscriptions.filter((s) => s.matches(eventType));
      if (this.subscriptionsByType.size >= SUBSCRIPTION_CACHE_SIZE) this.subscriptionsByType.clear();
      this.subscriptionsByType.set(eventType, matching);
    }
    return matching;
  }

  /**
   * At stop: cancels scheduled resumes (the partitions are about to be released anyway) and
   * removes the gauge's callback, which would otherwise keep reporting this stopped consumer.
   */
  close(): void {
    for (const timer of this.resumeTimers) clearTimeout(timer);
    this.resumeTimers.clear();
    this.instruments.close();
  }

  /**
   * Not async: it hands on runSubscriptions' promise as it is, where an async function returning
   * it would add a promise and two microtask turns to every message.
   */
  private handleMessage(message: InboundMessage, run: BatchRun): MessageResult | Promise<MessageResult> {
    const delivery = this.openDelivery(message, run);
    if ('status' in delivery) return delivery;
    let event: ConsumedEvent;
    try {
      // The original record's timestamp: createdAt of an event that has no `time` (another SDK's).
      event = decodeEventFromStrings(message.value, delivery.headers, { timestamp: delivery.origin.timestamp });
    } catch (error) {
      return this.deadLetterUndecodable(delivery, error);
    }
    return this.runSubscriptions(event, delivery, run);
  }

  /**
   * The delivery a message stands for: itself, or for a retry message the original it copies
   * (retry headers decoded). A retry message that is not due yet pauses its partition; one
   * whose retry headers cannot be read goes to the DLQ.
   */
  private openDelivery(message: InboundMessage, run: BatchRun): Delivery | MessageResult {
    const raw = headersToStrings(message.headers);
    const delivery: Delivery = {
      message,
      origin: { topic: message.topic, partition: message.partition, offset: message.offset, timestamp: message.timestamp },
      headers: raw,
      retried: false,
      attempt: 1,
    };
    if (message.topic !== this.deps.options.retryTopic) return delivery;
    let retry: ReturnType<typeof decodeRetryHeaders>;
    try {
      retry = decodeRetryHeaders(raw);
    } catch (error) {
      return { status: 'done', copy: this.deadLetter(delivery, error, { attempts: 1, firstFailureAt: Date.now() }) };
    }
    if (retry.info.dueAt > Date.now()) return this.later(run, retry.info.dueAt + this.retrySlackMs);
    return {
      message,
      origin: retry.info.origin,
      headers: retry.original,
      retried: true,
      attempt: retry.info.attempt,
      firstFailureAt: retry.info.firstFailureAt,
      only: retry.info.subscription,
    };
  }

  /**
   * The bytes will not change: straight to the DLQ, the worker carries on. The span shows the
   * undecodable message in its trace (its headers may still carry one).
   */
  private deadLetterUndecodable(delivery: Delivery, error: unknown): MessageResult {
    const copy = this.deadLetterWithoutHandler(delivery, error, undefined);
    this.metric(undecodedEvent(delivery.headers), delivery.attempt, 'dead_lettered', 'undecodable');
    return { status: 'done', copy };
  }

  /**
   * A retry (or a re-drive) names a subscription that no longer handles its event: renamed, or
   * a positional name (`"0"`) that is now another subscription's. Committed as "not for us", the
   * event would be lost in silence, and a re-drive's dead-letter row marked redriven for nothing;
   * it goes to the DLQ instead, naming no subscription (unknownSubscriptionError says why and how
   * to re-drive). `attempts` is the attempt that was due, as for an open tenant circuit.
   */
  private deadLetterUnknownSubscription(event: ConsumedEvent, delivery: Delivery, name: string): MessageResult {
    const { options, subscriptions } = this.deps;
    const error = unknownSubscriptionError({ groupId: options.groupId, eventType: event.eventType, name, subscriptions });
    const copy = this.deadLetterWithoutHandler(delivery, error, name);
    this.metric(event, delivery.attempt, 'dead_lettered');
    return { status: 'done', copy };
  }

  /** The DLQ copy of a delivery no handler is called for, in a process span of its own that records `error`. */
  private deadLetterWithoutHandler(delivery: Delivery, error: unknown, subscription: string | undefined): Promise<unknown> {
    const { attempt } = delivery;
    const { span, context: spanContext } = startProcessSpan(this.tracer, {
      message: delivery.message,
      headers: delivery.headers,
      groupId: this.deps.options.groupId,
      attempt,
      ...(subscription === undefined ? {} : { subscription }),
    });
    try {
      recordFailure(span, error);
      const copy = context.with(spanContext, () =>
        this.deadLetter(delivery, error, { attempts: attempt, firstFailureAt: delivery.firstFailureAt ?? Date.now() }),
      );
      span.addEvent(PROCESS_SPAN_EVENT.deadLettered, this.deadLetterEventAttributes(attempt));
      return copy;
    } finally {
      span.end();
    }
  }

  /**
   * Runs the handlers the event is for: every matching subscription on a first delivery, the
   * one named by a retry message, or (in-order mode) those still failing on a paused partition's
   * message. Failures are retried through the retry topic, in place, or dead-lettered.
   */
  private async runSubscriptions(event: ConsumedEvent, delivery: Delivery, run: BatchRun): Promise<MessageResult> {
    const { message } = delivery;
    const key = `${message.topic}|${message.partition}`;
    // Empty unless in-order mode has a message failing: no lookups on the healthy path.
    const resumed = this.inOrder.size > 0 ? this.inOrder.get(key) : undefined;
    const state = resumed?.offset === message.offset ? resumed : undefined;
    if (!state && resumed) this.inOrder.delete(key);
    const pending = state?.pending ?? this.subscriptionsFor(event.eventType, delivery.only);
    if (pending.length === 0) {
      // A retry whose subscription no longer handles the event: dead-lettered, not dropped.
      if (delivery.only !== undefined) return this.deadLetterUnknownSubscription(event, delivery, delivery.only);
      return DONE; // not for us: skip, the offset is committed
    }
    const attempt = state?.attempt ?? delivery.attempt;
    const failures: Failures = { firstFailureAt: state?.firstFailureAt ?? delivery.firstFailureAt, stillFailing: [], copies: [] };

    for (const subscription of pending) {
      const interrupted = await this.runSubscription(subscription, event, delivery, attempt, run, failures);
      if (interrupted) {
        // Left unresolved: the next owner handles the message again and sends its copies again.
        for (const copy of failures.copies) copy.catch(() => undefined);
        return INTERRUPTED;
      }
    }

    // Copies sent on earlier attempts of this message (for subscriptions that do not run again).
    const copies = state ? [...state.copies, ...failures.copies] : failures.copies;
    if (failures.stillFailing.length > 0) {
      // Kept for the message's offset, which is resolved once its last subscription is done:
      // committed without them, a refused copy would be lost (that subscription does not run again).
      for (const copy of failures.copies) copy.catch(() => undefined); // awaited then; not an unhandled rejection meanwhile
      this.inOrder.set(key, { offset: message.offset, attempt: attempt + 1, firstFailureAt: failures.firstFailureAt!, pending: failures.stillFailing, copies });
      return this.later(run, Date.now() + backoffDelayMs(this.deps.options.retryConfig, attempt));
    }
    if (state) this.inOrder.delete(key);
    if (copies.length === 0) return DONE;
    return { status: 'done', copy: copies.length === 1 ? copies[0] : Promise.all(copies) };
  }

  /**
   * One handler call in its own CONSUMER span (the handler runs with it active, so the spans its
   * own code starts nest under it; retries and DLQ moves are events on it). A failure sends its
   * copy (noted in `failures.copies`) or, in-order, joins `failures.stillFailing`. Returns true
   * when stop()'s grace period interrupted the call.
   */
  private async runSubscription(
    subscription: ResolvedSubscription,
    event: ConsumedEvent,
    delivery: Delivery,
    attempt: number,
    run: BatchRun,
    failures: Failures,
  ): Promise<boolean> {
    const { options } = this.deps;
    const { span, context: handlerContext } = startProcessSpan(this.tracer, {
      message: delivery.message,
      headers: delivery.headers,
      groupId: options.groupId,
      attempt,
      subscription: subscription.name,
    });
    try {
      // An open circuit: the tenant's handler fails every attempt while the others' succeed; the
      // event goes to the DLQ without a call, one copy instead of a retry's copy per attempt.
      // The breaker measures its periods on the monotonic clock: a wall-clock step (NTP) would stretch or cut them.
      const circuitOpen = this.circuits?.openCircuit(subscription.name, event.tenantId, performance.now());
      if (circuitOpen) {
        recordFailure(span, circuitOpen);
        this.deadLetterFailure(event, delivery, circuitOpen, attempt, subscription, failures, handlerContext, span);
        return false;
      }
      const outcome = await runHandler(
        (signal) => context.with(handlerContext, () => subscription.handler(event, this.context(event, delivery, subscription, attempt, signal))),
        { timeoutMs: options.handlerTimeoutMs, stopSignal: this.deps.stopSignal, heartbeat: run.heartbeat, heartbeatEveryMs: this.heartbeatEveryMs },
      );
      if (outcome.ok) {
        this.metric(event, attempt, 'success');
        if (this.circuits) this.noteCircuitChange(this.circuits.succeeded(subscription.name, event.tenantId), subscription, event.tenantId);
        return false;
      }
      recordFailure(span, outcome.error);
      // Stopping: leave the offset unresolved; the next owner of the partition delivers it again.
      if (outcome.interrupted) {
        span.addEvent(PROCESS_SPAN_EVENT.interrupted);
        return true;
      }
      const now = Date.now();
      const nonRetriable = isNonRetriable(outcome.error);
      // A bad event (non-retriable) says nothing about its tenant's handler: not counted.
      if (this.circuits && !nonRetriable) {
        this.noteCircuitChange(
          this.circuits.failed(subscription.name, event.tenantId, errorMessage(outcome.error), performance.now()),
          subscription,
          event.tenantId,
        );
      }
      failures.firstFailureAt ??= now;
      const facts = { attempts: attempt, firstFailureAt: failures.firstFailureAt, subscription: subscription.name };
      if (nonRetriable || attempt >= 1 + options.retryConfig.maxRetries) {
        this.deadLetterFailure(event, delivery, outcome.error, attempt, subscription, failures, handlerContext, span);
      } else if (options.mode === 'non-blocking') {
        const delayMs = backoffDelayMs(options.retryConfig, attempt);
        const retry = { attempt: attempt + 1, dueAt: now + delayMs, firstFailureAt: facts.firstFailureAt, subscription: subscription.name };
        const deadLetterInstead = () => {
          this.metric(event, attempt, 'dead_lettered');
          return this.deadLetter(delivery, outcome.error, facts);
        };
        failures.copies.push(context.with(handlerContext, () => this.publishRetry(delivery, retry, delayMs, deadLetterInstead)));
        span.addEvent(PROCESS_SPAN_EVENT.retryScheduled, retryEventAttributes(attempt + 1, delayMs, options.retryTopic));
        this.metric(event, attempt, 'failed');
      } else {
        span.addEvent(PROCESS_SPAN_EVENT.retryInPlace, retryEventAttributes(attempt + 1, backoffDelayMs(options.retryConfig, attempt)));
        this.metric(event, attempt, 'failed');
        failures.stillFailing.push(subscription);
      }
      return false;
    } finally {
      span.end();
    }
  }

  /** Sends the DLQ copy of a failed (or, circuit open, skipped) attempt, noted in `failures.copies`; the span and the metric say so. */
  private deadLetterFailure(
    event: ConsumedEvent,
    delivery: Delivery,
    error: unknown,
    attempt: number,
    subscription: ResolvedSubscription,
    failures: Failures,
    handlerContext: Context,
    span: Span,
  ): void {
    failures.firstFailureAt ??= Date.now();
    const facts = { attempts: attempt, firstFailureAt: failures.firstFailureAt, subscription: subscription.name };
    failures.copies.push(context.with(handlerContext, () => this.deadLetter(delivery, error, facts)));
    span.addEvent(PROCESS_SPAN_EVENT.deadLettered, this.deadLetterEventAttributes(attempt));
    this.metric(event, attempt, 'dead_lettered');
  }

  /** One log line when a tenant's circuit opens or closes (not one per event). */
  private noteCircuitChange(change: CircuitChange, subscription: ResolvedSubscription, tenantId: string): void {
    if (!change) return;
    const { logger, groupId } = this.deps.options;
    if (change.change === 'opened') {
      const fields = {
        groupId,
        subscription: subscription.name,
        tenantId,
        failures: change.failures,
        openUntil: new Date(change.openUntil).toISOString(),
        err: change.lastError,
      };
      // A failed probe reopens it every openMs while the tenant stays broken: the first open is the warning.
      if (change.reopened) logger.info({ ...fields, reopened: true }, 'tenant circuit opened again: the probe failed');
      else
        logger.warn(
          fields,
          "tenant circuit opened: the tenant's attempts failed in a row while other tenants succeeded; its events go to the DLQ without a handler call until openUntil, then one attempt probes",
        );
    } else {
      logger.info({ groupId, subscription: subscription.name, tenantId }, 'tenant circuit closed: an attempt succeeded; its events are handled again');
    }
  }

  private context(event: ConsumedEvent, delivery: Delivery, subscription: ResolvedSubscription, attempt: number, signal: AbortSignal): HandlerContext {
    const { groupId } = this.deps.options;
    return {
      attempt,
      signal,
      topic: delivery.origin.topic,
      partition: delivery.origin.partition,
      offset: delivery.origin.offset,
      groupId,
      processOnce: (effect) => this.deps.processOnce({ groupId, eventId: event.id, subscription: subscription.name, tenantId: event.tenantId }, effect),
    };
  }

  private deadLetterEventAttributes(attempts: number): Attributes {
    return { 'eventbus.dlq.topic': this.deps.options.dlqTopic, 'eventbus.attempts': attempts };
  }

  /**
   * The message is to be handled again at `at`: a detached batch waits for it with its messages
   * in memory; one in the fetch round pauses its partition until then and ends, so the message
   * is fetched again.
   */
  private later(run: BatchRun, at: number): MessageResult {
    if (run.placement.wait()) return { status: 'later', at };
    this.pauseUntil(run.control, at);
    return PAUSED;
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

  /**
   * Sends the retry copy, due `delayMs` from now, to its delay's partitions (RetryPartitions);
   * resolves once Kafka acknowledged it. A copy Kafka refuses as too large for the retry topic
   * would be refused on every read of the event (its offset is never committed, the partition
   * is rewound to it again and again): the event goes to the DLQ instead (`deadLetterInstead`),
   * whose acknowledgement then stands for it.
   */
  private publishRetry(
    delivery: Delivery,
    retry: { attempt: number; dueAt: number; firstFailureAt: number; subscription: string },
    delayMs: number,
    deadLetterInstead: () => Promise<unknown>,
  ): Promise<unknown> {
    const { message } = delivery;
    const { retryTopic, groupId, logger } = this.deps.options;
    const key = keyBytes(message.key);
    return this.deps.publisher
      .send({
        topic: retryTopic,
        // The original bytes of key, value and headers: what the producer sent.
        key,
        value: message.value ?? Buffer.alloc(0),
        headers: encodeRetryHeaders(originalHeaderBytes(delivery), { ...retry, origin: delivery.origin }),
        choosePartition: this.retryPartitions.chooser(delayMs, key),
      })
      .catch((error: unknown) => {
        if (!isTooLargeRefusal(error)) throw error;
        logger.error(
          { groupId, ...delivery.origin, retryTopic, err: errorMessage(error) },
          "retry copy refused as too large for the retry topic; the event goes to the DLQ instead (raise the retry topic's max.message.bytes)",
        );
        return deadLetterInstead();
      });
  }

  /** Sends the DLQ copy; resolves once Kafka acknowledged it. */
  private deadLetter(delivery: Delivery, error: unknown, facts: { attempts: number; firstFailureAt: number; subscription?: string }): Promise<unknown> {
    const { options } = this.deps;
    const { message } = delivery;
    const failure = describeFailure(error);
    const { headers: h } = delivery;
    this.deadLettered.push({
      eventId: h[HEADER.id] ?? '',
      tenantId: h[HEADER.tenantId] ?? '',
      eventType: h[HEADER.type] ?? '',
      attempts: facts.attempts,
      err: failure.errorMessage,
    });
    const headers = encodeDlqHeaders(originalHeaderBytes(delivery), {
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
    const copy: OutboundMessage = { topic: options.dlqTopic, key: keyBytes(message.key), value: message.value ?? Buffer.alloc(0), headers };
    return this.deps.publisher.send(copy).catch((error: unknown) => this.sendTruncatedDeadLetter(delivery, copy, error));
  }

  /**
   * The last resort for a DLQ copy Kafka refused as too large (any other failure rejects, and
   * the partition is read again from the event): a record with an empty value and only the
   * DLQ and identity headers (truncatedDlqHeaders) stands for the event, so that the partition
   * goes on, the DLQ mirror records the failure, and an operator finds the original on its topic
   * at the coordinates it names. Refused too (a key or identity header alone larger than the
   * DLQ topic accepts), a record without the key and the oversize headers
   * (coordinatesOnlyDlqRecord) stands for it: without it the offset would never resolve and the
   * partition would be read again from the event forever. Any other failure, or a refusal of
   * that last record (a DLQ topic accepting less than its DLQ headers, a few KiB), rejects: the
   * partition is read again from the event, as for any copy Kafka did not take.
   */
  private sendTruncatedDeadLetter(delivery: Delivery, copy: OutboundMessage, refusal: unknown): Promise<unknown> {
    if (!isTooLargeRefusal(refusal)) return Promise.reject(refusal);
    const { groupId, dlqTopic, logger } = this.deps.options;
    const refusedBytes = copyBytes(copy);
    logger.error(
      { groupId, ...delivery.origin, dlqTopic, refusedBytes, err: errorMessage(refusal) },
      "DLQ copy refused as too large for the DLQ topic; a DLQ record without the value stands for the event (header eventbus-dlq-truncated), the original stays on its topic (raise the DLQ topic's max.message.bytes)",
    );
    const truncated = { ...copy, value: Buffer.alloc(0), headers: truncatedDlqHeaders(copy.headers, refusedBytes) };
    return this.deps.publisher.send(truncated).catch((error: unknown) => {
      if (!isTooLargeRefusal(error)) throw error;
      const record = coordinatesOnlyDlqRecord(truncated);
      logger.error(
        { groupId, ...delivery.origin, dlqTopic, dropped: record.headers[DLQ_HEADER.dropped], err: errorMessage(error) },
        'DLQ record without the value refused as too large too; a DLQ record without the key and the oversize headers stands for the event (header eventbus-dlq-dropped)',
      );
      return this.deps.publisher.send({ topic: dlqTopic, ...record });
    });
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
      this.deps.options.logger.warn({ err: errorMessage(error) }, 'recording a metric failed');
    }
  }
}

const RETRY_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(RETRY_HEADER));

/**
 * The delivery's original headers with their values as received (Buffers): what retry and DLQ
 * copies carry. Built only for a copy, not for every message.
 */
function originalHeaderBytes(delivery: Delivery): Record<string, string | Buffer> {
  const bytes = headerBytes(delivery.message.headers);
  return delivery.retried ? withoutHeaders(bytes, RETRY_HEADER_NAMES) : bytes;
}

/** Whether `work` ended within `ms` ('settled'), is still going ('late'), or `asked` resolved first. A rejection within `ms` rejects. */
async function settlesWithin(work: Promise<void>, ms: number, asked: Promise<'asked'>): Promise<'settled' | 'late' | 'asked'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, ms, 'late')));
  try {
    return await Promise.race([work.then(() => 'settled' as const), late, asked]);
  } finally {
    clearTimeout(timer);
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
