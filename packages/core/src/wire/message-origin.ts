import { EventBusError } from '../errors.js';

/** Where a message was first consumed: its coordinates survive every retry and the DLQ. */
export interface MessageOrigin {
  topic: string;
  partition: number;
  offset: string;
  /** The original message's timestamp, ms since the epoch. */
  timestamp: number;
}

/** Reads a required header; a bad one makes the whole message undecodable (never retried). */
export function requiredHeader(headers: Record<string, string>, name: string): string {
  const value = headers[name];
  if (value === undefined || value === '') throw malformed(`header ${name} is missing`);
  return value;
}

/** Reads a required integer header (ms timestamps, partitions, attempts). */
export function integerHeader(headers: Record<string, string>, name: string, min = 0): number {
  const text = requiredHeader(headers, name);
  const value = Number(text);
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(value) || value < min)
    throw malformed(`header ${name} is not an integer >= ${min}: ${JSON.stringify(text)}`);
  return value;
}

/** Reads a required Kafka offset header: a decimal string, kept as text like kafkajs does (64-bit). */
export function offsetHeader(headers: Record<string, string>, name: string): string {
  const text = requiredHeader(headers, name);
  if (!/^\d+$/.test(text)) throw malformed(`header ${name} is not an offset: ${JSON.stringify(text)}`);
  return text;
}

/** `headers` without the names in `names`: the original headers of a wrapped message. */
export function withoutHeaders<V>(headers: Readonly<Record<string, V>>, names: Iterable<string>): Record<string, V> {
  const drop = names instanceof Set ? (names as ReadonlySet<string>) : new Set(names);
  const kept: Record<string, V> = {};
  for (const name in headers) if (!drop.has(name)) kept[name] = headers[name]!;
  return kept;
}

function malformed(message: string): EventBusError {
  return new EventBusError('UNDECODABLE_MESSAGE', `cannot decode message: ${message}`, { retriable: false });
}
