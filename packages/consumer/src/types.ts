import type { BusEvent } from '@eventbus/core';
import type { ContractPayload, EventContract } from '@eventbus/contracts';
import type { InboxTransaction } from './inbox.js';

/** An event as a handler receives it: the decoded CloudEvents attributes, the payload and all headers. */
export type ConsumedEvent<Payload = unknown> = BusEvent<Payload> & { headers: Record<string, string> };

/** What a handler knows about the delivery it is handling. */
export interface HandlerContext {
  /** 1 on the first delivery, 2 on the first retry, ... (a re-driven dead letter starts at 1 again). */
  attempt: number;
  /** Aborted when the handler times out or `stop()`'s grace period expires: stop work and return. */
  signal: AbortSignal;
  /** Where the event was first consumed (also for retries, which arrive through the retry topic). */
  topic: string;
  partition: number;
  offset: string;
  groupId: string;
  /**
   * Runs `effect` at most once per (group, event id, subscription) in a transaction on the
   * consumer's own pool (needs the `connectionString` option); see `processOnce`. Returns
   * whether it ran.
   */
  processOnce(effect: (tx: InboxTransaction) => Promise<void>): Promise<boolean>;
}

/** A subscription's handler; a rejection is a failure (retried, unless it is a NonRetriableError). */
export type EventHandler<Payload = unknown> = (event: ConsumedEvent<Payload>, context: HandlerContext) => Promise<void>;

/** Arguments of `EventConsumer.subscribe`. */
export interface SubscriptionOptions<Payload = unknown> {
  /** Event type patterns: exact types, `*` for one segment, `#` for any depth (see @eventbus/core event-type). */
  eventTypes: readonly string[];
  handler: EventHandler<Payload>;
  /**
   * Names the subscription in retry and DLQ headers so a retry runs only the handler that
   * failed. Default: its position (`"0"`, `"1"`, ...), stable as long as subscribe calls keep their
   * order. Name it when the group has several: a retry naming a subscription that no longer
   * handles its event is dead-lettered (`UNKNOWN_SUBSCRIPTION`).
   */
  name?: string;
}

/**
 * A handler for a contract's events: the payload is the current version's, upcast from an
 * older one and checked by the schema before the call.
 */
export type ContractHandler<C extends EventContract> = EventHandler<ContractPayload<C>>;

/** Options of `subscribe(contract, handler, options)`. */
export interface ContractSubscriptionOptions {
  /** As `SubscriptionOptions.name`. */
  name?: string;
}

/** Which delivery mode the consumer retries in; see docs/consumers.md for the trade-off. */
export type RetryMode = 'non-blocking' | 'in-order';
