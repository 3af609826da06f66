/**
 * Environment configuration of the deployables in apps/: each app exports a table of the
 * variables it reads (name → default or required, and what it expects), and reads them
 * through one `EnvReader`, which collects every problem so a bad deployment is fixed in one
 * go. The tables are also what the docker-compose test checks the compose file against.
 * The connection settings are parsed by @eventbus/core, as the CLI parses them.
 */
import {
  databaseUrlProblem,
  KAFKA_SECURITY_VARIABLES,
  parseBrokerList,
  parseKafkaSecurity,
  parseTopicRoutes,
  type KafkaSecuritySettings,
} from '@eventbus/core';

/** One environment variable an app reads. */
export interface EnvVar {
  /** Boot fails when the variable is missing or blank. */
  readonly required?: boolean;
  /** The value used when the variable is unset or blank (documentation only for required ones). */
  readonly default?: string;
  /** What the variable expects; quoted in the error when it is missing. */
  readonly description: string;
}

/** Every variable an app reads, by name. */
export type EnvTable = Readonly<Record<string, EnvVar>>;

/** Variables every service in apps/ reads, with the same meaning and defaults. */
export const SERVICE_ENV = {
  DATABASE_URL: { required: true, description: 'Postgres primary, postgres://user:pass@host:5432/db' },
  DATABASE_CONNECT_TIMEOUT_MS: {
    default: '10000',
    description: 'connecting to Postgres (TCP, TLS, login) may take this long; at start, longer is exit code 4 (100–600000)',
  },
  KAFKA_BROKERS: { required: true, description: 'comma-separated host:port list' },
  KAFKA_SSL: { default: 'false', description: KAFKA_SECURITY_VARIABLES.KAFKA_SSL },
  KAFKA_SSL_CA_FILE: { default: '', description: KAFKA_SECURITY_VARIABLES.KAFKA_SSL_CA_FILE },
  KAFKA_SASL_MECHANISM: { default: '', description: KAFKA_SECURITY_VARIABLES.KAFKA_SASL_MECHANISM },
  KAFKA_SASL_USERNAME: { default: '', description: KAFKA_SECURITY_VARIABLES.KAFKA_SASL_USERNAME },
  KAFKA_SASL_PASSWORD: { default: '', description: KAFKA_SECURITY_VARIABLES.KAFKA_SASL_PASSWORD },
  KAFKA_REQUEST_TIMEOUT_MS: {
    default: '10000',
    description:
      "a broker's answer to one request may take this long, the first one at start included: a broker that accepts the connection and never answers is exit code 4 after it (1000–600000)",
  },
  HTTP_HOST: { default: '0.0.0.0', description: 'address of /livez, /readyz, /metrics' },
  SHUTDOWN_GRACE_MS: { default: '10000', description: 'time to finish the work in flight on SIGTERM' },
  LOG_LEVEL: { default: 'info', description: 'trace, debug, info, warn, error, fatal or silent' },
} as const satisfies EnvTable;

/** Thrown when the environment is wrong; the message lists each variable and what it expects. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** pino's levels, in the order of LOG_LEVEL's description. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/**
 * Reads variables of one table from an environment. Each getter returns a usable value
 * (the default when the input is bad) and records a problem; `finish` throws them all.
 */
export class EnvReader<T extends EnvTable> {
  readonly problems: string[] = [];

  constructor(
    private readonly table: T,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** The trimmed value, or the default when unset or blank (a problem when required). */
  raw(name: keyof T & string): string {
    const spec = this.table[name]!;
    const value = this.env[name]?.trim();
    if (value === undefined || value === '') {
      if (spec.required) this.problems.push(`${name} is missing: expected ${spec.description}`);
      return spec.default ?? '';
    }
    return value;
  }

  /** The value when set and non-blank, else undefined (for defaults computed at runtime). */
  optional(name: keyof T & string): string | undefined {
    return this.env[name]?.trim() || undefined;
  }

  /** A whole number in [min, max]. */
  int(name: keyof T & string, min: number, max: number): number {
    const text = this.raw(name);
    const value = Number(text);
    if (!/^-?\d+$/.test(text) || value < min || value > max) {
      this.problems.push(`${name}=${JSON.stringify(text)} is invalid: expected an integer from ${min} to ${max}`);
    }
    return value;
  }

  /** A finite number in [min, max]. */
  number(name: keyof T & string, min: number, max: number): number {
    const text = this.raw(name);
    const value = Number(text);
    if (!Number.isFinite(value) || value < min || value > max) {
      this.problems.push(`${name}=${JSON.stringify(text)} is invalid: expected a number from ${min} to ${max}`);
    }
    return value;
  }

  /** true/false/1/0, case-insensitive. */
  bool(name: keyof T & string): boolean {
    const text = this.raw(name).toLowerCase();
    if (!['true', 'false', '1', '0'].includes(text)) this.problems.push(`${name}=${JSON.stringify(text)} is invalid: expected true or false`);
    return text === 'true' || text === '1';
  }

  /** One of `values`, case-insensitive; returned lowercased. */
  oneOf(name: keyof T & string, values: readonly string[]): string {
    const text = this.raw(name).toLowerCase();
    if (!values.includes(text)) this.problems.push(`${name}=${JSON.stringify(text)} is invalid: expected one of ${values.join(', ')}`);
    return text;
  }

  /** A postgres:// or postgresql:// URL (the value is never echoed: it may hold a password). */
  postgresUrl(name: keyof T & string): string {
    const url = this.raw(name);
    const problem = url ? databaseUrlProblem(name, url) : undefined;
    if (problem) this.problems.push(problem);
    return url;
  }

  /** A comma-separated list of host:port. */
  brokers(name: keyof T & string): string[] {
    const { brokers, problems } = parseBrokerList(name, this.raw(name));
    this.problems.push(...problems);
    return brokers;
  }

  /** Kafka TLS and SASL (KAFKA_SSL, KAFKA_SSL_CA_FILE, KAFKA_SASL_*), parsed as the CLI parses them; undefined = plaintext. */
  kafkaSecurity(): KafkaSecuritySettings | undefined {
    const { security, problems } = parseKafkaSecurity(this.env);
    this.problems.push(...problems);
    return security;
  }

  /** A comma-separated list, blanks dropped. */
  list(name: keyof T & string): string[] {
    return this.raw(name)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  /** A JSON object of event-type pattern → topic; undefined when unset. */
  topicRoutes(name: keyof T & string): Record<string, string> | undefined {
    const { routes, problems } = parseTopicRoutes(name, this.raw(name));
    this.problems.push(...problems);
    return routes;
  }

  /** Returns `config`, or throws a ConfigError listing every problem found so far. */
  finish<C>(config: C): C {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
    return config;
  }
}
