import {
  eventTypeMatcher,
  eventTypePatternProblem,
  invalidConfig,
  resolveBrokers,
  resolveGroupId,
  resolveRetryConfig,
  type RetryConfig,
  TopicRouter,
  type TopicRoutingOptions,
} from '@eventbus/core';
import type { ConsumerGroupClientFactory, KafkaConnectionOptions, MessagePublisher } from '@eventbus/kafka';
import type { EventMetric } from '@eventbus/monitor';
import type { Logger } from '@eventbus/core';
import { guardedLogger, silentLogger } from '@eventbus/core';
import { dlqTopicFor, retryTopicFor } from '@eventbus/core';
import { decodeContractPayload, type EventContract, isEventContract } from '@eventbus/contracts';
import type { ContractHandler, EventHandler, RetryMode, SubscriptionOptions } from './types.js';
import { DEFAULT_TENANT_CIRCUIT, type TenantCircuitOptions } from './tenant-circuit.js';

/** Options of `EventConsumer`. Each default is stated once, here. */
export interface EventConsumerOptions {
  /** Kafka bootstrap brokers, `host:port`. */
  brokers: string[];
  /** The Kafka consumer group; retries and the DLQ are per group (`{prefix}retry.{group}`, `{prefix}dlq.{group}`). */
  groupId: string;
  /** Handler failures: retries, then the DLQ. Default DEFAULT_RETRY_CONFIG (5 retries, 1 s ×2 up to 60 s). */
  retryConfig?: Partial<RetryConfig>;
  /** Topic routing; must be the relay's. Default `eventbus.{family}`. */
  routing?: TopicRoutingOptions;
  /** Default `non-blocking`. */
  mode?: RetryMode;
  /**
   * The per-tenant circuit breaker: a tenant that failed `failureThreshold` attempts in a row on
   * a subscription while other tenants succeeded has its events dead-lettered without a handler
   * call for `openMs`, then one attempt probes (docs/consumers.md). `false` turns it off.
   * Default { failureThreshold: 100, minStreakMs: 2000, openMs: 10000 }.
   */
  tenantCircuitBreaker?: Partial<TenantCircuitOptions> | false;
  /** Time one handler call may take before it is aborted and counted as a (retriable) failure. Default 30000 ms. */
  handlerTimeoutMs?: number;
  /** Time `stop()` lets handlers in flight finish before it aborts their signal. Default 10000 ms. */
  shutdownGraceMs?: number;
  /** Where a new group starts on the event topics: the oldest retained message (true) or new ones only. Default false. */
  fromBeginning?: boolean;
  /** Partitions handled at the same time. Default 4 (1 to 64). */
  partitionsConsumedConcurrently?: number;
  /** Partitions of the topics this consumer creates when missing (event, retry and DLQ topics). Default 12, like the relay's publisher. */
  topicPartitions?: number;
  /** Kafka client id. Default `eventbus-consumer`. */
  clientId?: string;
  /** Postgres URL for `context.processOnce`; not needed otherwise. */
  connectionString?: string;
  /** Publishes retry and DLQ messages. Default: a `KafkaPublisher` on `brokers`. */
  publisher?: MessagePublisher;
  /** Receives every attempt's outcome. Default `recordEventMetric` of @eventbus/monitor. */
  onMetric?: (metric: EventMetric) => void;
  /** Group session timeout: a member silent this long is removed from the group. Default 30000 ms. */
  sessionTimeoutMs?: number;
  /** How often a heartbeat is sent, also while a handler runs. Default 3000 ms. */
  heartbeatIntervalMs?: number;
  /** TLS, SASL and timeouts of the Kafka connections (consumer and retry/DLQ publisher). */
  connection?: KafkaConnectionOptions;
  /** Opens the group's consumer client. Default: a kafkajs `KafkajsConsumerClient` on `brokers` with `connection`. */
  consumerClient?: ConsumerGroupClientFactory;
  /** Where the consumer logs (pino's logger fits). Default: nothing is logged. A line the logger throws on is dropped, with one process warning. */
  logger?: Logger;
}

