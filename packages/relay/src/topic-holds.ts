import type pg from 'pg';
import { errorMessage, type Logger } from '@eventbus/core';
import { PublishError, type MessagePublisher } from '@eventbus/kafka';
import type { ClaimedRow, RetryRow } from '@eventbus/outbox';
import type { RelayMetrics } from './metrics.js';
import { OUTBOX_CHANNEL } from './notifier/outbox-notifier.js';
import { wakeHeldRows } from './sql/wake-held-rows.js';

/**
 * How long a hold on a missing topic lasts: `initialMs`, doubled on each refusal after a hold ran
 * out, up to `maxMs`; and after how long held a topic is reported as a problem (`alertAfterMs`).
 */
export interface TopicHoldTiming {
  initialMs: number;
  maxMs: number;
  alertAfterMs: number;
}

/** Default hold timing: 1 s, 2 s, 4 s … 30 s; a problem after 5 minutes. */
export const DEFAULT_TOPIC_HOLD_TIMING: Readonly<TopicHoldTiming> = Object.freeze({ initialMs: 1000, maxMs: 30_000, alertAfterMs: 300_000 });

/** A topic held, as metrics and health show it. */
export interface HeldTopic {
  topic: string;
  /** When rows of the topic are offered to Kafka again (epoch ms). */
  until: number;
  /** Length of the current hold, ms. */
  periodMs: number;
  /** When Kafka first said the topic does not exist (epoch ms): the start of the first hold of this run. */
  since: number;
  /** Event types whose rows were held back, so their parked rows can be woken when the topic appears. */
  eventTypes: ReadonlySet<string>;
}

/** What a refusal changed: a hold that starts now (`opened`: logged) or none (the topic was held already). */
export type HoldChange = { opened: true; until: number; periodMs: number } | { opened: false; until: number };

interface Hold {
  until: number;
  periodMs: number;
  since: number;
  eventTypes: Set<string>;
  /** `onOverdue` was called for this hold (once per topic until it is published). */
  reported: boolean;
}

/**
 * Topics Kafka said do not exist, shared by the lanes of one relay instance. After a
 * missing-topic refusal the lanes stop offering that topic's rows to Kafka until the hold
 * runs out; the first row offered after that is the probe: refused again, a hold twice as
 * long starts (up to `maxMs`); published, the topic exists and its hold is gone (`published`).
 *
 * Why per topic and not per row: each row of a missing topic used to go back on a backoff of
 * its own, so a tenant writing 100 rows/s to one was refused ~9,000 times in 23 s, each a
 * delete and re-insert inside a claim transaction the lane's other tenants waited behind. One
 * answer from Kafka ("no such topic") is true of all of them at once.
 */
export class TopicHolds {
  private readonly holds = new Map<string, Hold>();

  constructor(
    private readonly timing: TopicHoldTiming = DEFAULT_TOPIC_HOLD_TIMING,
    private readonly now: () => number = Date.now,
    /**
     * Called once per topic when it has been held `alertAfterMs` (noticed at the next refusal,
     * held-back row or `list`, so within a hold period of it): its rows have waited that long
     * and will wait until someone creates the topic. Called again only after the topic was
     * published and went missing anew.
     */
    private readonly onOverdue: (held: HeldTopic) => void = () => undefined,
  ) {}

  /** Whether `topic` has a hold, running or run out: Kafka said it does not exist, and nothing of it was published since. */
  has(topic: string): boolean {
    return this.holds.has(topic);
  }

  /** The end of `topic`'s hold when it is held now, else undefined (never held, or the hold ran out: offer its rows). */
  heldUntil(topic: string): number | undefined {
    const hold = this.holds.get(topic);
    return hold !== undefined && hold.until > this.now() ? hold.until : undefined;
  }

