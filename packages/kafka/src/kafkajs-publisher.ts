import { Kafka, logLevel, Partitioners, type Admin, type Producer, type KafkaConfig, type Message, type ProducerBatch, type RecordMetadata } from 'kafkajs';
import { acknowledgedPositions, positionsWhereAcknowledged, type PartitionAcknowledgement, type SentMessage } from './acknowledged-positions.js';
import { brokersUnreachable, kafkajsConnectionConfig, type KafkaConnectionOptions } from './connection-options.js';
import { kafkaRefusal, publishAuthorizationHint } from './kafka-authorization.js';
import { kafkajsPatchRevision } from './kafkajs-patch.js';
import { createTopicsAndWait } from './create-topics.js';
import { loneRecordBatchBytes } from './message-size.js';
import { createCopyTopics, describeTopicLimits } from './topic-limits.js';
import { TopicCatalog, type TopicAdmin, type TopicFacts } from './topic-catalog.js';
import { readRecordAt, type RecordPosition, type StoredRecord } from './record-at-offset.js';
import { PublishError, type MessagePublisher, type OutboundMessage, type PublishedPosition } from './publisher.js';
import { errorMessage } from '@eventbus/core';

export interface KafkaPublisherOptions {
  brokers: string[];
  clientId?: string;
  /**
   * Create topics on first use (admin CreateTopics, `topicPartitions` each), and again when a
   * send finds one deleted. Default true. Off (a managed Kafka where this client may not
   * create topics), nothing creates a topic, broker auto-creation included: a message for a
   * topic that does not exist is refused (`PublishError.refusals`) while the rest of its
   * batch is sent, and the topic is looked for again after 5 s.
   */
  createTopics?: boolean;
  /** Partitions of topics this publisher creates. Default 12. */
  topicPartitions?: number;
  /** Replication factor of created topics; -1 = the broker's default. Default -1. */
  topicReplicationFactor?: number;
  /**
   * Time one publish may take before it counts as a transient failure: kafkajs retries,
   * replacing a failed producer and creating topics included. Default 15000 ms.
   */
  publishTimeoutMs?: number;
  /**
   * Broker-side deduplication of re-sent batches (producer id + sequence numbers, KIP-98).
   * Default true. Off, a batch re-sent after a lost answer can be written twice (same ce_id).
   */
  idempotent?: boolean;
  /** TLS, SASL and timeouts. */
  connection?: KafkaConnectionOptions;
  /** kafkajs settings beyond `connection`, applied last (tests: a socket factory, a log level). Specific to this adapter. */
  kafkajs?: Partial<KafkaConfig>;
}

/**
 * Error types that belong to the messages, not the broker: the same bytes sent again will
 * be refused again. Everything else (connection loss, leader elections, timeouts, retries
 * exhausted) is transient.
 */
const REJECTED_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
  'INVALID_REQUIRED_ACKS',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  'POLICY_VIOLATION',
]);

/**
 * A message as `send` hands it to kafkajs, which reads its key, value and headers, with what
 * the publisher needs of it during the send: one object per message (a WeakMap keyed by the
 * message would add a table entry for each message sent). A copy of the caller's message, never
 * the caller's object: fields kafkajs reads that OutboundMessage lacks (`partition`,
 * `timestamp`) stay unset whatever the caller's object holds.
 */
interface SentRecord extends Message {
  /** OutboundMessage.choosePartition, when it has one. */
  readonly choosePartition: ((partitionCount: number) => number) | undefined;
  /** The partition kafkajs' partitioner chose for it (recorded to match Kafka's answers to messages: positionsOf); undefined until then. */
  chosenPartition: number | undefined;
}

/** One kafkajs producer and what the publisher knows of its state. */
interface PooledProducer {
  producer: Producer;
  /** A transient failure happened on its connections: replace them before its next send. */
  needsReconnect: boolean;
  /**
   * Every topic it was asked to send to. kafkajs refreshes the metadata of all of them before
   * a send, and one that no longer exists fails every later send of this producer, whatever
   * its topics, until the deadline: such a producer is retired, not reused.
   */
  topics: Set<string>;
  /** It targets a topic that is gone: closed once its send in flight settles. */
  retired: boolean;
}

