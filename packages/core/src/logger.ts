/** The logging every library needs; pino's logger satisfies it. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** Discards everything: the default for embedded use. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
