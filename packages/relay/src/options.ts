import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { DEFAULT_CONNECT_TIMEOUT_MS, invalidConfig, resolveRetryConfig, TopicRouter, type RetryConfig, type TopicRoutingOptions } from '@eventbus/core';
import { InstrumentedPublisher, KafkaPublisher, type KafkaConnectionOptions, type MessagePublisher } from '@eventbus/kafka';
import { silentLogger, type Logger } from '@eventbus/core';
import type { OutboxNotifier } from './notifier/outbox-notifier.js';
import { DEFAULT_TOPIC_HOLD_TIMING, type TopicHoldTiming } from './topic-holds.js';

/** Options of `OutboxRelay`. Each default is stated once, here. */
export interface OutboxRelayOptions {
  /** Postgres connection string (the primary: LISTEN does not work on replicas or through PgBouncer transaction pooling). */
  connectionString: string;
  /** How long opening a Postgres connection (TCP, TLS, login) may take. Default 10000 ms (100 to 600000). */
  connectTimeoutMs?: number;
  /** Kafka bootstrap brokers; ignored when `publisher` is given. */
  brokers?: string[];
  /** TLS and SASL for the brokers (a managed Kafka); ignored when `publisher` is given. Default plaintext. */
  connection?: KafkaConnectionOptions;
  /** A publisher of your own (tests, another Kafka client). Default: a kafkajs `KafkaPublisher`. */
  publisher?: MessagePublisher;
  /** Default: LISTEN through pg-listen on `connectionString`. */
  notifier?: OutboxNotifier;
  /** Kafka client id. Default `eventbus-relay`. */
  clientId?: string;
  /**
   * Broker-side deduplication of re-sent batches (the idempotent producer: producer id and
   * sequence numbers). Default true: a batch re-sent because its answer was lost (a leader
   * that appended and died) is not written twice. Ignored when `publisher` is given.
   */
  kafkaIdempotent?: boolean;
  /**
   * Create the topics events route to (admin CreateTopics) on first use, and again when one
   * is deleted under the relay. Default true. Off (a managed Kafka where the relay may not
   * create topics): a row whose topic does not exist is refused on its own and waits in the
   * outbox for the topic (`missingTopicHold`), never dead-lettered for it; the other rows of
   * its batch are published. Ignored when `publisher` is given.
   */
  createTopics?: boolean;
  /**
   * After Kafka says a topic does not exist, its rows are not offered to Kafka again until a
   * hold on the topic ends: `initialMs` for the first, twice the last for each next one, up to
   * `maxMs`; the hold ends for good when a row of the topic is published. Rows of a held topic
   * go back to the outbox due `maxMs` later, and are made due at once when the topic appears.
   * Default 1000 ms doubling to 30000 ms (initialMs 10 to 60000, maxMs initialMs to 600000).
   * A topic held for `alertAfterMs` (default 300000 = 5 min; 100 to 86400000) is a problem: an
   * error log line once per topic, and `degraded` with the topic in `problems` in health(); its
   * rows still wait, never dropped.
   */
  missingTopicHold?: Partial<TopicHoldTiming>;
  /** Rows claimed and sent per Kafka request. Default 500 (1 to 10000). */
  batchSize?: number;
  /**
   * Claim connections per instance, each holding its own share of the shards and running
   * its own claim → publish → commit loop, so Kafka and Postgres round trips overlap.
   * Default 2 (1 to 16). Each lane is one more Postgres connection.
   */
  lanes?: number;
  /** Fallback poll when no notification arrives. Default 1000 ms (10 to 60000). */
  pollIntervalMs?: number;
  /** How often shards are rebalanced among instances. Default 2000 ms (100 to 60000). */
  rebalanceIntervalMs?: number;
  /** Row-level publish failures: retries, then the DLQ table. Default 5 retries, 1 s ×2 up to 60 s. */
  retryConfig?: Partial<RetryConfig>;
  /**
   * Longest backoff while the broker or database is unreachable. Default 5000 ms: a retry is
   * one failed connection attempt, cheap, and a longer cap would delay recovery by as much
   * after the outage ends (the fault matrix saw ~30 s with a 30 s cap).
   */
  maxOutageBackoffMs?: number;
  /**
   * How long this instance's publishes may keep failing (Kafka unreachable from here, a
   * broken route, expired credentials) before its lanes release their shards to the other
   * instances, which take them at their next rebalance. Only when another instance is live;
   * a lane that released its shards probes Kafka and rejoins the split once Kafka answers.
   * Default 20000 ms; 0 = never (the instance keeps its shards through any Kafka outage).
   */
  kafkaFailoverMs?: number;
  /** Topic routing, shared with consumers. Default: `eventbus.{family}`. */
  routing?: TopicRoutingOptions;
  /** Shown in `eventbus outbox status` and logs. Default `{host}-{pid}-{random}`. */
  instanceId?: string;
  /** Time `stop()` waits for the batch in flight before it cancels it. Default 10000 ms. */
  shutdownGraceMs?: number;
  logger?: Logger;
}

