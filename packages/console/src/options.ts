import type pg from 'pg';
import { invalidConfig, type Logger, type TopicRoutingOptions } from '@eventbus/core';
import type { GroupLag, MessagePublisher } from '@eventbus/kafka';

/** Reads consumer groups' lag (ConsumerGroupLagReader from @eventbus/kafka fits). */
export interface LagSource {
  /** The lag of `groups`, or of the cluster's consumer groups when none are given. */
  lag(groups?: readonly string[]): Promise<GroupLag[]>;
}

/** Options of `startConsole`. */
export interface ConsoleOptions {
  /** The database holding the eventbus schema; the console never ends it. */
  pool: pg.Pool;
  /** Sends re-driven consumer dead letters and replays. Absent: those actions answer that Kafka is not configured. */
  publisher?: MessagePublisher;
  /** Consumer-group lag. Absent: the lag panel says Kafka is not configured. */
  lag?: LagSource;
  /** Consumer groups whose lag to show. Default: the cluster's consumer groups (at most 50). */
  groups?: readonly string[];
  /** The relay's topic routing: replays and re-drives go to the topics the relay and consumers use. Default prefix `eventbus.`. */
  routing?: TopicRoutingOptions;
  /** Address to bind. Default 127.0.0.1; anything but a loopback address requires `token`. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 8080. */
  port?: number;
  /** Required on every request when set (EVENTBUS_CONSOLE_TOKEN); at least 16 characters. */
  token?: string;
  /** Where the console reads from, shown in the page header; connection strings are redacted before display. */
  describeConnections?: { database?: string; brokers?: string[] };
  logger?: Logger;
}

export interface ResolvedConsoleOptions extends Omit<ConsoleOptions, 'host' | 'port' | 'token'>, ConsoleBinding {}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
export const MIN_TOKEN_LENGTH = 16;

/** Whether `host` is a loopback address (only the local machine can connect). */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Where the console listens and whether it requires a token: checked before anything connects. */
export interface ConsoleBinding {
  host: string;
  port: number;
  token: string | undefined;
  loopback: boolean;
}

/**
 * Checks the address, port and token. A console reachable from other machines without a
 * token would let anyone re-drive dead letters and replay events: binding anything but
 * loopback without EVENTBUS_CONSOLE_TOKEN is an INVALID_CONFIG error, so it never starts that way.
 */
export function resolveConsoleBinding(options: { host?: string | undefined; port?: number | undefined; token?: string | undefined }): ConsoleBinding {
  const host = (options.host ?? '127.0.0.1').trim();
  if (host === '') throw invalidConfig('host', 'an address to bind, like 127.0.0.1', options.host);
  const port = options.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw invalidConfig('port', 'an integer from 0 to 65535', port);
  const token = options.token === undefined || options.token === '' ? undefined : options.token;
  const loopback = isLoopbackHost(host);
  if (!loopback && token === undefined) {
    throw invalidConfig(
      'EVENTBUS_CONSOLE_TOKEN',
      `a token of at least ${MIN_TOKEN_LENGTH} characters when the console binds ${host} (not loopback): every request must then carry it`,
      'nothing',
    );
  }
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw invalidConfig('EVENTBUS_CONSOLE_TOKEN', `at least ${MIN_TOKEN_LENGTH} characters`, `${token.length} characters`);
  }
  return { host, port, token, loopback };
}

/** Checks the options once, at start. */
export function resolveConsoleOptions(options: ConsoleOptions): ResolvedConsoleOptions {
  return { ...options, ...resolveConsoleBinding(options) };
}
