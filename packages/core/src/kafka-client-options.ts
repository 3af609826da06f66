import { invalidConfig } from './errors.js';

/**
 * Validates brokers the same way for every Kafka client the project opens (the consumer and
 * the DLQ mirror, which live in different packages).
 */
export function resolveBrokers(brokers: unknown): string[] {
  if (!Array.isArray(brokers) || brokers.length === 0)
    throw invalidConfig('brokers', 'at least one host:port', brokers === undefined ? 'nothing' : String(brokers));
  for (const broker of brokers) {
    if (typeof broker !== 'string' || !/^[^\s:/]+:\d{1,5}$/.test(broker)) throw invalidConfig('brokers', 'host:port entries', broker);
  }
  return [...brokers];
}

/** Validates a consumer group id (Kafka allows up to 255 printable characters). */
export function resolveGroupId(groupId: unknown, setting = 'groupId'): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a group id with control characters is what this refuses
  if (typeof groupId !== 'string' || groupId.trim() === '' || groupId.length > 255 || /[\x00-\x1f]/.test(groupId)) {
    throw invalidConfig(setting, 'a non-empty string of at most 255 printable characters', groupId);
  }
  return groupId;
}
