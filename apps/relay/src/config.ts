import type { RetryConfig } from '@eventbus/core';
import { EnvReader, LOG_LEVELS, SERVICE_ENV } from '@eventbus/app-runtime';
import type { KafkaSecuritySettings } from '@eventbus/core';

export { ConfigError } from '@eventbus/app-runtime';

/**
 * The relay app's environment variables. Every one is listed here with its default; the
 * table in docs/operators.md lists the same facts (kept by hand). Validation collects every problem, so
 * a bad deployment is fixed in one go.
 */
export const RELAY_ENV = {
  DATABASE_URL: SERVICE_ENV.DATABASE_URL,
  DATABASE_CONNECT_TIMEOUT_MS: SERVICE_ENV.DATABASE_CONNECT_TIMEOUT_MS,
  KAFKA_BROKERS: SERVICE_ENV.KAFKA_BROKERS,
  KAFKA_SSL: SERVICE_ENV.KAFKA_SSL,
  KAFKA_SSL_CA_FILE: SERVICE_ENV.KAFKA_SSL_CA_FILE,
  KAFKA_SASL_MECHANISM: SERVICE_ENV.KAFKA_SASL_MECHANISM,
  KAFKA_SASL_USERNAME: SERVICE_ENV.KAFKA_SASL_USERNAME,
  KAFKA_SASL_PASSWORD: SERVICE_ENV.KAFKA_SASL_PASSWORD,
  KAFKA_REQUEST_TIMEOUT_MS: SERVICE_ENV.KAFKA_REQUEST_TIMEOUT_MS,
  KAFKA_CLIENT_ID: { default: 'eventbus-relay', description: 'Kafka client id' },
  EVENTBUS_TOPIC_PREFIX: { default: 'eventbus.', description: 'topic = prefix + first segment of the event type' },
  EVENTBUS_TOPIC_ROUTES: { default: '', description: 'JSON object pattern → topic, overrides the prefix rule (first match wins)' },
  RELAY_BATCH_SIZE: { default: '500', description: 'rows claimed and sent per Kafka request (1–10000)' },
  RELAY_LANES: {
    default: '2',
    description: 'claim connections per instance, each with its own share of shards (1–16); overlaps Kafka sends with Postgres claims',
  },
  RELAY_POLL_INTERVAL_MS: { default: '1000', description: 'fallback poll when no NOTIFY arrives (10–60000)' },
  RELAY_REBALANCE_INTERVAL_MS: { default: '2000', description: 'how often shards are rebalanced between instances' },
  RELAY_KAFKA_IDEMPOTENT: {
    default: 'true',
    description: 'idempotent producer: the broker drops a batch re-sent after a lost answer instead of writing it twice',
  },
  RELAY_CREATE_TOPICS: {
    default: 'true',
    description: 'create missing topics (admin CreateTopics); false where the relay may not: rows for a missing topic wait in the outbox until it exists',
  },
  RELAY_MISSING_TOPIC_HOLD_MS: {
    default: '1000',
    description: 'after Kafka says a topic does not exist, its rows are not offered again for this long, doubling per hold (10–60000)',
  },
  RELAY_MISSING_TOPIC_HOLD_MAX_MS: { default: '30000', description: 'longest hold on a missing topic (hold ms–600000)' },
  RELAY_MISSING_TOPIC_ALERT_MS: {
    default: '300000',
    description:
      'a topic missing this long is reported: an error log line once, degraded with the topic in /readyz problems; its rows still wait (100–86400000)',
  },
  RELAY_KAFKA_FAILOVER_MS: {
    default: '20000',
    description: "publishes failing this long hand the instance's shards to other instances that reach Kafka (0 = never)",
  },
  RELAY_MAX_RETRIES: { default: '5', description: 'retries of a row Kafka refuses, then the DLQ table' },
  RELAY_RETRY_INITIAL_DELAY_MS: { default: '1000', description: 'first retry delay' },
  RELAY_RETRY_MAX_DELAY_MS: { default: '60000', description: 'retry delay cap' },
  RELAY_RETRY_BACKOFF_MULTIPLIER: { default: '2', description: 'retry delay growth' },
  RELAY_INSTANCE_ID: { default: '{host}-{pid}-{random}', description: 'name in logs and `eventbus outbox status`' },
  RELAY_MIGRATE: { default: 'true', description: 'apply pending migrations at boot (advisory-locked)' },
  HTTP_HOST: SERVICE_ENV.HTTP_HOST,
  HTTP_PORT: { default: '8080', description: 'port of /livez, /readyz, /metrics (0 = any free port)' },
  SHUTDOWN_GRACE_MS: { default: '10000', description: 'time to finish the batch in flight on SIGTERM' },
  LOG_LEVEL: SERVICE_ENV.LOG_LEVEL,
} as const;