/**
 * Beyond this many sends in flight (callers' overlapping publishes plus sends still running
 * after their publish timed out), a publish fails at once instead of opening yet another
 * producer: Kafka is not answering, and the callers back off.
 */
const MAX_PRODUCERS = 32;

/**
 * A send not settled after this long gets its topics checked (TopicCatalog.recheck). Sends
 * take ~2-20 ms on a healthy cluster (`pnpm bench --only latency`), so this is rare.
 */
const SLOW_SEND_TOPIC_CHECK_MS = 1000;

/** Whether the installed kafkajs takes `sendBatch({ deadline })` and ends a send at a refusal of its messages (patch revision 5 and later). */
const HONOURS_DEADLINE = (kafkajsPatchRevision() ?? 0) >= 5;

/**
 * The one place kafkajs' producer is used.
 *
 * Idempotent by default (`enable.idempotence` as Kafka's Java producer has it since 3.0): each
 * producer has a producer id and numbers its batches per partition, so a batch re-sent after
 * a lost answer (a leader that appended and died, a connection cut mid-request) is dropped by
 * the broker instead of written twice. kafkajs keeps those numbers in step only with one send
 * in flight per producer, so the publisher keeps a small pool: a publish borrows an idle
 * producer for the whole of its send, and overlapping publishes (the relay's lanes) get
 * producers of their own. The patched kafkajs re-sends only unacknowledged partitions with
 * the sequence numbers they were first given, and after a send whose outcome is unknown asks
 * for a new producer id before the next one (patches/kafkajs@2.2.4.patch, revision 3).
 */
export class KafkaPublisher implements MessagePublisher {
  private readonly kafka: Kafka;
  private connected = false;
  private readonly idle: PooledProducer[] = [];
  private readonly all = new Set<PooledProducer>();
  private adminReady: Promise<Admin> | undefined;
  /** Topics sent to successfully: probe() checks their leaders. */
  private readonly knownTopics = new Set<string>();
  /** Which topics exist and how large a message each accepts, asked of the admin on first use. */
  private readonly catalog: TopicCatalog;
  /** Copy topics ensureCopyTopics created or found: a re-drive of many rows asks the admin once per topic. */
  private readonly ensuredCopyTopics = new Set<string>();

