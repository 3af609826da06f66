import { errorMessage, isEventBusError } from '@eventbus/core';
import { EXIT, type ExitCode } from './exit-codes.js';

export type CliErrorKind = 'usage' | 'bad_data' | 'unavailable' | 'declined';

/** An error the CLI reports in one line and maps to its exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly kind: CliErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get exitCode(): ExitCode {
    return { usage: EXIT.usage, bad_data: EXIT.badData, unavailable: EXIT.unavailable, declined: EXIT.failed }[this.kind];
  }
}

export const usageError = (message: string) => new CliError('usage', message);
export const badData = (message: string) => new CliError('bad_data', message);

// Network failures and Postgres' "cannot connect now / no such database / login refused".
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'EPIPE']);
const UNAVAILABLE_SQLSTATE = /^(08|57P0|3D000|28)/;

/** Maps anything thrown to an exit code and a one-line message for stderr. */
export function describeFailure(error: unknown): { exitCode: ExitCode; message: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message };
  if (isEventBusError(error)) {
    if (error.code === 'INVALID_CONFIG' || error.code === 'INVALID_EVENT_TYPE') return { exitCode: EXIT.usage, message: error.message };
    if (error.code === 'DATABASE_UNAVAILABLE' || error.code === 'BROKER_UNAVAILABLE') return { exitCode: EXIT.unavailable, message: error.message };
    if (error.code === 'UNKNOWN_EVENT_ID') return { exitCode: EXIT.badData, message: error.message };
  }
  // @eventbus/kafka's PublishError, recognised by shape so this module does not load kafkajs.
  if ((error as Error)?.name === 'PublishError') {
    return { exitCode: (error as { kind?: string }).kind === 'transient' ? EXIT.unavailable : EXIT.badData, message: `Kafka: ${errorMessage(error)}` };
  }
  const code = (error as { code?: unknown })?.code;
  const message = (error as Error)?.message ?? String(error);
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) {
    return { exitCode: EXIT.unavailable, message: `service unavailable: ${message}` };
  }
  if (code === '42P01' || code === '3F000') {
    return { exitCode: EXIT.unavailable, message: `the eventbus schema is missing (${message}); run \`eventbus migrate\`` };
  }
  if ((error as Error)?.name?.startsWith('KafkaJS')) return { exitCode: EXIT.unavailable, message: `Kafka unavailable: ${message}` };
  return { exitCode: EXIT.failed, message };
}