export interface RelayAppConfig {
  databaseUrl: string;
  connectTimeoutMs: number;
  brokers: string[];
  /** Kafka TLS/SASL; undefined = plaintext. */
  kafkaSecurity: KafkaSecuritySettings | undefined;
  /** How long one Kafka request may wait for the broker's answer. */
  kafkaRequestTimeoutMs: number;
  clientId: string;
  topicPrefix: string;
  topicRoutes: Record<string, string> | undefined;
  batchSize: number;
  lanes: number;
  pollIntervalMs: number;
  rebalanceIntervalMs: number;
  kafkaFailoverMs: number;
  kafkaIdempotent: boolean;
  createTopics: boolean;
  retryConfig: RetryConfig;
  /** Holds on a topic Kafka said does not exist: first hold, longest hold. */
  missingTopicHold: { initialMs: number; maxMs: number; alertAfterMs: number };
  instanceId: string | undefined;
  migrate: boolean;
  httpHost: string;
  httpPort: number;
  shutdownGraceMs: number;
  logLevel: string;
}

/** Reads and validates the environment; throws a ConfigError naming every bad or missing variable. */
export function loadConfig(env: NodeJS.ProcessEnv): RelayAppConfig {
  const read = new EnvReader(RELAY_ENV, env);
  return read.finish({
    databaseUrl: read.postgresUrl('DATABASE_URL'),
    connectTimeoutMs: read.int('DATABASE_CONNECT_TIMEOUT_MS', 100, 600_000),
    brokers: read.brokers('KAFKA_BROKERS'),
    kafkaSecurity: read.kafkaSecurity(),
    kafkaRequestTimeoutMs: read.int('KAFKA_REQUEST_TIMEOUT_MS', 1000, 600_000),
    clientId: read.raw('KAFKA_CLIENT_ID'),
    // Untrimmed and possibly empty on purpose: the prefix is part of topic names.
    topicPrefix: env.EVENTBUS_TOPIC_PREFIX ?? RELAY_ENV.EVENTBUS_TOPIC_PREFIX.default,
    topicRoutes: read.topicRoutes('EVENTBUS_TOPIC_ROUTES'),
    batchSize: read.int('RELAY_BATCH_SIZE', 1, 10_000),
    lanes: read.int('RELAY_LANES', 1, 16),
    pollIntervalMs: read.int('RELAY_POLL_INTERVAL_MS', 10, 60_000),
    rebalanceIntervalMs: read.int('RELAY_REBALANCE_INTERVAL_MS', 100, 60_000),
    kafkaFailoverMs: read.int('RELAY_KAFKA_FAILOVER_MS', 0, 3_600_000),
    kafkaIdempotent: read.bool('RELAY_KAFKA_IDEMPOTENT'),
    createTopics: read.bool('RELAY_CREATE_TOPICS'),
    retryConfig: {
      maxRetries: read.int('RELAY_MAX_RETRIES', 0, 100),
      initialDelayMs: read.int('RELAY_RETRY_INITIAL_DELAY_MS', 0, 86_400_000),
      maxDelayMs: read.int('RELAY_RETRY_MAX_DELAY_MS', 0, 86_400_000),
      backoffMultiplier: read.number('RELAY_RETRY_BACKOFF_MULTIPLIER', 1, 100),
    },
    missingTopicHold: {
      initialMs: read.int('RELAY_MISSING_TOPIC_HOLD_MS', 10, 60_000),
      maxMs: read.int('RELAY_MISSING_TOPIC_HOLD_MAX_MS', 10, 600_000),
      alertAfterMs: read.int('RELAY_MISSING_TOPIC_ALERT_MS', 100, 86_400_000),
    },
    instanceId: read.optional('RELAY_INSTANCE_ID'),
    migrate: read.bool('RELAY_MIGRATE'),
    httpHost: read.raw('HTTP_HOST'),
    httpPort: read.int('HTTP_PORT', 0, 65_535),
    shutdownGraceMs: read.int('SHUTDOWN_GRACE_MS', 0, 600_000),
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS),
  });
}
