import type pg from 'pg';
import { errorMessage, type Logger } from '@eventbus/core';
import { PublishError, type MessagePublisher } from '@eventbus/kafka';
import type { ClaimedRow, RetryRow } from '@eventbus/outbox';
import type { RelayMetrics } from './metrics.js';
import { OUTBOX_CHANNEL } from './notifier/outbox-notifier.js';
import { eventTypesParkedForMissingTopic, wakeHeldRows } from './sql/wake-held-rows.js';

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
  /** Wakes of its parked rows under way (LaneTopicHolds.endHolds): the hold is ending. */
  waking: number;
}

/**
 * Topics Kafka said do not exist, shared by the lanes of one relay instance. After a
 * missing-topic refusal the lanes stop offering that topic's rows to Kafka until the hold
 * runs out; the first row offered after that is the probe: refused again, a hold twice as
 * long starts (up to `maxMs`); published, the topic exists and its hold is gone (`published`).
 *
 * Why per topic and not per row: with a backoff per row, a tenant writing 100 rows/s to a
 * missing topic was refused ~9,000 times in 23 s of a bench phase, each a
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
      this.holds.set(topic, { until: now + periodMs, periodMs, since: now, eventTypes: new Set([eventType]), reported: false, waking: 0 });
      return { opened: true, until: now + periodMs, periodMs };
    }
    hold.eventTypes.add(eventType);
    this.reportIfOverdue(topic, hold, now);
    if (hold.until > now) return { opened: false, until: hold.until };
    hold.periodMs = Math.min(this.timing.maxMs, hold.periodMs * 2);
    hold.until = now + hold.periodMs;
    return { opened: true, until: hold.until, periodMs: hold.periodMs };
  }

  /**
   * Rows of `eventTypes`, routed to `topic`, wait in the outbox for it (found there, parked by
   * this instance before it lost its holds, or by another before this one took their shards):
   * `topic` is held from now on, its hold run out, so the next row of it asks Kafka whether it
   * exists before anything of it is sent (LaneTopicHolds.holdBack). A running hold keeps its
   * timing and gains the event types.
   */
  restore(topic: string, eventTypes: Iterable<string>): void {
    let hold = this.holds.get(topic);
    if (hold === undefined) {
      const now = this.now();
      hold = { until: now, periodMs: this.timing.initialMs, since: now, eventTypes: new Set(), reported: false, waking: 0 };
      this.holds.set(topic, hold);
    }
    for (const eventType of eventTypes) hold.eventTypes.add(eventType);
  }

  /** The topics held now, running or run out; undefined when none is (the common case: nothing to copy). */
  heldTopics(): ReadonlySet<string> | undefined {
    return this.holds.size === 0 ? undefined : new Set(this.holds.keys());
  }

  /** The event types whose rows were held back for `topic` (a copy), or undefined when it is not held. */
  eventTypesOf(topic: string): Set<string> | undefined {
    const hold = this.holds.get(topic);
    return hold === undefined ? undefined : new Set(hold.eventTypes);
  }

  /** A row of `topic` was held back (not offered): its event type is noted for `published`. */
  heldBack(topic: string, eventType: string): void {
    const hold = this.holds.get(topic);
    if (hold === undefined) return;
    hold.eventTypes.add(eventType);
    this.reportIfOverdue(topic, hold, this.now());
  }

  /**
   * Whether `topic` is held and its hold is not ending: no wake of its parked rows is under way
   * (`wakeStarted`) and none has ended it (`published`). A wake sees only the rows parked by
   * transactions that committed before it began.
   */
  standing(topic: string): boolean {
    const hold = this.holds.get(topic);
    return hold !== undefined && hold.waking === 0;
  }

  /** A wake of the rows parked for `topic` begins (LaneTopicHolds.endHolds); `wakeEnded` when it is over, done or failed. */
  wakeStarted(topic: string): void {
    const hold = this.holds.get(topic);
    if (hold !== undefined) hold.waking++;
  }

  wakeEnded(topic: string): void {
    const hold = this.holds.get(topic);
    if (hold !== undefined && hold.waking > 0) hold.waking--;
  }

  /**
   * `topic` exists and the rows that waited for it were woken (LaneTopicHolds.endHolds): ends its
   * hold and returns the event types whose rows were held back; undefined when the topic was not
   * held (the common case).
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
   * out once the topic appears: they are woken (LaneTopicHolds.endHolds).
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
 * outbox for later), `requeued` (the topic exists: back as a new row, to go out in id order
 * after the rows that waited for it) or `checking` (Kafka is being asked which of the two;
 * settled by the time holdBack's promise is).
 */
