import { EventBusError, NonRetriableError } from '@eventbus/core';

/** The facts of an error that go into DLQ headers and dead-letter rows. */
export interface FailureFacts {
  errorClass: string;
  errorMessage: string;
  errorStack?: string;
}

/** Describes any thrown value; EventBusErrors get their code in the class (`EventBusError:HANDLER_TIMEOUT`). */
export function describeFailure(error: unknown): FailureFacts {
  if (error instanceof Error) {
    const errorClass = error instanceof EventBusError && error.name === 'EventBusError' ? `EventBusError:${error.code}` : error.name;
    return error.stack ? { errorClass, errorMessage: error.message, errorStack: error.stack } : { errorClass, errorMessage: error.message };
  }
  return { errorClass: typeof error, errorMessage: String(error) };
}

/**
 * True when retrying cannot help: a NonRetriableError (also one from another copy of
 * @eventbus/core, hence the name check) or an EventBusError with code NON_RETRIABLE.
 */
export function isNonRetriable(error: unknown): boolean {
  if (error instanceof NonRetriableError) return true;
  if (error instanceof EventBusError) return error.code === 'NON_RETRIABLE';
  return error instanceof Error && error.name === 'NonRetriableError';
}
