/**
 * One error class for every package of the event bus. `code` is a closed union so callers
 * can switch on it; `retriable` says whether trying the same thing again can succeed.
 */
export type EventBusErrorCode =
  // bad input from a producer, a consumer's config or a CLI flag: fix the call
  | 'INVALID_EVENT'
  | 'INVALID_EVENT_TYPE'
  | 'INVALID_PAYLOAD'
  | 'PAYLOAD_TOO_LARGE'
  | 'INVALID_CONFIG'
  // infrastructure: usually transient
  | 'DATABASE_UNAVAILABLE'
  | 'BROKER_UNAVAILABLE'
  | 'PUBLISH_FAILED'
  // Kafka refused the client's principal (a missing ACL) or its credentials: not transient, an operator grants or fixes them
  | 'KAFKA_NOT_AUTHORIZED'
  // consumer side
  | 'UNDECODABLE_MESSAGE'
  | 'HANDLER_TIMEOUT'
  | 'NON_RETRIABLE'
  // a tenant's circuit is open: its events go to the DLQ without a handler call (consumer)
  | 'TENANT_CIRCUIT_OPEN'
  | 'MIGRATION_FAILED'
  // a re-drive that reads the original record from its topic: the record is gone, or another one is there
  | 'ORIGINAL_NOT_RETAINED'
  | 'ORIGINAL_MISMATCH'
  | 'STOPPED';

export interface EventBusErrorOptions {
  cause?: unknown;
  retriable?: boolean;
  /** Extra machine-readable facts (the field at fault, the limit, ...). */
  details?: Record<string, unknown>;
}

export class EventBusError extends Error {
  override readonly name: string = 'EventBusError';
  readonly code: EventBusErrorCode;
  readonly retriable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: EventBusErrorCode, message: string, options: EventBusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.details = options.details ?? {};
  }
}

/** Thrown by a consumer's handler to send the event to the DLQ without further retries. */
export class NonRetriableError extends EventBusError {
  override readonly name = 'NonRetriableError';
  constructor(message: string, options: Omit<EventBusErrorOptions, 'retriable'> = {}) {
    super('NON_RETRIABLE', message, { ...options, retriable: false });
  }
}

export function isEventBusError(error: unknown, code?: EventBusErrorCode): error is EventBusError {
  return error instanceof EventBusError && (code === undefined || error.code === code);
}

/** A config error that names the setting at fault and what is expected. */
export function invalidConfig(setting: string, expected: string, got: unknown): EventBusError {
  const shown = typeof got === 'string' ? JSON.stringify(got) : String(got);
  return new EventBusError('INVALID_CONFIG', `${setting}: expected ${expected}, got ${shown}`, {
    details: { setting, expected },
  });
}

/** The message of anything thrown (an Error's message, else its string form): for logs' `err` field. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