  /**
   * Kafka refused a row of `topic` as missing. Starts a hold unless one is running (two lanes
   * can offer the same topic's rows in the same instant): the first hold lasts `initialMs`,
   * each next one twice the last, up to `maxMs`.
   */
  refused(topic: string, eventType: string): HoldChange {
    const now = this.now();
    const hold = this.holds.get(topic);
    if (hold === undefined) {
      const periodMs = this.timing.initialMs;
      this.holds.set(topic, { until: now + periodMs, periodMs, since: now, eventTypes: new Set([eventType]), reported: false });
      return { opened: true, until: now + periodMs, periodMs };
    }
    hold.eventTypes.add(eventType);
    this.reportIfOverdue(topic, hold, now);
    if (hold.until > now) return { opened: false, until: hold.until };
    hold.periodMs = Math.min(this.timing.maxMs, hold.periodMs * 2);
    hold.until = now + hold.periodMs;
    return { opened: true, until: hold.until, periodMs: hold.periodMs };
  }

  /** A row of `topic` was held back (not offered): its event type is noted for `published`. */
  heldBack(topic: string, eventType: string): void {
    const hold = this.holds.get(topic);
    if (hold === undefined) return;
    hold.eventTypes.add(eventType);
    this.reportIfOverdue(topic, hold, this.now());
  }

  /**
   * Kafka took a message of `topic`: it exists. Ends its hold and returns the event types whose
   * rows were held back, to wake them; undefined when the topic was not held (the common case).
   */
  published(topic: string): ReadonlySet<string> | undefined {
    const hold = this.holds.get(topic);
    if (hold === undefined) return undefined;
    this.holds.delete(topic);
    return hold.eventTypes;
  }

  /**
   * How long a held-back row stays out of the claims: the longest hold, or as long as the row
   * has waited already, up to ten longest holds. Each return is a delete and re-insert in a
   * claim transaction; a backlog waiting for a topic is thus touched less and less often
   * (a row is handled about log2(its wait) times), not every hold. The rows do not wait this
   * out once the topic appears: they are woken (LaneTopicHolds.wakeRowsThatWaited).
   */
  parkDelayMs(firstFailedAt: Date | null): number {
    const { maxMs } = this.timing;
    const waited = firstFailedAt === null ? 0 : this.now() - firstFailedAt.getTime();
    return Math.min(10 * maxMs, Math.max(maxMs, waited));
  }

  /** Every topic with a hold, running or run out but not yet probed, by name. */
  list(): HeldTopic[] {
    const now = this.now();
    for (const [topic, hold] of this.holds) this.reportIfOverdue(topic, hold, now);
    return [...this.holds].map(([topic, hold]) => heldTopic(topic, hold)).sort((a, b) => a.topic.localeCompare(b.topic));
  }

  /** The held topics held for `alertAfterMs` or longer: a problem for an operator (health, logs). */
  overdue(): HeldTopic[] {
    const now = this.now();
    return this.list().filter((held) => now - held.since >= this.timing.alertAfterMs);
  }

  private reportIfOverdue(topic: string, hold: Hold, now: number): void {
    if (hold.reported || now - hold.since < this.timing.alertAfterMs) return;
    hold.reported = true;
    this.onOverdue(heldTopic(topic, hold));
  }
}

function heldTopic(topic: string, hold: Hold): HeldTopic {
  return { topic, until: hold.until, periodMs: hold.periodMs, since: hold.since, eventTypes: hold.eventTypes };
}

/** `TopicHolds`' `onOverdue` that logs: one error line per topic held `alertAfterMs`, saying what an operator must do. */
export function logOverdueHold(logger: Logger, alertAfterMs: number): (held: HeldTopic) => void {
  return (held) =>
    logger.error(
      { topic: held.topic, heldForMs: Date.now() - held.since, eventTypes: [...held.eventTypes], alertAfterMs },
      `topic ${held.topic} has been missing for longer than missingTopicHold.alertAfterMs: its rows wait in the outbox until it exists (create it, or route its event types to a topic that exists)`,
    );
}

/**
 * A claimed row on its way through a lane, as the holds see it. `held`: not offered to Kafka
 * because of its topic's hold, `error` says why: `waiting` (the topic is missing: back to the
 * outbox for later) or `requeued` (the topic appeared: back as a new row, to go out in id order
 * with the rows that waited for it).
 */
