import { inspect } from 'node:util';

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
  // a retry names a subscription that no longer handles its event (renamed, or a positional name now another's): dead-lettered (consumer)
  | 'UNKNOWN_SUBSCRIPTION'
  | 'MIGRATION_FAILED'
  // the database lacks a migration this code needs (a consumer started before `eventbus migrate`): retriable, once an operator (or a relay migrating at boot) applies it
  | 'MIGRATION_PENDING'
  // a re-drive that reads the original record from its topic: the record is gone, or another one is there
  | 'ORIGINAL_NOT_RETAINED'
  | 'ORIGINAL_MISMATCH'
  // a replay by event id names ids the tenant's EventLog does not have: nothing is replayed
  | 'UNKNOWN_EVENT_ID'
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
  try {
    return error instanceof EventBusError && (code === undefined || error.code === code);
  } catch {
    // A Proxy whose getPrototypeOf trap throws: not ours.
    return false;
  }
}

/** A config error that names the setting at fault and what is expected. */
export function invalidConfig(setting: string, expected: string, got: unknown): EventBusError {
  const shown = typeof got === 'string' ? JSON.stringify(got) : String(got);
  return new EventBusError('INVALID_CONFIG', `${setting}: expected ${expected}, got ${shown}`, {
    details: { setting, expected },
  });
}

/** What a thrown value says about itself, as text. */
export interface ThrownDescription {
  /** An Error's name (`Error` when it has none that is text); for anything else its `typeof`. */
  name: string;
  /** An Error's message, else the value's string form. */
  message: string;
  /** An Error's stack, when it is text. */
  stack?: string;
  /** An Error's `code`, when it is a string or a number (Node's `ECONNRESET`, an EventBusError's code). */
  code?: string;
}

/**
 * Describes anything thrown, as text, and never throws itself. Code the event bus runs (a
 * handler, a logger, a publisher) may throw anything: `Object.create(null)` (String() throws: it
 * has no toString), an Error whose message or stack is not a string, a getter or a Proxy that
 * throws. A conversion that threw where the consumer turned a handler's rejection into a span,
 * a log line or a DLQ header escaped the batch: the consumer crashed, restarted and handled the
 * batch again, forever. Reads the stack only here (V8 formats it on first read), so callers
 * that need only the message use `errorMessage`.
 */
export function describeThrown(error: unknown): ThrownDescription {
  if (!isErrorInstance(error)) return { name: typeof error, message: textOf(error) };
  const name = read(() => error.name);
  const stack = read(() => error.stack);
  const code = read(() => (error as { code?: unknown }).code);
  const description: ThrownDescription = { name: typeof name === 'string' && name !== '' ? name : 'Error', message: errorMessage(error) };
  if (typeof stack === 'string' && stack !== '') description.stack = stack;
  if (typeof code === 'string' || typeof code === 'number') description.code = String(code);
  return description;
}

/** The message of anything thrown (an Error's message, else its string form): for logs' `err` field. Never throws (see describeThrown). */
export function errorMessage(error: unknown): string {
  if (!isErrorInstance(error)) return textOf(error);
  const message = read(() => error.message);
  if (typeof message === 'string') return message;
  return message === undefined ? '' : textOf(message);
}

/** `instanceof Error`, false where the check itself throws (a Proxy whose getPrototypeOf trap throws). */
function isErrorInstance(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

/** A property read that may throw (a getter, a Proxy): undefined then. */
function read(get: () => unknown): unknown {
  try {
    return get();
  } catch {
    return undefined;
  }
}

/**
 * A value's string form: String() where it works; where it throws (no toString, as with
 * `Object.create(null)`, or one that throws or returns an object), util.inspect's view of it
 * (`[Object: null prototype] { code: 'E_DOWNSTREAM' }`); where that throws too, its tag.
 */
function textOf(value: unknown): string {
  try {
    return String(value);
  } catch {
    // String() failed: fall through to a form that calls nothing of the value's own.
  }
  try {
    return inspect(value, { depth: 2, breakLength: Number.POSITIVE_INFINITY, customInspect: false, maxStringLength: 2048 });
  } catch {
    // inspect failed (a Proxy trap that throws): the value's tag at least.
  }
  try {
    return Object.prototype.toString.call(value);
  } catch {
    return `a thrown ${typeof value} that has no string form`;
  }
}