/** The options after validation, with every default applied. */
export interface ResolvedConsumerOptions {
  brokers: string[];
  groupId: string;
  retryConfig: RetryConfig;
  router: TopicRouter;
  mode: RetryMode;
  /** Undefined when turned off. */
  tenantCircuitBreaker: TenantCircuitOptions | undefined;
  handlerTimeoutMs: number;
  /** Kafka's rebalance timeout for the group, from handlerTimeoutMs (rebalanceTimeoutFor). */
  rebalanceTimeoutMs: number;
  shutdownGraceMs: number;
  fromBeginning: boolean;
  partitionsConsumedConcurrently: number;
  topicPartitions: number;
  clientId: string;
  connectionString: string | undefined;
  publisher: MessagePublisher | undefined;
  onMetric: ((metric: EventMetric) => void) | undefined;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  connection: KafkaConnectionOptions | undefined;
  consumerClient: ConsumerGroupClientFactory | undefined;
  logger: Logger;
  retryTopic: string;
  dlqTopic: string;
}

/** A subscription after validation. */
export interface ResolvedSubscription {
  name: string;
  eventTypes: readonly string[];
  matches: (eventType: string) => boolean;
  handler: EventHandler;
}

// One validation of brokers and group ids for every Kafka client of the project (core's).
export { resolveBrokers, resolveGroupId };

/** Validates `options` once; every error names the option at fault. */
/**
 * Kafka's rebalance timeout for a group whose handler calls may take `handlerTimeoutMs`: at a
 * rebalance the member rejoins once its calls in progress end (then commits, within 5 s), so
 * the group must wait that long, or it gives the member's partitions to others while a call
 * still runs. kafkajs' 60 s default at least; a member that never rejoins holds up the group's
 * rebalance this long (as Java's `max.poll.interval.ms` does).
 */
export function rebalanceTimeoutFor(handlerTimeoutMs: number): number {
  return Math.max(60_000, handlerTimeoutMs + 15_000);
}

