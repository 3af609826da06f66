import { pino, type Logger as PinoLogger } from 'pino';
import type { Logger } from '@eventbus/core';
import { traceLogFields } from '@eventbus/telemetry';

/** Fields whose values never reach the logs: connection strings and credentials. */
export const REDACTED_LOG_PATHS = ['connectionString', 'databaseUrl', 'password', '*.password', 'sasl', '*.sasl'];

/**
 * A JSON logger (pino, one object per line on stdout) with `service` on every line, the
 * active span's `trace_id`/`span_id` when there is one, and secrets redacted.
 */
export function createServiceLogger(service: string, level: string): PinoLogger {
  return pino({ level, base: { service }, mixin: traceLogFields, redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' } });
}

/** The libraries' `Logger` port over a pino logger. */
export function libraryLogger(log: PinoLogger): Logger {
  return {
    debug: (fields, message) => log.debug(fields, message),
    info: (fields, message) => log.info(fields, message),
    warn: (fields, message) => log.warn(fields, message),
    error: (fields, message) => log.error(fields, message),
  };
}
