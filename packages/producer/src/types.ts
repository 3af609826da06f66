import type { ContractInput, EventContract } from '@eventbus/contracts';

/** What a domain service writes: one event's input. */
export interface EventInput<Payload = unknown> {
  /** Idempotency key, unique per tenant: the same (tenantId, eventKey) is written once. */
  eventKey: string;
  tenantId: string;
  projectId?: string | null;
  /** Lowercase dot-separated: `product.created`, `shopify.product.synced`, `pricechange.applied`. */
  eventType: string;
  /** Any JSON value. */
  payload: Payload;
  /** Defaults to the active correlation id (see `withCorrelationId`), trace id, or a new uuid. */
  correlationId?: string | null;
  causationId?: string | null;
  /** Schema version of the payload. Default 1. */
  version?: number;
}

/** The result of writing one event with its outbox row. */
export interface WriteResult {
  eventLogId: string;
  /** The outbox row's id; null for a duplicate whose original was already published. */
  outboxId: string | null;
  /** True when (tenantId, eventKey) existed: nothing was written, the ids are the original's. */
  duplicate: boolean;
}

/** A contract's event as the producer writes it: the contract gives `eventType` and `version`, its schema types the payload. */
export type ContractEventInput<C extends EventContract> = Omit<EventInput<ContractInput<C>>, 'eventType' | 'version' | 'payload'> & {
  payload: ContractInput<C>;
};

/** One contract event of a `writeEventsWithOutbox` batch; made by `contractEvent`. */
export interface ContractEvent<C extends EventContract = EventContract> {
  contract: C;
  input: ContractEventInput<C>;
}

/** Types a contract event for `writeEventsWithOutbox` (the batch may mix contracts and untyped inputs). */
export function contractEvent<C extends EventContract>(contract: C, input: ContractEventInput<C>): ContractEvent<C> {
  return { contract, input };
}
