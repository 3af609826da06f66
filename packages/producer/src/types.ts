/** What a domain service writes: the seed's event input. */
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
