import { errorMessage } from './errors.js';

/** The logging every library needs; pino's logger satisfies it. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** Discards everything: the default for embedded use. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * `logger` with every call made safe: a line the logger throws on (a broken transport, a
 * serializer that fails on a field) is dropped, and the first such failure is reported once as
 * a process warning. The libraries log from inside their loops (a consumer's batch, the
 * handling of a failed event): a logger's exception there would end the batch, and the consumer
 * would crash, restart and handle the same batch again, forever.
 */
export function guardedLogger(logger: Logger): Logger {
  let warned = false;
  const guard =
    (level: keyof Logger) =>
    (fields: Record<string, unknown>, message: string): void => {
      try {
        logger[level](fields, message);
      } catch (error) {
        if (warned) return;
        warned = true;
        process.emitWarning(`the event bus's logger threw on a ${level} line; this and any later failing lines are dropped: ${errorMessage(error)}`, {
          code: 'EVENTBUS_LOGGER_FAILED',
          detail: `dropped line: ${message}`,
        });
      }
    };
  return { debug: guard('debug'), info: guard('info'), warn: guard('warn'), error: guard('error') };
}
