import { EnvReader, LOG_LEVELS, SERVICE_ENV } from '@eventbus/app-runtime';
import type { KafkaSecuritySettings } from '@eventbus/core';

export { ConfigError } from '@eventbus/app-runtime';

/**
 * The DLQ mirror app's environment variables, each with its default. The names shared with
 * the relay (DATABASE_URL, KAFKA_BROKERS, HTTP_*, SHUTDOWN_GRACE_MS, LOG_LEVEL) mean the same.
 */
export const DLQ_MIRROR_ENV = {
  DATABASE_URL: SERVICE_ENV.DATABASE_URL,
  DATABASE_CONNECT_TIMEOUT_MS: SERVICE_ENV.DATABASE_CONNECT_TIMEOUT_MS,
  KAFKA_BROKERS: SERVICE_ENV.KAFKA_BROKERS,
  KAFKA_SSL: SERVICE_ENV.KAFKA_SSL,
  KAFKA_SSL_CA_FILE: SERVICE_ENV.KAFKA_SSL_CA_FILE,
  KAFKA_SASL_MECHANISM: SERVICE_ENV.KAFKA_SASL_MECHANISM,
  KAFKA_SASL_USERNAME: SERVICE_ENV.KAFKA_SASL_USERNAME,
  KAFKA_SASL_PASSWORD: SERVICE_ENV.KAFKA_SASL_PASSWORD,
  KAFKA_REQUEST_TIMEOUT_MS: SERVICE_ENV.KAFKA_REQUEST_TIMEOUT_MS,
  KAFKA_CLIENT_ID: { default: 'eventbus-dlq-mirror', description: 'Kafka client id' },
  EVENTBUS_TOPIC_PREFIX: { default: 'eventbus.', description: "the consumers' topic prefix: DLQ topics are {prefix}dlq.{group}" },
  DLQ_MIRROR_GROUPS: {
    default: '',
    description: 'comma-separated consumer groups whose DLQ topics to mirror (created if missing); empty = every {prefix}dlq.* topic that exists at start',
  },
  DLQ_MIRROR_GROUP_ID: { default: 'eventbus-dlq-mirror', description: "the mirror's own consumer group" },
  DLQ_MIRROR_TOPIC_PARTITIONS: { default: '12', description: 'partitions of the DLQ topics the mirror creates (1–1000)' },
  DLQ_MIRROR_UNSTORABLE_ATTEMPTS: {
    default: '3',
    description: 'inserts tried for a DLQ record Postgres refuses as data before it is skipped into eventbus.dead_letters_unstorable (1–100)',
  },
  DLQ_MIRROR_MIGRATE: { default: 'true', description: 'apply pending migrations at boot (advisory-locked, like the relay)' },
  HTTP_HOST: SERVICE_ENV.HTTP_HOST,
  HTTP_PORT: { default: '8081', description: 'port of /livez, /readyz, /metrics (0 = any free port)' },
  SHUTDOWN_GRACE_MS: { default: '10000', description: 'time to finish the batch in flight and commit its offsets on SIGTERM' },
  LOG_LEVEL: SERVICE_ENV.LOG_LEVEL,
} as const;

/** The mirror app's configuration, resolved and validated. */
export interface DlqMirrorAppConfig {
  databaseUrl: string;
  connectTimeoutMs: number;
  brokers: string[];
  /** Kafka TLS/SASL; undefined = plaintext. */
  kafkaSecurity: KafkaSecuritySettings | undefined;
  /** How long one Kafka request may wait for the broker's answer. */
  kafkaRequestTimeoutMs: number;
  clientId: string;
  topicPrefix: string;
  groups: string[] | undefined;
  groupId: string;
  topicPartitions: number;
  unstorableAttempts: number;
  migrate: boolean;
  httpHost: string;
  httpPort: number;
  shutdownGraceMs: number;
  logLevel: string;
}

/** Reads and validates the environment; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv): DlqMirrorAppConfig {
  const read = new EnvReader(DLQ_MIRROR_ENV, env);
  const groups = read.list('DLQ_MIRROR_GROUPS');
  return read.finish({
    databaseUrl: read.postgresUrl('DATABASE_URL'),
    connectTimeoutMs: read.int('DATABASE_CONNECT_TIMEOUT_MS', 100, 600_000),
    brokers: read.brokers('KAFKA_BROKERS'),
    kafkaSecurity: read.kafkaSecurity(),
    kafkaRequestTimeoutMs: read.int('KAFKA_REQUEST_TIMEOUT_MS', 1000, 600_000),
    clientId: read.raw('KAFKA_CLIENT_ID'),
    // Untrimmed and possibly empty on purpose, as in the relay: the prefix is part of topic names.
    topicPrefix: env.EVENTBUS_TOPIC_PREFIX ?? DLQ_MIRROR_ENV.EVENTBUS_TOPIC_PREFIX.default,
    groups: groups.length > 0 ? groups : undefined,
    groupId: read.raw('DLQ_MIRROR_GROUP_ID'),
    topicPartitions: read.int('DLQ_MIRROR_TOPIC_PARTITIONS', 1, 1000),
    unstorableAttempts: read.int('DLQ_MIRROR_UNSTORABLE_ATTEMPTS', 1, 100),
    migrate: read.bool('DLQ_MIRROR_MIGRATE'),
    httpHost: read.raw('HTTP_HOST'),
    httpPort: read.int('HTTP_PORT', 0, 65_535),
    shutdownGraceMs: read.int('SHUTDOWN_GRACE_MS', 0, 600_000),
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS),
  });
}