  constructor(private readonly options: KafkaPublisherOptions) {
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'eventbus',
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      // Bounded: a broker outage must surface as a transient failure the relay backs off on,
      // not as a send that hangs while rows stay locked.
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      ...kafkajsConnectionConfig(options.connection),
      ...options.kafkajs,
    });
    this.catalog = new TopicCatalog(() => this.topicAdmin(), { createTopics: options.createTopics !== false });
  }

  async connect(): Promise<void> {
    // One producer up front, so a publisher that cannot reach Kafka fails here.
    try {
      this.idle.push(await this.openProducer());
    } catch (error) {
      const refusal = kafkaRefusal(error);
      throw brokersUnreachable(this.options.brokers, error, refusal && publishAuthorizationHint(refusal, [], this.options.createTopics !== false));
    }
    this.connected = true;
  }

  /**
   * Creates the missing ones of `copyTopics` as the consumer does (createCopyTopics over
   * `sources`, with this publisher's partition count and replication factor): a retry topic that
   * the publish of a re-drive created would get the broker's default `max.message.bytes`, and
   * refuse the copy of an event near its own topic's limit. Nothing with createTopics off. Asks
   * the admin once per topic and publisher; a topic deleted since is created by the publish.
   */
  async ensureCopyTopics(copyTopics: readonly string[], sources: readonly string[]): Promise<void> {
    if (this.options.createTopics === false) return;
    const unchecked = [...new Set(copyTopics)].filter((t) => !this.ensuredCopyTopics.has(t));
    if (unchecked.length === 0) return;
    try {
      await createCopyTopics(await this.admin(), unchecked, {
        sources,
        partitions: this.options.topicPartitions ?? 12,
        replicationFactor: this.options.topicReplicationFactor ?? -1,
      });
    } catch (error) {
      throw new PublishError('transient', `creating topics ${unchecked.join(', ')} failed: ${errorMessage(error)}`, { cause: error });
    }
    for (const t of unchecked) this.ensuredCopyTopics.add(t);
  }

  /** MessagePublisher.refusalsBeforeSend: the refusals `publish` makes before it sends (`refusal`), for the topics the catalog knows without asking Kafka. */
  refusalsBeforeSend(messages: readonly OutboundMessage[]): Array<PublishError | undefined> {
    const facts = this.catalog.knownFacts([...new Set(messages.map((m) => m.topic))]);
    return messages.map((m) => {
      const known = facts.get(m.topic);
      return known && refusal(m, known);
    });
  }

  /**
   * Safe to call while other calls are in flight (the relay's lanes share one publisher):
   * each call sends on a producer of its own. A transient failure marks the producer it
   * happened on, which reconnects before its next send.
   */
  async publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    if (messages.length === 0) return [];
    if (!this.connected) throw new PublishError('transient', 'publisher is not connected');
    const timeoutMs = this.options.publishTimeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
    const attempt = async (): Promise<PublishedPosition[]> => {
      // Messages Kafka would certainly refuse, or whose topic does not exist and may not be
      // created, are refused here, each on its own, and the others sent: one tenant's bad rows
      // cost the batch no round trip and do not hold up the rest (a topic missing from the
      // producer's metadata would fail the whole send after retrying until its deadline).
      const facts = await this.catalog.facts([...new Set(messages.map((m) => m.topic))]);
      const refusals = messages.map((m) => refusal(m, facts.get(m.topic)!));
      // Plain loops over indexes: this runs for every message the relay sends, where flatMap's
      // one-element arrays and entries()' pairs would be ~0.3 KB of garbage per message.
      const toSend: number[] = [];
      for (let i = 0; i < messages.length; i++) if (!refusals[i]) toSend.push(i);
      const positions: Array<PublishedPosition | undefined> = new Array(messages.length).fill(undefined);
      if (toSend.length > 0) {
        try {
          const sentPositions = await this.send(toSend.length === messages.length ? messages : toSend.map((i) => messages[i]!), deadline, timeoutMs);
          for (let j = 0; j < toSend.length; j++) positions[toSend[j]!] = sentPositions[j];
        } catch (error) {
          if (!(error instanceof SendFailedError)) throw error;
          for (let j = 0; j < toSend.length; j++) positions[toSend[j]!] = error.positions?.[j];
          if (await this.refuseForGoneTopics(messages, toSend, error, positions, refusals)) throw new RefusedMessagesError(positions, refusals);
          throw Object.assign(error, { positions, refusals });
        }
      }
      if (toSend.length < messages.length) throw new RefusedMessagesError(positions, refusals);
      return positions as PublishedPosition[];
    };
    try {
      // The deadline covers the whole call, not only sendBatch. When the network to the broker
      // is a black hole (no answer, no reset), replacing a failed producer first waits for its
      // requests in flight (kafkajs' disconnect waits up to requestTimeout) and a new topic waits
      // for the admin's CreateTopics: the fault matrix (scenario 9, a 35 s stall) saw publish
      // take 20 s against the 15 s default, the relay's kafka-black-hole test 9.7 s against 3 s.
      // The relay publishes inside its claim transaction, so this bound is how long a cut
      // network can keep its rows locked per attempt. Work cut short goes on in the background
      // on its own producer; a send that still lands is a duplicate with the same ce_id.
      return await withTimeout(attempt(), timeoutMs);
    } catch (error) {
      throw this.publishError(messages, error);
    }
  }

  /**
   * After a send that met "unknown topic" with createTopics off (a topic deleted since it was
   * checked; nothing may create it again): refuses the unsent messages of the topics now
   * missing, so the caller dead-letters those and keeps what the send stored, instead of
   * rolling the whole batch back and sending the stored messages a second time. True when it
   * refused any.
   */
  private async refuseForGoneTopics(
    messages: readonly OutboundMessage[],
    sentIndexes: number[],
    error: SendFailedError,
    positions: Array<PublishedPosition | undefined>,
    refusals: Array<PublishError | undefined>,
  ): Promise<boolean> {
    if (this.options.createTopics !== false || !hasErrorType(error.cause, UNKNOWN_TOPIC_TYPES)) return false;
    const topics = [...new Set(sentIndexes.map((i) => messages[i]!.topic))];
    await this.catalog.recheck(topics);
    const facts = await this.catalog.facts(topics);
    let refused = false;
    for (const i of sentIndexes) {
      const topic = messages[i]!.topic;
      if (positions[i] !== undefined || facts.get(topic)!.exists) continue;
      refusals[i] = missingTopicRefusal(topic);
      refused = true;
    }
    return refused;
  }

  /** The caller's error for a failed `publish`, and what the catalog learns from it. */
  private publishError(messages: readonly OutboundMessage[], error: unknown): PublishError {
    if (error instanceof RefusedMessagesError) {
      const refused = error.refusals.filter((r) => r !== undefined);
      return new PublishError('rejected', `${refused.length} of ${messages.length} message(s) refused: ${refused[0]!.message}`, {
        positions: error.positions,
        refusals: error.refusals,
      });
    }
    const failed = error instanceof SendFailedError ? error : undefined;
    const cause = failed ? failed.cause : error;
    const kind = classify(cause);
    const topics = new Set(messages.map((m) => m.topic));
    // A topic deleted since the catalog saw it: the next publish checks (and creates) it again.
    if (hasErrorType(cause, UNKNOWN_TOPIC_TYPES)) {
      this.catalog.forget(topics);
      for (const t of topics) this.knownTopics.delete(t);
    }
    // The topic's limit may have been lowered since it was read.
    if (hasErrorType(cause, TOO_LARGE_TYPES)) this.catalog.forgetLimits(topics);
    const reason = kind !== 'rejected' ? undefined : hasErrorType(cause, TOO_LARGE_TYPES) ? 'too-large' : undefined;
    // A refusal of the principal keeps its kind (TOPIC_AUTHORIZATION_FAILED is the messages'
    // topic's, so rejected; a producer id refused is the producer's, so transient, and the relay
    // backs off as from an outage): the message says which grant ends it, in every retry's log.
    const refusal = kafkaRefusal(cause);
    const hint = refusal
      ? `; ${publishAuthorizationHint(refusal, [...topics], this.options.createTopics !== false)}${kind === 'transient' ? ' (until then every publish fails like an outage)' : ''}`
      : '';
    return new PublishError(kind, `publish of ${messages.length} message(s) failed: ${describe(cause)}${hint}`, {
      cause,
      ...(reason ? { reason } : {}),
      ...(failed?.positions ? { positions: failed.positions } : {}),
      ...(kind === 'rejected' && failed?.refusals ? { refusals: failed.refusals } : {}),
    });
  }

  /** One sendBatch of `messages` on a pooled producer; its positions, or a SendFailedError with the partial ones. */
  private async send(messages: readonly OutboundMessage[], deadline: number, timeoutMs: number): Promise<PublishedPosition[]> {
    const sent = messages.map(
      (m): SentRecord => ({ key: m.key, value: m.value, headers: m.headers, choosePartition: m.choosePartition, chosenPartition: undefined }),
    );
    const byTopic = new Map<string, SentRecord[]>();
    messages.forEach((m, i) => {
      let list = byTopic.get(m.topic);
      if (!list) byTopic.set(m.topic, (list = []));
      list.push(sent[i]!);
    });
    const pooled = await this.borrow();
    try {
      // The caller gave up while we reconnected or created topics (the relay rolled its rows
      // back): a send started now would only add a late duplicate. A throw, never a return:
      // should this line run before the timeout's timer fires, a return would be taken for
      // Kafka's acknowledgement of messages never sent.
      if (Date.now() >= deadline) throw new Error(`not sent: the ${timeoutMs} ms publish deadline passed before the send`);
      // `deadline` (patch revision 4): kafkajs retries until then and no longer, so a send does
      // not land in the background after the caller rolled back and re-sent the same rows.
      // Retrying that long lets an idempotent re-send reach the new leader after a leader dies
      // (the broker session timeout, 9 s by default) and be dropped there when the dead leader
      // had appended it. It ends before the caller's timer, so a send that cannot finish fails
      // with its own error (a refusal stays a refusal, not a timeout).
      const sendDeadline = deadline - Math.min(1500, timeoutMs / 4);
      const batch = { acks: -1, topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list })), deadline: sendDeadline } as ProducerBatch;
      let answers: RecordMetadata[];
      for (const topic of byTopic.keys()) pooled.topics.add(topic);
      // A send that takes long may be retrying for a topic deleted since it was checked.
      const watchdog = setTimeout(() => void this.checkTopicsOfSlowSend([...byTopic.keys()]).catch(() => undefined), SLOW_SEND_TOPIC_CHECK_MS);
      try {
        answers = await pooled.producer.sendBatch(batch);
      } catch (error) {
        throw Object.assign(new SendFailedError(error), { positions: this.partialPositions(messages, sent, error) });
      } finally {
        clearTimeout(watchdog);
      }
      for (const topic of byTopic.keys()) this.knownTopics.add(topic); // they exist; probe() checks their leaders
      return this.positionsOf(messages, sent, answers);
    } catch (error) {
      if (classify(error) === 'transient') pooled.needsReconnect = true;
      // It may target a deleted topic (see PooledProducer.topics): a new producer targets none.
      if (hasErrorType(error, UNKNOWN_TOPIC_TYPES)) pooled.retired = true;
      throw error;
    } finally {
      // Back to the pool only once its send has settled, even when the caller stopped
      // waiting: its sequence numbers allow one send in flight. Not after a disconnect().
      if (pooled.retired) this.close(pooled);
      else if (this.all.has(pooled)) this.idle.push(pooled);
    }
  }

  /**
   * For a send not settled after SLOW_SEND_TOPIC_CHECK_MS: are all the topics the producers
   * target still there? kafkajs would otherwise retry until the deadline for a topic deleted
   * since it was checked, holding every other message of the batch, and every later send of
   * a producer that targets it. A gone topic of this batch is created again when allowed
   * (kafkajs' next retry finds it, with the partitions it had); any other gone topic retires
   * the producers that target it (their sends in flight fail by their deadline, once) and
   * is checked again on its next use: created, or refused with createTopics off.
   */
  private async checkTopicsOfSlowSend(batchTopics: readonly string[]): Promise<void> {
    const targeted = new Set([...this.all].flatMap((p) => [...p.topics]));
    const existing = new Set(await (await this.admin()).listTopics());
    const gone = [...targeted].filter((t) => !existing.has(t));
    if (gone.length === 0) return;
    const recreate = this.options.createTopics === false ? [] : gone.filter((t) => batchTopics.includes(t));
    if (recreate.length > 0) await this.catalog.recheck(recreate);
    const stillGone = new Set(gone.filter((t) => !recreate.includes(t)));
    this.catalog.forget(stillGone);
    for (const t of stillGone) this.knownTopics.delete(t);
    for (const pooled of [...this.all]) {
      if (![...pooled.topics].some((t) => stillGone.has(t))) continue;
      pooled.retired = true;
      const idleAt = this.idle.indexOf(pooled);
      if (idleAt >= 0) {
        this.idle.splice(idleAt, 1);
        this.close(pooled);
      }
    }
  }

  /** Takes a producer out of the pool for good and disconnects it in the background. */
  private close(pooled: PooledProducer): void {
    if (!this.all.delete(pooled)) return;
    void pooled.producer.disconnect().catch(() => undefined);
  }

  /** Positions of the messages whose partitions kafkajs acknowledged before the send failed (patch revision 5). */
  private partialPositions(messages: readonly OutboundMessage[], sent: SentRecord[], error: unknown): Array<PublishedPosition | undefined> | undefined {
    const answers = (error as { eventbusAcknowledged?: RecordMetadata[] } | undefined)?.eventbusAcknowledged;
    if (!answers || answers.length === 0) return undefined;
    return positionsWhereAcknowledged(this.sentPartitions(messages, sent), answers.map(partitionAnswer));
  }

  /**
   * The position of every message from the partition answers, checked independently of
   * kafkajs: a send that resolved without an acknowledged offset for some message is a
   * failed (transient) publish, so its rows stay in the outbox.
   */
  private positionsOf(messages: readonly OutboundMessage[], sent: SentRecord[], answers: RecordMetadata[]): PublishedPosition[] {
    const check = acknowledgedPositions(this.sentPartitions(messages, sent), answers.map(partitionAnswer));
    if (check.ok) return check.positions;
    throw new UnacknowledgedSendError(
      `Kafka's answer acknowledged no offset for ${check.unacknowledged} of ${messages.length} message(s) ` +
        `(e.g. ${check.example.topic} partition ${check.example.partition ?? 'unassigned'}); they are treated as not sent`,
    );
  }

  /** Each message's topic and the partition kafkajs' partitioner chose for it (undefined: never partitioned). */
  private sentPartitions(messages: readonly OutboundMessage[], sent: SentRecord[]): SentMessage[] {
    return messages.map((m, i) => ({ topic: m.topic, partition: sent[i]!.chosenPartition }));
  }

  /** An idle producer, reconnected first when its last send failed; a new one when none is idle. */
  private async borrow(): Promise<PooledProducer> {
    const pooled = this.idle.pop();
    if (!pooled) {
      if (this.all.size >= MAX_PRODUCERS) throw new Error(`${MAX_PRODUCERS} sends already in flight: Kafka is not answering them`);
      return this.openProducer();
    }
    if (pooled.needsReconnect) {
      try {
        await pooled.producer.disconnect().catch(() => undefined);
        await pooled.producer.connect();
        pooled.needsReconnect = false;
      } catch (error) {
        if (this.all.has(pooled)) this.idle.push(pooled);
        throw error;
      }
    }
    return pooled;
  }

  private async openProducer(): Promise<PooledProducer> {
    const idempotent = this.options.idempotent ?? true;
    const producer = this.kafka.producer({
      // The catalog creates topics (createTopics on) with `topicPartitions`; a broker's
      // auto.create.topics.enable would create a deleted topic again with its own default
      // count, under a send already split over the old partitions, which then retries until
      // its deadline. With createTopics off, no topic is created at all.
      allowAutoTopicCreation: false,
      maxInFlightRequests: 1,
      idempotent,
      // Retries end at each send's deadline (see publish), not after a count: a retry at most
      // every second until then. A kafkajs without the patch ignores the deadline and would
      // retry forever in the background: it gets a bounded count instead.
      retry: HONOURS_DEADLINE
        ? { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 1000 }
        : { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
      // kafkajs' Java-compatible murmur2 partitioner, or the message's own choosePartition,
      // recording the choice per message so the answer can be matched to every message (positionsOf).
      createPartitioner: () => {
        const choose = Partitioners.DefaultPartitioner();
        return (args) => {
          const record = args.message as SentRecord; // every message this producer sends is one (send)
          const partition = record.choosePartition ? record.choosePartition(args.partitionMetadata.length) : choose(args);
          record.chosenPartition = partition;
          return partition;
        };
      },
    });
    try {
      await producer.connect();
    } catch (error) {
      // connect() may have opened broker connections before initProducerId failed.
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
    const pooled: PooledProducer = { producer, needsReconnect: false, topics: new Set(), retired: false };
    this.all.add(pooled);
    return pooled;
  }

  /**
   * Whether Kafka answers this client again, on the producer's network path and settings: a
   * DescribeCluster, then a ListOffsets of each topic published so far (up to 20), which goes
   * to the leader of every partition: a route broken to one leader fails the probe, as it
   * would fail a publish. A short-lived admin client of its own, so a probe that times out
   * leaves nothing half-broken behind for publishes. Bounded by the publish timeout.
   */
  async probe(): Promise<void> {
    const timeoutMs = this.options.publishTimeoutMs ?? 15_000;
    const admin = this.kafka.admin();
    try {
      await withTimeout(
        (async () => {
          await admin.connect();
          await admin.describeCluster();
          for (const topic of [...this.knownTopics].slice(0, 20)) await admin.fetchTopicOffsets(topic);
        })(),
        timeoutMs,
      );
    } catch (error) {
      throw new PublishError('transient', `Kafka did not answer the probe: ${describe(error)}`, { cause: error });
    } finally {
      void admin.disconnect().catch(() => undefined);
    }
  }

  /**
   * The topics of `topics` that do not exist, by a ListTopics now (the catalog's answer may be
   * up to 5 s old, and a caller asks after a topic it holds back may have been created). With
   * topic creation on, none: a send creates them. Bounded by the publish timeout, like a send:
   * the relay asks inside a claim transaction.
   */
  async missingTopics(topics: readonly string[]): Promise<string[]> {
    if (this.options.createTopics !== false || topics.length === 0) return [];
    const unique = [...new Set(topics)];
    const ask = async () => {
      await this.catalog.recheck(unique);
      const facts = await this.catalog.facts(unique);
      return unique.filter((t) => !facts.get(t)!.exists);
    };
    try {
      return await withTimeout(ask(), this.options.publishTimeoutMs ?? 15_000);
    } catch (error) {
      throw new PublishError('transient', `Kafka did not say whether ${unique.join(', ')} exist: ${describe(error)}`, { cause: error });
    }
  }

  /** The record at `position`, read by a throwaway consumer of this publisher's Kafka client (readRecordAt). */
  async readRecordAt(position: RecordPosition, options: { timeoutMs?: number } = {}): Promise<StoredRecord> {
    let admin: Admin;
    try {
      admin = await this.admin();
    } catch (error) {
      throw brokersUnreachable(this.options.brokers, error);
    }
    return readRecordAt(this.kafka, admin, position, options.timeoutMs);
  }

  async disconnect(): Promise<void> {
    const producers = [...this.all];
    const admin = this.adminReady;
    this.connected = false;
    this.all.clear();
    this.idle.length = 0;
    this.adminReady = undefined;
    await Promise.all([
      ...producers.map((p) => p.producer.disconnect()),
      admin?.then(
        (a) => a.disconnect(),
        () => undefined,
      ),
    ]);
  }

  /** One admin client, created on first need; a failed connect is retried by the next call. */
  private admin(): Promise<Admin> {
    this.adminReady ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })().catch((error: unknown) => {
      this.adminReady = undefined;
      throw error;
    });
    return this.adminReady;
  }

  /** The catalog's admin calls, on the publisher's one admin client. */
  private async topicAdmin(): Promise<TopicAdmin> {
    const admin = await this.admin();
    return {
      listTopics: () => admin.listTopics(),
      // Idempotent: topics that exist are left as they are (two calls creating the same topic are fine).
      createTopics: (topics) =>
        createTopicsAndWait(
          admin,
          topics.map((topic) => ({
            topic,
            numPartitions: this.options.topicPartitions ?? 12,
            replicationFactor: this.options.topicReplicationFactor ?? -1,
          })),
        ),
      maxMessageBytes: (topics) => describeTopicLimits(admin, topics),
    };
  }
}

