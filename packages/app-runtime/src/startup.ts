import type { Logger as PinoLogger } from 'pino';
import { errorMessage, isEventBusError } from '@eventbus/core';

/** The apps' exit codes: the same numbers as the CLI's (apps/cli/src/exit-codes.ts) for the same situations. */
export const APP_EXIT = {
  /** Anything unexpected: read the fatal log line. */
  failed: 1,
  /** The environment is wrong; stderr lists every variable at fault. */
  config: 2,
  /** Postgres (refused, silent past DATABASE_CONNECT_TIMEOUT_MS, login refused) or Kafka could not be reached at start. */
  unavailable: 4,
} as const;

/**
 * Ends a start that failed, with the exit code an orchestrator or an operator can act on. A
 * database or Kafka cluster that cannot be reached names the variable holding its address
 * (the address itself is already in the message, password redacted).
 */
export function exitOnStartFailure(log: PinoLogger, app: string, error: unknown): never {
  if (isEventBusError(error, 'DATABASE_UNAVAILABLE')) {
    log.fatal(
      { err: errorMessage(error), setting: 'DATABASE_URL' },
      `${app} cannot start: ${errorMessage(error)} (check DATABASE_URL and DATABASE_CONNECT_TIMEOUT_MS)`,
    );
    process.exit(APP_EXIT.unavailable);
  }
  if (isEventBusError(error, 'BROKER_UNAVAILABLE')) {
    log.fatal(
      { err: errorMessage(error), setting: 'KAFKA_BROKERS' },
      `${app} cannot start: ${errorMessage(error)} (check KAFKA_BROKERS and the Kafka connection settings)`,
    );
    process.exit(APP_EXIT.unavailable);
  }
  log.fatal({ err: errorMessage(error) }, `${app} failed to start`);
  process.exit(APP_EXIT.failed);
}