export interface HoldOutcome {
  row: ClaimedRow;
  message?: { topic: string };
  error?: Error;
  held?: 'waiting' | 'requeued' | 'checking';
}

/** What one lane's side of the holds uses: the instance's shared holds, its publisher, the event types' routes, counters and log. */
export interface LaneTopicHoldsContext {
  holds: TopicHolds;
  publisher: MessagePublisher;
  /** The topic an event type's rows go to now (the relay's router); may throw for an event type it cannot route. */
  topicFor: (eventType: string) => string;
  metrics: RelayMetrics;
  logger: Logger;
  laneId: string;
}

/**
 * One lane's side of the topic holds, in the order a batch meets them: when the lane takes
 * shards, the holds of the rows parked in them are restored (`restoreFromOutbox`); before the
 * send, the rows of held topics are marked and not offered (`holdBack`); in the claim
 * transaction, they and the rows Kafka refused as of a missing topic go back to the outbox
 * without spending their retries (`returnOfHeldRow`); after the commit, the rows that waited
 * for a topic found to exist are made due, and only then does its hold end (`endHolds`); rows a
 * batch parked while another lane's wake was under way, which could not see them, are made due
 * by their own lane (`parkedPastHold`).
 *
 * The order this keeps: a tenant's rows parked for a missing topic go out before its later rows
 * of that topic. The holds live in memory, but what they stand for lives in the outbox: a parked
 * row, recognizable by its `last_error` (PARKED_FOR_MISSING_TOPIC). So a hold is never given up
 * while parked rows may still need it: it ends only after the wake committed durably, stays when
 * the claim or the wake fails, and a lane that takes shards (at every connect too) holds again
 * the topics of the rows parked in them before it claims any of their rows.
 */
export class LaneTopicHolds {
  constructor(private readonly ctx: LaneTopicHoldsContext) {}

  /**
   * Holds the topics of the rows parked in `shards` for a missing topic (TopicHolds.restore):
   * called after the lane took the shards' locks and before it claims from them, so it sees
   * every row their previous owner parked (it committed before it unlocked). The query reads
   * only rows in backoff (`outbox_retry_due_idx`) and runs when shards change hands, never on
   * the claim path. A row whose event type has no route is skipped: it fails on its own.
   */
  async restoreFromOutbox(client: pg.ClientBase, shards: readonly number[]): Promise<void> {
    const { holds, topicFor, logger, laneId } = this.ctx;
    const byTopic = new Map<string, string[]>();
    for (const eventType of await eventTypesParkedForMissingTopic(client, shards)) {
      let topic: string;
      try {
        topic = topicFor(eventType);
      } catch {
        continue;
      }
      const types = byTopic.get(topic);
      if (types) types.push(eventType);
      else byTopic.set(topic, [eventType]);
    }
    for (const [topic, eventTypes] of byTopic) {
      if (!holds.has(topic))
        logger.info(
          { lane: laneId, topic, eventTypes },
          'rows parked for a missing topic wait in the shards taken; holding the topic until Kafka says it exists',
        );
      holds.restore(topic, eventTypes);
    }
  }