/**
 * Why `message` is refused without a send, if it is: its topic does not exist (and this
 * publisher may not create it), or a batch holding it alone is larger than the topic accepts.
 */
function refusal(message: OutboundMessage, facts: TopicFacts): PublishError | undefined {
  if (!facts.exists) return missingTopicRefusal(message.topic);
  if (facts.maxMessageBytes === undefined) return undefined;
  const bytes = loneRecordBatchBytes(message);
  if (bytes <= facts.maxMessageBytes) return undefined;
  return new PublishError(
    'rejected',
    `message too large for topic ${message.topic}: ${bytes} bytes as a record batch, the topic accepts ${facts.maxMessageBytes} (max.message.bytes); not sent, Kafka would refuse it (MESSAGE_TOO_LARGE)`,
    { reason: 'too-large' },
  );
}

function missingTopicRefusal(topic: string): PublishError {
  return new PublishError(
    'rejected',
    // Kafka lists only the topics the principal may describe: an existing one it may not is absent too.
    `topic ${topic} does not exist and this publisher may not create it (createTopics: false): create the topic or route the event type to one that exists; ` +
      `if it exists, this client's principal may not describe it: grant it Write and Describe on topic ${topic}`,
    { reason: 'missing-topic' },
  );
}

/** Some messages were refused (`refusals`); what was stored has its `positions`. */
class RefusedMessagesError extends Error {
  override readonly name = 'RefusedMessagesError';
  constructor(
    readonly positions: Array<PublishedPosition | undefined>,
    readonly refusals: Array<PublishError | undefined>,
  ) {
    super('messages refused');
  }
}