export function resolveConsumerOptions(options: EventConsumerOptions): ResolvedConsumerOptions {
  if (typeof options !== 'object' || options === null) throw invalidConfig('options', 'an object', options);
  const brokers = options.publisher && !options.brokers ? [] : resolveBrokers(options.brokers);
  const groupId = resolveGroupId(options.groupId);
  const int = (name: keyof EventConsumerOptions, fallback: number, min: number, max: number): number => {
    const v = options[name] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalidConfig(name, `an integer from ${min} to ${max}`, v);
    return v;
  };
  const mode = options.mode ?? 'non-blocking';
  if (mode !== 'non-blocking' && mode !== 'in-order') throw invalidConfig('mode', '"non-blocking" or "in-order"', mode);
  if (options.fromBeginning !== undefined && typeof options.fromBeginning !== 'boolean')
    throw invalidConfig('fromBeginning', 'a boolean', options.fromBeginning);
  if (options.connectionString !== undefined && (typeof options.connectionString !== 'string' || !/^postgres(ql)?:\/\//.test(options.connectionString))) {
    throw invalidConfig('connectionString', 'a postgres:// or postgresql:// URL', '<redacted>');
  }
  if (options.onMetric !== undefined && typeof options.onMetric !== 'function') throw invalidConfig('onMetric', 'a function', options.onMetric);
  const sessionTimeoutMs = int('sessionTimeoutMs', 30_000, 6000, 300_000);
  const heartbeatIntervalMs = int('heartbeatIntervalMs', 3000, 100, 60_000);
  if (heartbeatIntervalMs >= sessionTimeoutMs)
    throw invalidConfig('heartbeatIntervalMs', `less than sessionTimeoutMs (${sessionTimeoutMs})`, heartbeatIntervalMs);
  const router = new TopicRouter(options.routing ?? {});
  const handlerTimeoutMs = int('handlerTimeoutMs', 30_000, 1, 3_600_000);
  return {
    brokers,
    groupId,
    retryConfig: resolveRetryConfig(options.retryConfig ?? {}),
    router,
    mode,
    tenantCircuitBreaker: resolveTenantCircuit(options.tenantCircuitBreaker),
    handlerTimeoutMs,
    rebalanceTimeoutMs: rebalanceTimeoutFor(handlerTimeoutMs),
    shutdownGraceMs: int('shutdownGraceMs', 10_000, 0, 600_000),
    fromBeginning: options.fromBeginning ?? false,
    partitionsConsumedConcurrently: int('partitionsConsumedConcurrently', 4, 1, 64),
    topicPartitions: int('topicPartitions', 12, 1, 10_000),
    clientId: options.clientId ?? 'eventbus-consumer',
    connectionString: options.connectionString,
    publisher: options.publisher,
    onMetric: options.onMetric,
    sessionTimeoutMs,
    heartbeatIntervalMs,
    connection: options.connection,
    consumerClient: options.consumerClient,
    // Called from inside batches: one that throws must not end them (guardedLogger).
    logger: options.logger ? guardedLogger(options.logger) : silentLogger,
    retryTopic: retryTopicFor(router.prefix, groupId),
    dlqTopic: dlqTopicFor(router.prefix, groupId),
  };
}

function resolveTenantCircuit(input: EventConsumerOptions['tenantCircuitBreaker']): TenantCircuitOptions | undefined {
  if (input === false) return undefined;
  if (input !== undefined && (typeof input !== 'object' || input === null))
    throw invalidConfig('tenantCircuitBreaker', 'false or { failureThreshold?, minStreakMs?, openMs? }', input);
  const resolved = { ...DEFAULT_TENANT_CIRCUIT, ...Object.fromEntries(Object.entries(input ?? {}).filter(([, v]) => v !== undefined)) };
  const { failureThreshold, minStreakMs, openMs } = resolved;
  if (!Number.isInteger(failureThreshold) || failureThreshold < 1 || failureThreshold > 1_000_000)
    throw invalidConfig('tenantCircuitBreaker.failureThreshold', 'an integer from 1 to 1000000', failureThreshold);
  if (!Number.isInteger(minStreakMs) || minStreakMs < 0 || minStreakMs > 86_400_000)
    throw invalidConfig('tenantCircuitBreaker.minStreakMs', 'an integer from 0 to 86400000 (ms)', minStreakMs);
  if (!Number.isInteger(openMs) || openMs < 100 || openMs > 86_400_000)
    throw invalidConfig('tenantCircuitBreaker.openMs', 'an integer from 100 to 86400000 (ms)', openMs);
  return { failureThreshold, minStreakMs, openMs };
}

/** Validates one `subscribe` call; `index` gives the default name. */
export function resolveSubscription(input: SubscriptionOptions<never>, index: number, taken: ReadonlySet<string>): ResolvedSubscription {
  if (typeof input !== 'object' || input === null) throw invalidConfig('subscribe()', 'an object with eventTypes and handler', input);
  if (!Array.isArray(input.eventTypes) || input.eventTypes.length === 0) throw invalidConfig('eventTypes', 'a non-empty array of patterns', input.eventTypes);
  for (const pattern of input.eventTypes) {
    const problem = typeof pattern === 'string' ? eventTypePatternProblem(pattern) : 'is not a string';
    if (problem) throw invalidConfig('eventTypes', `valid patterns (${JSON.stringify(pattern)} ${problem})`, pattern);
  }
  if (typeof input.handler !== 'function') throw invalidConfig('handler', 'an async function (event, context)', input.handler);
  const name = input.name ?? String(index);
  if (typeof name !== 'string' || !/^[\w.-]{1,100}$/.test(name)) throw invalidConfig('name', 'letters, digits, "_", "." or "-" (1 to 100)', name);
  if (taken.has(name)) throw invalidConfig('name', 'a name no other subscription of this consumer uses', name);
  return { name, eventTypes: [...input.eventTypes], matches: eventTypeMatcher(input.eventTypes), handler: input.handler as EventHandler };
}

/**
 * The subscription of `subscribe(contract, handler)`: the contract's exact type, and a handler
 * that upcasts the payload to the contract's version and validates it before calling the
 * user's. A payload that cannot be upcast or fails the schema throws a NonRetriableError that
 * lists the issues, so the consumer dead-letters it at once; the batch processor sees an
 * ordinary handler.
 */
export function contractSubscription<C extends EventContract>(contract: C, handler: ContractHandler<C>, name: string | undefined): SubscriptionOptions {
  if (!isEventContract(contract)) throw invalidConfig('subscribe()', 'a defineEvent() contract', contract);
  if (typeof handler !== 'function') throw invalidConfig('handler', 'an async function (event, context)', handler);
  const typed: EventHandler = async (event, context) => {
    const payload = await decodeContractPayload(contract, event.payload, event.version);
    // The handler sees the version its payload now has; the wire's stays in headers.ce_eventversion.
    await handler({ ...event, payload, version: contract.version }, context);
  };
  return name === undefined ? { eventTypes: [contract.type], handler: typed } : { eventTypes: [contract.type], handler: typed, name };
}
