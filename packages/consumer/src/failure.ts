import { describeThrown, isEventBusError } from '@eventbus/core';

/** The facts of an error that go into DLQ headers and dead-letter rows. */
export interface FailureFacts {
  errorClass: string;
  errorMessage: string;
  errorStack?: string;
}

/**
 * Describes any thrown value as text (describeThrown: never throws, whatever a handler rejected
 * with); EventBusErrors get their code in the class (`EventBusError:HANDLER_TIMEOUT`).
 */
export function describeFailure(error: unknown): FailureFacts {
  const thrown = describeThrown(error);
  const errorClass = isEventBusError(error) && thrown.name === 'EventBusError' ? `EventBusError:${error.code}` : thrown.name;
  return thrown.stack === undefined ? { errorClass, errorMessage: thrown.message } : { errorClass, errorMessage: thrown.message, errorStack: thrown.stack };
}

/**
 * True when retrying cannot help: a NonRetriableError (also one from another copy of
 * @eventbus/core, hence the name check) or an EventBusError with code NON_RETRIABLE.
 */
export function isNonRetriable(error: unknown): boolean {
  // NonRetriableError is an EventBusError with this code.
  if (isEventBusError(error)) return error.code === 'NON_RETRIABLE';
  try {
    return error instanceof Error && error.name === 'NonRetriableError';
  } catch {
    // A getter or a Proxy trap that throws: not a NonRetriableError.
    return false;
  }
}