  /**
   * Marks the rows of topics Kafka said do not exist (TopicHolds), so they are not sent:
   * - while the topic's hold runs, they are held back: they go back to the outbox, due much
   *   later (parkDelayMs), in the statement that returns the batch's refused rows;
   * - once the hold has run out, Kafka is asked whether the topic exists now, once per hold
   *   and not per row (`missingTopics`, a ListTopics): still missing, a longer hold starts and
   *   the rows are held back; there, the rows go back as new rows (attempts 0, due now) to be
   *   claimed in id order after the rows that waited for the topic, which endHolds makes new
   *   rows too after the commit. Sending them now would put them ahead of their tenant's
   *   earlier rows still waiting. The topic is in the returned set: its hold ends in endHolds. A
   *   check that fails holds the rows back the same way, without a longer hold: the next row
   *   asks again;
   * - a topic held when the claim began (`heldAtClaim`) whose hold another lane has ended since:
   *   the claim's snapshot may predate that lane's wake, so these rows may be ahead of parked
   *   rows of their tenant still unseen; they go back as new rows too, behind those.
   * A publisher without `missingTopics` leaves the rows to be offered: Kafka's refusal or
   * acceptance answers instead.
   *
   * Every row that will not be offered is marked before this returns, so the caller sends the
   * others at once (and may return the rows of running holds meanwhile: `returnOfHeldRow`); the
   * rows of a checked topic are `checking` until the returned promise settles (never rejects),
   * once Kafka answered, with the topics found to exist. Kafka's answer decides only how a
   * checked topic's rows go back (held back or requeued), never whether they are sent: the other
   * tenants of the batch do not wait for it: the check is a metadata round trip of its own,
   * whose answer may be slow (a large cluster, a broker in trouble: up to the publish timeout)
   * at every hold's end.
   */
  holdBack(outcomes: HoldOutcome[], heldAtClaim?: ReadonlySet<string>): Promise<Set<string>> {
    const { holds, publisher } = this.ctx;
    const appeared = new Set<string>();
    const byTopic = new Map<string, HoldOutcome[]>();
    // Indexed: runs once per batch over every row, where a for-of allocates an iterator result
    // per row until V8 optimizes the loop.
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!;
      const topic = outcome.message?.topic;
      if (topic === undefined || !(holds.has(topic) || heldAtClaim?.has(topic))) continue;
      const group = byTopic.get(topic);
      if (group) group.push(outcome);
      else byTopic.set(topic, [outcome]);
    }
    const checks: Array<Promise<void>> = [];
    for (const [topic, group] of byTopic) {
      if (!holds.has(topic)) {
        markHeld(topic, group, 'requeued');
      } else if (holds.heldUntil(topic) !== undefined) {
        markHeld(topic, group, 'waiting');
      } else if (publisher.missingTopics) {
        markHeld(topic, group, 'checking');
        checks.push(
          this.topicExistsNow(topic).then((exists) => {
            if (exists === false) this.logHoldChange(topic, holds.refused(topic, group[0]!.row.eventType));
            if (exists === true) appeared.add(topic);
            markHeld(topic, group, exists === true ? 'requeued' : 'waiting');
          }),
        );
      } else continue;
      for (const outcome of group) holds.heldBack(topic, outcome.row.eventType);
    }
    return checks.length === 0 ? Promise.resolve(appeared) : Promise.all(checks).then(() => appeared);
  }

  /**
   * How a failed row held back by its topic's hold, or refused by Kafka as of a missing topic,
   * goes back to the outbox: without spending its retries, logged by its hold (once per hold,
   * not per claim), its `last_error` starting with PARKED_FOR_MISSING_TOPIC's text, which marks
   * it as parked. Undefined for a row that failed for its own sake (the lane retries it or moves
   * it to the DLQ table). `attempts` counts the claim that failed it. Counted by `countReturned`,
   * once its batch is to be committed: a batch whose send fails rolls the return back.
   */
  returnOfHeldRow(outcome: HoldOutcome, attempts: number): RetryRow | undefined {
    const { row, message, error, held } = outcome;
    if (!error) return undefined;
    if (held === 'requeued') return { row, attempts: 0, delayMs: 0, error: error.message };
    // `checking` only if asked before holdBack's promise settled: parked is then the safe answer
    // (a topic that exists wakes its parked rows).
    if (held === 'waiting' || held === 'checking') {
      return { row, attempts, delayMs: this.ctx.holds.parkDelayMs(row.firstFailedAt), error: error.message };
    }
    if (!message || !missingTopic(error)) return undefined;
    this.logHoldChange(message.topic, this.ctx.holds.refused(message.topic, row.eventType));
    const text = missingTopicText(message.topic);
    return {
      row,
      attempts,
      delayMs: this.ctx.holds.parkDelayMs(row.firstFailedAt),
      error: error.message.startsWith(text) ? error.message : `${text}: ${error.message}`,
    };
  }

  /** Counts a row `returnOfHeldRow` put back: held back by its topic's hold, or refused by Kafka as of a missing topic (a publish failure). */
  countReturned(outcome: HoldOutcome): void {
    const { metrics } = this.ctx;
    if (outcome.held === undefined) metrics.recordPublishFailure(outcome.row.eventType);
    else if (outcome.held !== 'requeued') metrics.heldBack++;
  }

  /**
   * Held topics whose rows were offered (the publisher cannot say whether a topic exists) and
   * published: the topic exists; returns them, for endHolds.
   */
  topicsPublished(outcomes: HoldOutcome[]): Set<string> {
    const published = new Set<string>();
    // A loop, not flatMap: no one-element array per row of every batch.
    for (let i = 0; i < outcomes.length; i++) {
      const { error, message } = outcomes[i]!;
      if (!error && message && this.ctx.holds.has(message.topic)) published.add(message.topic);
    }
    return published;
  }

  /**
   * `topics` exist: makes the rows that waited for them new rows again, due now, and wakes every
   * lane (wakeHeldRows, a synchronous commit), then ends their holds. After the claim's commit,
   * outside its transaction, so it holds no claimed rows while it waits for another lane's. Throws
   * when the wake fails, and the holds stay: the lane starts over from a new connection, and the
   * next row of such a topic asks Kafka and wakes again. A hold ended before a wake that did not
   * last would let the tenants' later rows overtake the rows still parked.
   */
  async endHolds(client: pg.ClientBase, topics: ReadonlySet<string>): Promise<void> {
    const { holds, logger, laneId } = this.ctx;
    const eventTypes = new Set<string>();
    const ending: string[] = [];
    for (const topic of topics) {
      const types = holds.eventTypesOf(topic);
      if (types === undefined) continue; // another lane ended it, after its own wake
      ending.push(topic);
      for (const eventType of types) eventTypes.add(eventType);
    }
    if (ending.length === 0) return;
    // Marked as ending before the wake's snapshot: a lane whose batch parks rows of these topics
    // and commits meanwhile wakes them itself (wakeParkedPastHold), this wake cannot see them.
    for (const topic of ending) holds.wakeStarted(topic);
    let woken: number;
    try {
      woken = await wakeHeldRows(client, [...eventTypes], OUTBOX_CHANNEL);
    } finally {
      for (const topic of ending) holds.wakeEnded(topic);
    }
    for (const topic of ending) holds.published(topic);
    logger.info(
      { lane: laneId, topics: ending, eventTypes: [...eventTypes], woken },
      'topic exists now; its hold ended and the rows that waited for it are due in order',
    );
  }

  /**
   * The event types of the rows this batch parked for a missing topic (held back, or refused as
   * of a missing topic) whose hold is no longer standing (TopicHolds.standing): another lane
   * found the topic exists and ends or ended its hold, after a wake that began before this
   * batch committed and so could not see these rows. Undefined when there are none (the common
   * case). Called as soon as the batch committed: a wake that begins after that sees its rows.
   */
  parkedPastHold(outcomes: HoldOutcome[]): Set<string> | undefined {
    const { holds } = this.ctx;
    let eventTypes: Set<string> | undefined;
    for (let i = 0; i < outcomes.length; i++) {
      const { row, message, error, held } = outcomes[i]!;
      if (!error || !message || held === 'requeued') continue;
      if (held === undefined && !missingTopic(error)) continue;
      if (!holds.standing(message.topic)) (eventTypes ??= new Set()).add(row.eventType);
    }
    return eventTypes;
  }

  /**
   * Wakes the rows of `eventTypes` parked past their hold (`parkedPastHold`), as endHolds would
   * have had they committed before its wake: otherwise they would wait out their due time while
   * their tenant's later rows, no longer held, go out. After the commit, outside its
   * transaction; throws when the wake fails: the lane starts over from a new connection and
   * holds their topics again (restoreFromOutbox) before it claims from their shards.
   */
  async wakeParkedPastHold(client: pg.ClientBase, eventTypes: ReadonlySet<string>): Promise<void> {
    const { logger, laneId } = this.ctx;
    const woken = await wakeHeldRows(client, [...eventTypes], OUTBOX_CHANNEL);
    logger.info(
      { lane: laneId, eventTypes: [...eventTypes], woken },
      "rows parked while their topic's hold ended (another lane found the topic) are due in order",
    );
  }

  /** Whether `topic` exists, asked of Kafka now (publisher.missingTopics); 'unknown' when Kafka did not answer. */
  private async topicExistsNow(topic: string): Promise<boolean | 'unknown'> {
    const { publisher, logger, laneId } = this.ctx;
    try {
      return !(await publisher.missingTopics!([topic])).includes(topic);
    } catch (error) {
      logger.warn({ lane: laneId, topic, err: errorMessage(error) }, 'could not ask Kafka whether a held topic exists; its rows keep waiting');
      return 'unknown';
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

/** Marks `group`, rows of `topic`, as not offered to Kafka and why (`held`, HoldOutcome). */
function markHeld(topic: string, group: HoldOutcome[], held: NonNullable<HoldOutcome['held']>): void {
  const error = new PublishError(
    'rejected',
    held === 'requeued'
      ? `topic ${topic} did not exist; it does now`
      : `${missingTopicText(topic)} (Kafka said so; the relay asks again when its hold ends): create the topic or route the event type to one that exists`,
    { reason: 'missing-topic' },
  );
  for (const outcome of group) {
    outcome.held = held;
    outcome.error = error;
  }
}

/** How the `last_error` of a row parked for `topic` begins (PARKED_FOR_MISSING_TOPIC matches it). */
function missingTopicText(topic: string): string {
  return `topic ${topic} does not exist`;
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
