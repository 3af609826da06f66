import {
  databaseUrlProblem,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_TOPIC_PREFIX,
  errorMessage,
  parseBrokerList,
  parseKafkaSecurity,
  parseTopicRoutes,
  TopicRouter,
  type KafkaSecuritySettings,
  type TopicRoutingOptions,
} from '@eventbus/core';
import { usageError } from './cli-error.js';

export { redactUrl } from '@eventbus/core';

/**
 * Where the CLI connects: the same environment variables as the relay app (so an operator
 * runs it with the relay's environment), each overridable by a flag. Parsed by the same
 * functions as the relay's (@eventbus/core's connection-settings), so both accept the same
 * values. Only what a command needs is required: `dlq list` never asks for Kafka.
 */
export const CONNECTION_FLAGS = {
  'database-url': { type: 'string' },
  brokers: { type: 'string' },
  'topic-prefix': { type: 'string' },
} as const;

export const CONNECTION_HELP = `Connection (flags override the environment, as the relay reads it):
  --database-url <url>   DATABASE_URL     Postgres, postgres://user:pass@host:5432/db
  --brokers <list>       KAFKA_BROKERS    comma-separated host:port
  --topic-prefix <p>     EVENTBUS_TOPIC_PREFIX (default "eventbus.")
                         EVENTBUS_TOPIC_ROUTES, KAFKA_CLIENT_ID (default "eventbus-cli")
                         DATABASE_CONNECT_TIMEOUT_MS (default 10000): a Postgres that does not
                         answer within it is exit code 4
                         KAFKA_SSL, KAFKA_SSL_CA_FILE, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,
                         KAFKA_SASL_PASSWORD: TLS and SASL, as the relay reads them`;

export interface ConnectionFlagValues {
  'database-url'?: string | undefined;
  brokers?: string | undefined;
  'topic-prefix'?: string | undefined;
}

export class ConnectionSettings {
  constructor(
    private readonly flags: ConnectionFlagValues,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  databaseUrl(): string {
    const url = (this.flags['database-url'] ?? this.env.DATABASE_URL ?? '').trim();
    if (!url) throw usageError('no database: set DATABASE_URL or pass --database-url postgres://user:pass@host:5432/db');
    const problem = databaseUrlProblem(this.databaseSetting(), url);
    if (problem) throw usageError(problem);
    return url;
  }

  /** Where the database URL came from, for messages: the flag or the variable. */
  databaseSetting(): '--database-url' | 'DATABASE_URL' {
    return this.flags['database-url'] !== undefined ? '--database-url' : 'DATABASE_URL';
  }

  /** DATABASE_CONNECT_TIMEOUT_MS: how long connecting to Postgres may take. */
  connectTimeoutMs(): number {
    const text = this.env.DATABASE_CONNECT_TIMEOUT_MS?.trim();
    if (!text) return DEFAULT_CONNECT_TIMEOUT_MS;
    const ms = Number(text);
    if (!/^\d+$/.test(text) || ms < 100 || ms > 600_000) {
      throw usageError(`DATABASE_CONNECT_TIMEOUT_MS=${JSON.stringify(text.slice(0, 80))} is invalid: expected an integer from 100 to 600000 (ms)`);
    }
    return ms;
  }

  brokers(): string[] {
    const fromFlag = this.flags.brokers !== undefined;
    const { brokers, problems } = parseBrokerList(fromFlag ? '--brokers' : 'KAFKA_BROKERS', this.flags.brokers ?? this.env.KAFKA_BROKERS ?? '');
    if (problems.length > 0) throw usageError(problems.join('; '));
    if (brokers.length === 0) throw usageError('no Kafka brokers: set KAFKA_BROKERS or pass --brokers host:port');
    return brokers;
  }

  /** Where the broker list came from, for messages: the flag or the variable. */
  brokersSetting(): '--brokers' | 'KAFKA_BROKERS' {
    return this.flags.brokers !== undefined ? '--brokers' : 'KAFKA_BROKERS';
  }

  /** KAFKA_SSL, KAFKA_SSL_CA_FILE, KAFKA_SASL_*: read as the relay reads them; undefined = plaintext. */
  kafkaSecurity(): KafkaSecuritySettings | undefined {
    const { security, problems } = parseKafkaSecurity(this.env);
    if (problems.length > 0) throw usageError(problems.join('; '));
    return security;
  }

  clientId(): string {
    return this.env.KAFKA_CLIENT_ID?.trim() || 'eventbus-cli';
  }

  /** The relay's topic routing options. */
  routing(): TopicRoutingOptions {
    const { routes, problems } = parseTopicRoutes('EVENTBUS_TOPIC_ROUTES', this.env.EVENTBUS_TOPIC_ROUTES ?? '');
    if (problems.length > 0) throw usageError(problems.join('; '));
    return { prefix: this.flags['topic-prefix'] ?? this.env.EVENTBUS_TOPIC_PREFIX ?? DEFAULT_TOPIC_PREFIX, ...(routes ? { routes } : {}) };
  }

  /** The relay's topic routing: the CLI republishes to the topics the relay would use. */
  router(): TopicRouter {
    try {
      return new TopicRouter(this.routing());
    } catch (error) {
      throw usageError(errorMessage(error));
    }
  }
}