/** A failed kafkajs send, with the positions of the messages its acknowledged partitions hold. */
class SendFailedError extends Error {
  override readonly name = 'SendFailedError';
  positions: Array<PublishedPosition | undefined> | undefined;
  /** Set by publish when some messages of the call were refused before this send. */
  refusals: Array<PublishError | undefined> | undefined;
  constructor(cause: unknown) {
    super('send failed', { cause });
  }
}

/** A send kafkajs resolved although Kafka acknowledged no offset for some of its messages. */
class UnacknowledgedSendError extends Error {
  override readonly name = 'UnacknowledgedSendError';
}

/** A kafkajs partition answer in the shape the position checks read; no offset reads as -1. */
function partitionAnswer(a: RecordMetadata): PartitionAcknowledgement {
  return { topicName: a.topicName, partition: a.partition, errorCode: a.errorCode, baseOffset: a.baseOffset ?? '-1' };
}

function classify(error: unknown): 'transient' | 'rejected' {
  return hasErrorType(error, REJECTED_TYPES) ? 'rejected' : 'transient';
}

/** A send that met these found a topic missing from the broker (deleted since it was last used). */
const UNKNOWN_TOPIC_TYPES = new Set(['UNKNOWN_TOPIC_OR_PARTITION']);
const TOO_LARGE_TYPES = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/** Whether `error` or one of its causes (kafkajs' originalError, cause) has one of `types`. */
function hasErrorType(error: unknown, types: ReadonlySet<string>): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const type = (e as { type?: string }).type;
    if (type && types.has(type)) return true;
    if ((e as { name?: string }).name === 'KafkaJSMetadataNotLoaded' && types === UNKNOWN_TOPIC_TYPES) return true;
    e = (e as { originalError?: unknown; cause?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}

function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 3; depth++) {
    parts.push(errorMessage(e));
    // A KafkaJSAggregateError ("Topic creation errors") holds the answers in `errors`.
    const first = (e as { errors?: unknown }).errors;
    e = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause ?? (Array.isArray(first) ? first[0] : undefined);
  }
  return [...new Set(parts)].join(': ');
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not acknowledged within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