export interface HoldOutcome {
  row: ClaimedRow;
  message?: { topic: string };
  error?: Error;
  held?: 'waiting' | 'requeued';
}

/** What one lane's side of the holds uses: the instance's shared holds, its publisher, counters and log. */
export interface LaneTopicHoldsContext {
  holds: TopicHolds;
  publisher: MessagePublisher;
  metrics: RelayMetrics;
  logger: Logger;
  laneId: string;
}

/**
 * One lane's side of the topic holds, in the order a batch meets them: before the send, the
 * rows of held topics are marked and not offered (`holdBack`); in the claim transaction, they
 * and the rows Kafka refused as of a missing topic go back to the outbox without spending
 * their retries (`returnOfHeldRow`); after the commit, a topic found to exist ends its hold and
 * the rows that waited for it are made due (`eventTypesOfHoldsEnded`, `wakeRowsThatWaited`).
 */
export class LaneTopicHolds {
  constructor(private readonly ctx: LaneTopicHoldsContext) {}

  /**
   * Marks the rows of topics Kafka said do not exist (TopicHolds), so they are not sent:
   * - while the topic's hold runs, they are held back: they go back to the outbox, due much
   *   later (parkDelayMs), in the statement that returns the batch's refused rows;
   * - once the hold has run out, Kafka is asked whether the topic exists now, once per hold
   *   and not per row (`missingTopics`, a ListTopics): still missing, a longer hold starts and
   *   the rows are held back; there, the hold ends, and the rows go back as new rows (attempts
   *   0, due now) to be claimed in id order with the rows that waited for the topic, which
   *   wakeRowsThatWaited makes new rows too after the commit. Sending them now would put them
   *   ahead of their tenant's earlier rows still waiting.
   * A publisher without `missingTopics`, or a check that fails, leaves the rows to be offered:
   * Kafka's refusal or acceptance answers instead. Returns the event types to wake.
   */
  async holdBack(outcomes: HoldOutcome[]): Promise<Set<string>> {
    const { holds } = this.ctx;
    const appeared = new Set<string>();
    const byTopic = new Map<string, HoldOutcome[]>();
    // Indexed: runs once per batch over every row, where a for-of allocates an iterator result
    // per row until V8 optimizes the loop.
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!;
      const topic = outcome.message?.topic;
      if (topic === undefined || !holds.has(topic)) continue;
      const group = byTopic.get(topic);
      if (group) group.push(outcome);
      else byTopic.set(topic, [outcome]);
    }
    for (const [topic, group] of byTopic) {
      let held: HoldOutcome['held'];
      if (holds.heldUntil(topic) !== undefined) held = 'waiting';
      else {
        const exists = await this.topicExistsNow(topic);
        if (exists === false) {
          this.logHoldChange(topic, holds.refused(topic, group[0]!.row.eventType));
          held = 'waiting';
        } else if (exists === true) {
          // Another lane may have asked in the same instant and ended the hold already: these
          // rows are requeued all the same, and their event types woken once more, harmlessly.
          const ended = holds.published(topic);
          for (const eventType of ended ?? []) appeared.add(eventType);
          if (ended) this.ctx.logger.info({ lane: this.ctx.laneId, topic }, 'topic exists now; its hold ended and its waiting rows are due in order');
          held = 'requeued';
        }
      }
      if (held === undefined) continue;
      for (const outcome of group) {
        holds.heldBack(topic, outcome.row.eventType);
        if (held === 'requeued') appeared.add(outcome.row.eventType);
        outcome.held = held;
        outcome.error = new PublishError(
          'rejected',
          held === 'waiting'
            ? `topic ${topic} does not exist (Kafka said so; the relay asks again when its hold ends): create the topic or route the event type to one that exists`
            : `topic ${topic} did not exist; it does now`,
          { reason: 'missing-topic' },
        );
      }
    }
    return appeared;
  }

  /**
   * How a failed row held back by its topic's hold, or refused by Kafka as of a missing topic,
   * goes back to the outbox: without spending its retries, logged by its hold (once per hold,
   * not per claim). Undefined for a row that failed for its own sake (the lane retries it or
   * moves it to the DLQ table). `attempts` counts the claim that failed it.
   */
  returnOfHeldRow(outcome: HoldOutcome, attempts: number): RetryRow | undefined {
    const { row, message, error, held } = outcome;
    if (!error) return undefined;
    if (held === 'requeued') return { row, attempts: 0, delayMs: 0, error: error.message };
    if (held === 'waiting') {
      this.ctx.metrics.heldBack++;
      return { row, attempts, delayMs: this.ctx.holds.parkDelayMs(row.firstFailedAt), error: error.message };
    }
    if (!message || !missingTopic(error)) return undefined;
    this.ctx.metrics.recordPublishFailure(row.eventType);
    this.logHoldChange(message.topic, this.ctx.holds.refused(message.topic, row.eventType));
    return { row, attempts, delayMs: this.ctx.holds.parkDelayMs(row.firstFailedAt), error: error.message };
  }

  /**
   * A held topic whose rows were offered (the publisher cannot say whether a topic exists) and
   * published: the topic exists, its hold ends; returns the event types whose rows waited.
   */
  eventTypesOfHoldsEnded(outcomes: HoldOutcome[]): Set<string> {
    // A loop, not flatMap: no one-element array per row of every batch.
    const published = new Set<string>();
    for (let i = 0; i < outcomes.length; i++) {
      const { error, message } = outcomes[i]!;
      if (!error && message) published.add(message.topic);
    }
    const eventTypes = new Set<string>();
    for (const topic of published) {
      const ended = this.ctx.holds.published(topic);
      if (ended === undefined) continue;
      this.ctx.logger.info({ lane: this.ctx.laneId, topic }, 'topic exists now; its hold ended and its waiting rows are due');
      for (const eventType of ended) eventTypes.add(eventType);
    }
    return eventTypes;
  }

  /**
   * Makes the rows of `eventTypes` that wait in the outbox new rows again, due now, and wakes
   * every lane (wakeHeldRows); returns whether it did. After the commit, outside the claim
   * transaction, so it holds no claimed rows while it waits for another lane's. A failure costs
   * time only: the rows come due by themselves (parkDelayMs).
   */
  async wakeRowsThatWaited(client: pg.Client, eventTypes: Set<string>): Promise<boolean> {
    const { logger, laneId } = this.ctx;
    try {
      const woken = await wakeHeldRows(client, [...eventTypes], OUTBOX_CHANNEL);
      logger.info({ lane: laneId, eventTypes: [...eventTypes], woken }, 'rows that waited for their topic are due now');
      return true;
    } catch (error) {
      logger.warn(
        { lane: laneId, eventTypes: [...eventTypes], err: errorMessage(error) },
        'waking the rows that waited for their topic failed; they come due by themselves',
      );
      return false;
    }
  }

  /** Whether `topic` exists, asked of Kafka now; undefined when the publisher cannot tell or Kafka did not answer. */
  private async topicExistsNow(topic: string): Promise<boolean | undefined> {
    const { publisher, logger, laneId } = this.ctx;
    if (!publisher.missingTopics) return undefined;
    try {
      return !(await publisher.missingTopics([topic])).includes(topic);
    } catch (error) {
      logger.warn({ lane: laneId, topic, err: errorMessage(error) }, 'could not ask Kafka whether a held topic exists; offering its rows');
      return undefined;
    }
  }

  private logHoldChange(topic: string, change: HoldChange): void {
    if (!change.opened) return;
    this.ctx.logger.warn(
      { lane: this.ctx.laneId, topic, holdMs: change.periodMs, until: new Date(change.until).toISOString() },
      'topic does not exist; its rows wait in the outbox and are not offered to Kafka until the hold ends',
    );
  }
}

/**
 * A row whose topic does not exist waits for it, however long, and never spends its retries:
 * the fix is a topic created (a deploy under way) or a route corrected, after which the row is
 * published without an operator re-driving a DLQ. The wait shows as a held topic in the
 * metrics and one log line per hold, and the rows as `eventbus.outbox.failing`.
 */
function missingTopic(error: Error): boolean {
  return error instanceof PublishError && error.reason === 'missing-topic';
}
