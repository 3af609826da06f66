import { databaseUrlProblem, parseBrokerList, parseTopicRoutes, type RetryConfig } from '@eventbus/core';

/**
 * The relay app's environment variables. Every one is listed here with its default; the
 * README's table is generated from the same facts. Validation collects every problem, so
 * a bad deployment is fixed in one go.
 */
export const RELAY_ENV = {
  DATABASE_URL: { required: true, description: 'Postgres primary, postgres://user:pass@host:5432/db' },
  KAFKA_BROKERS: { required: true, description: 'comma-separated host:port list' },
  KAFKA_CLIENT_ID: { default: 'eventbus-relay', description: 'Kafka client id' },
  EVENTBUS_TOPIC_PREFIX: { default: 'eventbus.', description: 'topic = prefix + first segment of the event type' },
  EVENTBUS_TOPIC_ROUTES: { default: '', description: 'JSON object pattern → topic, overrides the prefix rule (first match wins)' },
  RELAY_BATCH_SIZE: { default: '500', description: 'rows claimed and sent per Kafka request (1–10000)' },
  RELAY_LANES: { default: '2', description: 'claim connections per instance, each with its own share of shards (1–16); overlaps Kafka sends with Postgres claims' },
  RELAY_POLL_INTERVAL_MS: { default: '1000', description: 'fallback poll when no NOTIFY arrives (10–60000)' },
  RELAY_REBALANCE_INTERVAL_MS: { default: '2000', description: 'how often shards are rebalanced between instances' },
  RELAY_MAX_RETRIES: { default: '5', description: 'retries of a row Kafka refuses, then the DLQ table' },
  RELAY_RETRY_INITIAL_DELAY_MS: { default: '1000', description: 'first retry delay' },
  RELAY_RETRY_MAX_DELAY_MS: { default: '60000', description: 'retry delay cap' },
  RELAY_RETRY_BACKOFF_MULTIPLIER: { default: '2', description: 'retry delay growth' },
  RELAY_INSTANCE_ID: { default: '{host}-{pid}-{random}', description: 'name in logs and `eventbus outbox status`' },
  RELAY_MIGRATE: { default: 'true', description: 'apply pending migrations at boot (advisory-locked)' },
  HTTP_HOST: { default: '0.0.0.0', description: 'address of /livez, /readyz, /metrics' },
  HTTP_PORT: { default: '8080', description: 'port of /livez, /readyz, /metrics (0 = any free port)' },
  SHUTDOWN_GRACE_MS: { default: '10000', description: 'time to finish the batch in flight on SIGTERM' },
  LOG_LEVEL: { default: 'info', description: 'trace, debug, info, warn, error, fatal or silent' },
} as const;

export interface RelayAppConfig {
  databaseUrl: string;
  brokers: string[];
  clientId: string;
  topicPrefix: string;
  topicRoutes: Record<string, string> | undefined;
  batchSize: number;
  lanes: number;
  pollIntervalMs: number;
  rebalanceIntervalMs: number;
  retryConfig: RetryConfig;
  instanceId: string | undefined;
  migrate: boolean;
  httpHost: string;
  httpPort: number;
  shutdownGraceMs: number;
  logLevel: string;
}

/** Thrown when the environment is wrong; the message lists each variable and what it expects. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function loadConfig(env: NodeJS.ProcessEnv): RelayAppConfig {
  const problems: string[] = [];
  const raw = (name: keyof typeof RELAY_ENV): string => {
    const spec = RELAY_ENV[name] as { required?: boolean; default?: string };
    const value = env[name]?.trim();
    if (value === undefined || value === '') {
      if (spec.required) problems.push(`${name} is missing: expected ${RELAY_ENV[name].description}`);
      return spec.default ?? '';
    }
    return value;
  };
  const int = (name: keyof typeof RELAY_ENV, min: number, max: number): number => {
    const text = raw(name);
    const value = Number(text);
    if (!/^-?\d+$/.test(text) || value < min || value > max) {
      problems.push(`${name}=${JSON.stringify(text)} is invalid: expected an integer from ${min} to ${max}`);
    }
    return value;
  };

  const databaseUrl = raw('DATABASE_URL');
  const databaseUrlIssue = databaseUrl ? databaseUrlProblem('DATABASE_URL', databaseUrl) : undefined;
  if (databaseUrlIssue) problems.push(databaseUrlIssue);
  const { brokers, problems: brokerProblems } = parseBrokerList('KAFKA_BROKERS', raw('KAFKA_BROKERS'));
  problems.push(...brokerProblems);
  const { routes: topicRoutes, problems: routeProblems } = parseTopicRoutes('EVENTBUS_TOPIC_ROUTES', raw('EVENTBUS_TOPIC_ROUTES'));
  problems.push(...routeProblems);
  const migrateText = raw('RELAY_MIGRATE').toLowerCase();
  if (!['true', 'false', '1', '0'].includes(migrateText)) problems.push(`RELAY_MIGRATE=${JSON.stringify(migrateText)} is invalid: expected true or false`);
  const logLevel = raw('LOG_LEVEL').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL=${JSON.stringify(logLevel)} is invalid: expected one of ${LOG_LEVELS.join(', ')}`);
  const multiplierText = raw('RELAY_RETRY_BACKOFF_MULTIPLIER');
  const backoffMultiplier = Number(multiplierText);
  if (!Number.isFinite(backoffMultiplier) || backoffMultiplier < 1 || backoffMultiplier > 100) {
    problems.push(`RELAY_RETRY_BACKOFF_MULTIPLIER=${JSON.stringify(multiplierText)} is invalid: expected a number from 1 to 100`);
  }
  const instanceId = env.RELAY_INSTANCE_ID?.trim() || undefined;

  const config: RelayAppConfig = {
    databaseUrl,
    brokers,
    clientId: raw('KAFKA_CLIENT_ID'),
    topicPrefix: env.EVENTBUS_TOPIC_PREFIX ?? RELAY_ENV.EVENTBUS_TOPIC_PREFIX.default,
    topicRoutes,
    batchSize: int('RELAY_BATCH_SIZE', 1, 10_000),
    lanes: int('RELAY_LANES', 1, 16),
    pollIntervalMs: int('RELAY_POLL_INTERVAL_MS', 10, 60_000),
    rebalanceIntervalMs: int('RELAY_REBALANCE_INTERVAL_MS', 100, 60_000),
    retryConfig: {
      maxRetries: int('RELAY_MAX_RETRIES', 0, 100),
      initialDelayMs: int('RELAY_RETRY_INITIAL_DELAY_MS', 0, 86_400_000),
      maxDelayMs: int('RELAY_RETRY_MAX_DELAY_MS', 0, 86_400_000),
      backoffMultiplier,
    },
    instanceId,
    migrate: migrateText === 'true' || migrateText === '1',
    httpHost: raw('HTTP_HOST'),
    httpPort: int('HTTP_PORT', 0, 65_535),
    shutdownGraceMs: int('SHUTDOWN_GRACE_MS', 0, 600_000),
    logLevel,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
