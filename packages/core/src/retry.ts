import { invalidConfig } from './errors.js';

/** Retry and backoff settings, used by the relay (publish failures) and consumers (handler failures). */
export interface RetryConfig {
  /** Retries after the first attempt; then the event goes to the DLQ. Default 5. */
  maxRetries: number;
  /** Delay before the first retry. Default 1000 ms. */
  initialDelayMs: number;
  /** Upper bound of any delay. Default 60000 ms. */
  maxDelayMs: number;
  /** Growth of the delay per retry. Default 2. */
  backoffMultiplier: number;
}

export const DEFAULT_RETRY_CONFIG: Readonly<RetryConfig> = Object.freeze({
  maxRetries: 5,
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  backoffMultiplier: 2,
});

export function resolveRetryConfig(input: Partial<RetryConfig> = {}, setting = 'retryConfig'): RetryConfig {
  const config = { ...DEFAULT_RETRY_CONFIG, ...stripUndefined(input) };
  const intIn = (key: keyof RetryConfig, min: number, max: number) => {
    const value = config[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw invalidConfig(`${setting}.${key}`, `an integer from ${min} to ${max}`, value);
    }
  };
  intIn('maxRetries', 0, 100);
  intIn('initialDelayMs', 0, 86_400_000);
  intIn('maxDelayMs', 0, 86_400_000);
  if (config.maxDelayMs < config.initialDelayMs) {
    throw invalidConfig(`${setting}.maxDelayMs`, `a value >= initialDelayMs (${config.initialDelayMs})`, config.maxDelayMs);
  }
  if (!Number.isFinite(config.backoffMultiplier) || config.backoffMultiplier < 1 || config.backoffMultiplier > 100) {
    throw invalidConfig(`${setting}.backoffMultiplier`, 'a number from 1 to 100', config.backoffMultiplier);
  }
  return config;
}

/**
 * Delay before retry number `retry` (1-based): initialDelayMs × multiplier^(retry-1), capped.
 * With the defaults: 1 s, 2 s, 4 s, 8 s, 16 s.
 */
export function backoffDelayMs(config: RetryConfig, retry: number): number {
  const raw = config.initialDelayMs * config.backoffMultiplier ** Math.max(0, retry - 1);
  return Math.min(config.maxDelayMs, Math.round(raw));
}

/**
 * Doubling delays for reconnect and probe loops: `initialMs × 2^attempt`, capped at `maxMs`.
 * `jitter` spreads each delay over ±20% so instances that lost the same server do not all
 * come back in the same millisecond. The one backoff of the infrastructure loops; handler and
 * publish retries use the user's `RetryConfig` (`backoffDelayMs`).
 */
export function reconnectDelayMs(attempt: number, options: { initialMs: number; maxMs: number; jitter?: boolean }): number {
  // The exponent is bounded so a loop that failed for days does not overflow to Infinity.
  const delay = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return options.jitter ? delay * (0.8 + Math.random() * 0.4) : delay;
}

function stripUndefined<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}
