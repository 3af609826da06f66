import pg from 'pg';
import {
  dlqTopicFor,
  dlqTopicPattern,
  errorMessage,
  invalidConfig,
  resolveBrokers,
  resolveGroupId,
  silentLogger,
  sleep,
  TopicRouter,
  type Logger,
  type TopicRoutingOptions,
} from '@eventbus/core';
import { isRecordError, mirrorDeadLetter, skipUnstorable, type MirrorOutcome } from './sql/mirror-dead-letter.js';
import type { BatchControl, ConsumerGroupClient, ConsumerGroupClientFactory, InboundMessage, KafkaConnectionOptions } from '@eventbus/kafka';
import { KafkajsConsumerClient, warnAboutCopyTopicLimits } from '@eventbus/kafka';

/** Options of `DlqMirror`. */
export interface DlqMirrorOptions {
  brokers: string[];
  /** Postgres URL of the database holding eventbus.dead_letters (or give `pool`). */
  connectionString?: string;
  pool?: pg.Pool;
  /** Must be the consumers' routing (the prefix names the DLQ topics). Default prefix `eventbus.`. */
  routing?: TopicRoutingOptions;
  /**
   * Consumer groups whose DLQs to mirror. Default: every `{prefix}dlq.*` topic by regex, but
   * kafkajs resolves a regex once, at subscribe time: a group's DLQ topic created later is
   * only mirrored after the mirror restarts. List the groups to avoid that (their topics are created if missing).
   */
  groups?: string[];
  /** The mirror's own consumer group. Default `eventbus-dlq-mirror`. */
  groupId?: string;
  clientId?: string;
  /** Partitions of DLQ topics the mirror creates. Default 12. */
  topicPartitions?: number;
  /** TLS, SASL and timeouts of the Kafka connection. */
  connection?: KafkaConnectionOptions;
  /** Opens the mirror's consumer client. Default: a kafkajs `KafkajsConsumerClient` on `brokers` with `connection`. */
  consumerClient?: ConsumerGroupClientFactory;
  logger?: Logger;
  /**
   * Inserts tried for a record Postgres refuses as data (SQLSTATE class 22, 23 or 54, see
   * isRecordError) before it is skipped into eventbus.dead_letters_unstorable. Default 3
   * (1–100), 200 ms apart and growing: a refusal that goes away on its own (a constraint an
   * operator is replacing) gets a second chance, the partition waits at most about a second.
   */
  unstorableAttempts?: number;
}

/** Default of `DlqMirrorOptions.unstorableAttempts`. */
export const DEFAULT_UNSTORABLE_ATTEMPTS = 3;
const UNSTORABLE_RETRY_DELAY_MS = 200;

/**
 * Copies every record of the consumers' DLQ topics into eventbus.dead_letters, where they
 * can be listed, re-driven and discarded. Once per record (see MIRROR_DEAD_LETTER_SQL): at
 * least once delivery of the DLQ topic yields each row once, and a re-read from the beginning
 * (a new group id, expired group offsets) does not bring back rows pruned since, because the
 * mirror keeps its position per DLQ partition in Postgres, written with each row.
 */
export class DlqMirror {
  private readonly brokers: string[];
  private readonly groupId: string;
  private readonly topics: Array<string | RegExp>;
  private readonly logger: Logger;
  private readonly unstorableAttempts: number;
  private readonly stopSignal = new AbortController();
  private client: ConsumerGroupClient | undefined;
  private pool: pg.Pool | undefined;
  private ownsPool = false;
  private stopping: Promise<void> | undefined;
  /** Records copied so far (a record whose row already held the same failure included). */
  mirrored = 0;
  /** Records skipped because the mirror's position says they were copied before (a re-read of the DLQ topic). */
  seenBefore = 0;
  /** Records skipped into eventbus.dead_letters_unstorable after `unstorableAttempts` refused inserts (alert on any). */
  unstorable = 0;