export interface ResolvedRelayOptions {
  connectionString: string;
  connectTimeoutMs: number;
  brokers: string[];
  /** The caller's publisher or a kafkajs one, always wrapped in an `InstrumentedPublisher` (send spans, published counter). */
  publisher: MessagePublisher;
  notifier: OutboxNotifier | undefined;
  clientId: string;
  batchSize: number;
  lanes: number;
  pollIntervalMs: number;
  rebalanceIntervalMs: number;
  retryConfig: RetryConfig;
  topicHoldTiming: TopicHoldTiming;
  maxOutageBackoffMs: number;
  kafkaFailoverMs: number;
  router: TopicRouter;
  instanceId: string;
  shutdownGraceMs: number;
  logger: Logger;
}

export function resolveRelayOptions(options: OutboxRelayOptions): ResolvedRelayOptions {
  if (typeof options.connectionString !== 'string' || !/^postgres(ql)?:\/\//.test(options.connectionString)) {
    throw invalidConfig('connectionString', 'a postgres:// or postgresql:// URL', options.connectionString === undefined ? 'nothing' : '<redacted>');
  }
  const brokers = options.brokers ?? [];
  if (!options.publisher) {
    if (brokers.length === 0) throw invalidConfig('brokers', 'at least one host:port', 'none');
    for (const broker of brokers) {
      if (!/^[^\s:/]+:\d{1,5}$/.test(broker)) throw invalidConfig('brokers', 'host:port entries', broker);
    }
  }
  const int = (name: keyof OutboxRelayOptions, value: unknown, fallback: number, min: number, max: number): number => {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalidConfig(name, `an integer from ${min} to ${max}`, v);
    return v;
  };
  return {
    connectionString: options.connectionString,
    connectTimeoutMs: int('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 100, 600_000),
    brokers,
    // A caller's publisher is traced too: the trace must not break because a test or an
    // embedder brought its own Kafka client. `message`: continue the producer's stored trace.
    publisher: new InstrumentedPublisher(
      options.publisher ??
        new KafkaPublisher({
          brokers,
          clientId: options.clientId ?? 'eventbus-relay',
          idempotent: options.kafkaIdempotent ?? true,
          createTopics: options.createTopics ?? true,
          ...(options.connection ? { connection: options.connection } : {}),
        }),
      {
        stage: 'relay',
        parent: 'message',
      },
    ),
    notifier: options.notifier,
    clientId: options.clientId ?? 'eventbus-relay',
    batchSize: int('batchSize', options.batchSize, 500, 1, 10_000),
    lanes: int('lanes', options.lanes, 2, 1, 16),
    pollIntervalMs: int('pollIntervalMs', options.pollIntervalMs, 1000, 10, 60_000),
    rebalanceIntervalMs: int('rebalanceIntervalMs', options.rebalanceIntervalMs, 2000, 100, 60_000),
    retryConfig: resolveRetryConfig(options.retryConfig),
    topicHoldTiming: resolveTopicHoldTiming(options.missingTopicHold),
    maxOutageBackoffMs: int('maxOutageBackoffMs', options.maxOutageBackoffMs, 5000, 100, 600_000),
    kafkaFailoverMs: int('kafkaFailoverMs', options.kafkaFailoverMs, 20_000, 0, 3_600_000),
    router: new TopicRouter(options.routing),
    instanceId: options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    shutdownGraceMs: int('shutdownGraceMs', options.shutdownGraceMs, 10_000, 0, 600_000),
    logger: options.logger ?? silentLogger,
  };
}

function resolveTopicHoldTiming(input: Partial<TopicHoldTiming> = {}): TopicHoldTiming {
  const initialMs = input.initialMs ?? DEFAULT_TOPIC_HOLD_TIMING.initialMs;
  if (!Number.isInteger(initialMs) || initialMs < 10 || initialMs > 60_000) {
    throw invalidConfig('missingTopicHold.initialMs', 'an integer from 10 to 60000', initialMs);
  }
  const maxMs = input.maxMs ?? Math.max(initialMs, DEFAULT_TOPIC_HOLD_TIMING.maxMs);
  if (!Number.isInteger(maxMs) || maxMs < initialMs || maxMs > 600_000) {
    throw invalidConfig('missingTopicHold.maxMs', `an integer from initialMs (${initialMs}) to 600000`, maxMs);
  }
  const alertAfterMs = input.alertAfterMs ?? DEFAULT_TOPIC_HOLD_TIMING.alertAfterMs;
  if (!Number.isInteger(alertAfterMs) || alertAfterMs < 100 || alertAfterMs > 86_400_000) {
    throw invalidConfig('missingTopicHold.alertAfterMs', 'an integer from 100 to 86400000 (ms a topic may stay missing before it is reported)', alertAfterMs);
  }
  return { initialMs, maxMs, alertAfterMs };
}
