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