  constructor(private readonly options: DlqMirrorOptions) {
    this.brokers = resolveBrokers(options.brokers);
    this.groupId = resolveGroupId(options.groupId ?? 'eventbus-dlq-mirror');
    if (!options.pool && (typeof options.connectionString !== 'string' || !/^postgres(ql)?:\/\//.test(options.connectionString))) {
      throw invalidConfig('connectionString', 'a postgres:// URL (or a pool)', '<redacted>');
    }
    const prefix = new TopicRouter(options.routing ?? {}).prefix;
    if (options.groups !== undefined && (!Array.isArray(options.groups) || options.groups.length === 0)) {
      throw invalidConfig('groups', 'a non-empty array of consumer group ids', options.groups);
    }
    this.topics = options.groups ? options.groups.map((g) => dlqTopicFor(prefix, resolveGroupId(g, 'groups'))) : [dlqTopicPattern(prefix)];
    this.logger = options.logger ?? silentLogger;
    const attempts = options.unstorableAttempts ?? DEFAULT_UNSTORABLE_ATTEMPTS;
    if (!Number.isInteger(attempts) || attempts < 1 || attempts > 100) throw invalidConfig('unstorableAttempts', 'an integer from 1 to 100', attempts);
    this.unstorableAttempts = attempts;
  }

  /** Joins the mirror's group and starts copying, from the oldest retained DLQ record. */
  async start(): Promise<void> {
    if (this.client || this.stopping) throw invalidConfig('start()', 'one call per DlqMirror', 'a second call');
    this.ownsPool = !this.options.pool;
    const pool = this.options.pool ?? new pg.Pool({ connectionString: this.options.connectionString, max: 2 });
    if (this.ownsPool) pool.on('error', () => undefined);
    this.pool = pool;
    const openClient =
      this.options.consumerClient ?? ((settings) => new KafkajsConsumerClient({ ...settings, brokers: this.brokers, connection: this.options.connection }));
    const client = openClient({
      groupId: this.groupId,
      clientId: this.options.clientId ?? 'eventbus-dlq-mirror',
      concurrency: 1,
      sessionTimeoutMs: 30_000,
      heartbeatIntervalMs: 3000,
      onCommitError: (error) =>
        this.logger.warn({ groupId: this.groupId, err: errorMessage(error) }, 'offset commit failed; the offsets go with the next commit'),
      onCrash: (error, { restartedBy }) =>
        this.logger.warn({ groupId: this.groupId, err: errorMessage(error), restartedBy }, 'Kafka consumer crashed; restarting it'),
    });
    this.client = client;
    const exact = this.topics.filter((t): t is string => typeof t === 'string');
    // DLQ topics the mirror creates first are sized as the consumers would size them (no event
    // topics named: the broker's message.max.bytes is what the relay's topics accept).
    warnAboutCopyTopicLimits(await client.ensureTopics([], this.options.topicPartitions ?? 12, exact), this.logger, { groupId: this.groupId });
    await client.start([{ topics: this.topics, fromBeginning: true }], async (messages, control) => {
      for (const message of messages) {
        if (!control.isRunning() || control.isStale()) return;
        // A database error that is not the record's throws: kafkajs retries the batch from the
        // last resolved offset. A record Postgres refuses is skipped after bounded retries.
        const outcome = await this.copy(pool, message, control);
        if (outcome === undefined) return; // stopping or rebalancing during a retry: the record stays unresolved
        if (outcome === 'mirrored') this.mirrored++;
        else if (outcome === 'seen_before') this.seenBefore++;
        else if (outcome === 'unstorable') this.unstorable++;
        else
          this.logger.warn(
            { topic: message.topic, partition: message.partition, offset: message.offset },
            'skipped a DLQ message without eventbus-dlq headers',
          );
        control.resolveOffset(message.offset);
        // kafkajs heartbeats only between batches, and sends one here only when due: a long
        // batch keeps the membership (and the client's MembershipWatch) alive. Rejects when
        // the group rebalances, which ends the batch; the member rejoins.
        await control.heartbeat();
      }
    });
  }

  /**
   * Copies one record; a record Postgres refuses as data is tried `unstorableAttempts` times
   * in all, then written to dead_letters_unstorable with its position and error, and the
   * position moves past it: one such record never stops the records behind it. Undefined
   * when the mirror stops (or the group rebalances) between tries.
   */
  private async copy(pool: pg.Pool, message: InboundMessage, control: BatchControl): Promise<MirrorOutcome | 'unstorable' | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await mirrorDeadLetter(pool, message);
      } catch (error) {
        if (!isRecordError(error)) throw error;
        const position = { topic: message.topic, partition: message.partition, offset: message.offset };
        const reason = { code: (error as { code?: string }).code, error: (error as Error).message };
        if (attempt >= this.unstorableAttempts) {
          const outcome = await skipUnstorable(pool, message, { attempts: attempt, error });
          if (outcome === 'unstorable') {
            this.logger.error(
              { ...position, attempts: attempt, ...reason },
              'DLQ record cannot be stored in eventbus.dead_letters; skipped into eventbus.dead_letters_unstorable',
            );
          }
          return outcome;
        }
        this.logger.warn({ ...position, attempt, ...reason }, 'DLQ record refused by Postgres; trying again');
        await sleep(UNSTORABLE_RETRY_DELAY_MS * attempt, this.stopSignal.signal);
        if (!control.isRunning() || control.isStale()) return undefined;
        await control.heartbeat();
      }
    }
  }

  /** Commits what was mirrored and leaves the group. Idempotent; safe before start. */
  stop(): Promise<void> {
    this.stopSignal.abort();
    this.stopping ??= (async () => {
      const client = this.client;
      this.client = undefined;
      await client?.stop();
      if (this.ownsPool) await this.pool?.end().catch(() => undefined);
    })();
    return this.stopping;
  }
}
