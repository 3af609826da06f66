import { readFileSync } from 'node:fs';

/**
 * Parsing of the connection settings every deployable reads from its environment (the
 * relay app, the CLI): one place, so both accept and refuse exactly the same values.
 * Each function returns the parsed value plus problems phrased for an operator
 * ("NAME … is invalid: expected …"), so callers can collect every problem before failing.
 */

/** Why `url` is not a usable Postgres connection string, or undefined. */
export function databaseUrlProblem(name: string, url: string): string | undefined {
  if (!/^postgres(ql)?:\/\/[^/]+/.test(url)) return `${name} is invalid: expected postgres://user:pass@host:port/database`;
  // pg parses the URL with WHATWG URL rules: check it the same way here, so a bad port or an
  // unencoded character in the password is a config error naming the variable, not pg's bare "Invalid URL".
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${name} is invalid: ${redactUrl(url)} is not a URL (is the port a number? are characters like @ : / # in the password percent-encoded?)`;
  }
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) return `${name} is invalid: ${redactUrl(url)} names no host`;
  return undefined;
}

/** The URL with its password replaced by ***, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

/**
 * How long a connection made at start may take (TCP, TLS and authentication) before it
 * counts as "cannot connect": a server that accepts the connection and never answers would
 * otherwise hold a process at start forever, silently.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** A comma-separated `host:port` list. */
export function parseBrokerList(name: string, text: string): { brokers: string[]; problems: string[] } {
  const brokers = text
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  const problems = brokers
    .filter((broker) => !/^[^\s:/]+:\d{1,5}$/.test(broker))
    .map((broker) => `${name} entry ${JSON.stringify(broker)} is invalid: expected host:port`);
  return { brokers, problems };
}

/** A JSON object of event-type pattern → topic (`{"media.*":"eventbus.media-large"}`); empty text = none. */
export function parseTopicRoutes(name: string, text: string): { routes: Record<string, string> | undefined; problems: string[] } {
  if (text.trim() === '') return { routes: undefined, problems: [] };
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
      throw new Error('not an object of strings');
    }
    return { routes: parsed as Record<string, string>, problems: [] };
  } catch {
    return { routes: undefined, problems: [`${name} is invalid: expected a JSON object like {"media.*":"eventbus.media-large"}`] };
  }
}

/** TLS and SASL for a managed Kafka (Confluent Cloud, MSK, Aiven): what the apps and the CLI read from the environment. */
export interface KafkaSecuritySettings {
  /** `true`: TLS trusting the system's CAs; `{ ca }`: trusting these PEM certificates instead. */
  ssl?: boolean | { ca: string[] };
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: string };
}

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/** The variables `parseKafkaSecurity` reads, with what each expects (the apps' env tables quote these). */
export const KAFKA_SECURITY_VARIABLES = {
  KAFKA_SSL: 'true: TLS to the brokers, trusting the system CAs (false by default; implied by KAFKA_SSL_CA_FILE)',
  KAFKA_SSL_CA_FILE: 'PEM file of the CA(s) to trust instead of the system ones (a private CA, a self-signed broker)',
  KAFKA_SASL_MECHANISM: `SASL authentication: ${KAFKA_SASL_MECHANISMS.join(', ')} (none by default)`,
  KAFKA_SASL_USERNAME: 'SASL user (required with KAFKA_SASL_MECHANISM)',
  KAFKA_SASL_PASSWORD: 'SASL password (required with KAFKA_SASL_MECHANISM; never logged)',
} as const;

/**
 * The Kafka TLS/SASL settings from the environment, or undefined when none is set (plaintext,
 * as a local broker). Every problem is named with its variable; the password never appears.
 * SASL without TLS is allowed (a SASL_PLAINTEXT listener inside a private network).
 */
export function parseKafkaSecurity(
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): {
  security: KafkaSecuritySettings | undefined;
  problems: string[];
} {
  const get = (name: keyof typeof KAFKA_SECURITY_VARIABLES) => env[name]?.trim() || undefined;
  const problems: string[] = [];
  const security: KafkaSecuritySettings = {};
  const sslText = get('KAFKA_SSL')?.toLowerCase();
  if (sslText !== undefined && !['true', 'false', '1', '0'].includes(sslText))
    problems.push(`KAFKA_SSL=${JSON.stringify(sslText)} is invalid: expected true or false`);
  const caFile = get('KAFKA_SSL_CA_FILE');
  if (caFile) {
    try {
      const pem = readFile(caFile);
      if (!pem.includes('-----BEGIN CERTIFICATE-----'))
        problems.push(`KAFKA_SSL_CA_FILE=${JSON.stringify(caFile)} is invalid: expected a PEM file with at least one CERTIFICATE block`);
      security.ssl = { ca: [pem] };
    } catch (error) {
      problems.push(`KAFKA_SSL_CA_FILE=${JSON.stringify(caFile)} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else if (sslText === 'true' || sslText === '1') {
    security.ssl = true;
  }
  const mechanism = get('KAFKA_SASL_MECHANISM')?.toLowerCase();
  const username = get('KAFKA_SASL_USERNAME');
  const password = env.KAFKA_SASL_PASSWORD; // untrimmed: a password may end in a space
  if (mechanism !== undefined) {
    if (!(KAFKA_SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
      problems.push(`KAFKA_SASL_MECHANISM=${JSON.stringify(mechanism)} is invalid: expected one of ${KAFKA_SASL_MECHANISMS.join(', ')}`);
    }
    if (!username) problems.push('KAFKA_SASL_USERNAME is missing: required with KAFKA_SASL_MECHANISM');
    if (!password) problems.push('KAFKA_SASL_PASSWORD is missing: required with KAFKA_SASL_MECHANISM');
    if (username && password) security.sasl = { mechanism: mechanism as KafkaSaslMechanism, username, password };
  } else if (username || password) {
    problems.push('KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD are set without KAFKA_SASL_MECHANISM: set it to plain, scram-sha-256 or scram-sha-512');
  }
  return { security: security.ssl !== undefined || security.sasl ? security : undefined, problems };
}
