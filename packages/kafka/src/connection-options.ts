import type { ConnectionOptions } from 'node:tls';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { errorMessage, EventBusError } from '@eventbus/core';

/**
 * How to reach a secured Kafka cluster: the settings an application passes through the
 * project's own options (relay, EventConsumer, DLQ mirror), so that none of them exposes the
 * client library's configuration type and another client could stand behind the same ports.
 */
export interface KafkaConnectionOptions {
  /** TLS: `true` for the system's CAs, or Node's TLS options (ca, cert, key, servername, ...). Default off. */
  ssl?: boolean | ConnectionOptions;
  /** SASL authentication (PLAIN or SCRAM over TLS). Default none. */
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /** Time to establish a TCP connection to a broker. Default 3000 ms. */
  connectionTimeoutMs?: number;
  /** Time to wait for a broker's answer to one request. Default 10000 ms for producing, kafkajs' 30000 ms for consuming. */
  requestTimeoutMs?: number;
}

/** The kafkajs settings for `connection` (only what it sets: the caller's defaults stay otherwise). */
export function kafkajsConnectionConfig(connection: KafkaConnectionOptions | undefined): Partial<KafkaConfig> {
  if (!connection) return {};
  const config: Partial<KafkaConfig> = {};
  if (connection.ssl !== undefined) config.ssl = connection.ssl;
  if (connection.sasl) config.sasl = connection.sasl as SASLOptions;
  if (connection.connectionTimeoutMs !== undefined) config.connectionTimeout = connection.connectionTimeoutMs;
  if (connection.requestTimeoutMs !== undefined) config.requestTimeout = connection.requestTimeoutMs;
  return config;
}

/**
 * A client's first connection failed (no broker answered within the connection timeout and
 * kafkajs' retries, or TLS/SASL refused): BROKER_UNAVAILABLE, retriable, naming the addresses
 * tried, so a service that cannot start says which setting to check; `hint` says what to do
 * when Kafka answered with a refusal of the principal.
 */
export function brokersUnreachable(brokers: readonly string[], cause: unknown, hint?: string): EventBusError {
  return new EventBusError('BROKER_UNAVAILABLE', `cannot connect to Kafka at ${brokers.join(',')}: ${errorMessage(cause)}${hint ? `; ${hint}` : ''}`, {
    cause,
    retriable: true,
  });
}

// SASL refusals count too: the client never got a usable connection, and the fix is a setting.
const CONNECTION_ERROR_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSSASLAuthenticationError',
]);

/**
 * Whether a kafkajs failure means no broker could be talked to (as opposed to a broker that
 * answered with a refusal). kafkajs throws a plain Error "Broker not connected" for a request
 * on a connection that never came up, and wraps exhausted retries around the last cause.
 */
export function isConnectionFailure(error: unknown): boolean {
  let connection = false;
  for (
    let e = error as { name?: string; message?: string; type?: unknown; cause?: unknown; originalError?: unknown } | undefined, depth = 0;
    e && depth < 5;
    depth++
  ) {
    // A broker's answer (a protocol error: UNKNOWN_TOPIC_OR_PARTITION, an ACL refusal) means
    // the connection worked, however many retries wrapped it.
    if (typeof e.type === 'string') return false;
    if (CONNECTION_ERROR_NAMES.has(e.name ?? '') || e.message === 'Broker not connected') connection = true;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return connection;
}
