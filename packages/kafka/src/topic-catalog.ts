/** What the publisher knows of a topic before it sends to it. */
export interface TopicFacts {
  exists: boolean;
  /** The topic's `max.message.bytes` as the broker applies it; undefined when the broker would not say (ACLs). */
  maxMessageBytes: number | undefined;
}

/** The admin calls the catalog makes: the port kafkajs' admin client sits behind. */
export interface TopicAdmin {
  /** Every topic this client may see. */
  listTopics(): Promise<string[]>;
  /** Creates those that do not exist (idempotent) and returns once each has leaders. */
  createTopics(topics: string[]): Promise<void>;
  /** Each topic's effective `max.message.bytes`; throws when the broker refuses DescribeConfigs. */
  maxMessageBytes(topics: string[]): Promise<Map<string, number>>;
}

export interface TopicCatalogOptions {
  /** Create a missing topic (true) or report it missing (false). */
  createTopics: boolean;
  /** How long "missing" holds before the next check. Default 5000 ms. */
  missingForMs?: number;
  /**
   * How long a topic's size limit (or the broker's refusal to tell it) holds. Default 60000 ms:
   * a row refused as too large is dead-lettered at once, and an operator who raised the limit
   * re-drives it; one DescribeConfigs per topic a minute is what that costs.
   */
  limitForMs?: number;
  now?: () => number;
}

interface Entry {
  exists: boolean;
  checkedAt: number;
  maxMessageBytes?: number;
  limitCheckedAt?: number;
}

/**
 * Per publisher, which topics exist and how large a message each accepts, asked of the admin
 * the first time a topic is used and cached, so a batch pays no admin round trip:
 * - a topic that exists stays known until `forget` (a send that met "unknown topic");
 * - a missing one is asked again after `missingForMs`, so a topic created by an operator is
 *   used within seconds while a batch per millisecond still costs one ListTopics per period;
 * - a size limit holds for `limitForMs`, or until `forgetLimits` (the broker refused a message
 *   as too large: the limit may have been lowered).
 */
export class TopicCatalog {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(
    private readonly admin: () => Promise<TopicAdmin>,
    private readonly options: TopicCatalogOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async facts(topics: readonly string[]): Promise<Map<string, TopicFacts>> {
    const now = this.now();
    const unchecked = topics.filter((t) => this.existenceDue(t, now));
    if (unchecked.length > 0) await this.checkExistence(unchecked, now);
    const limitDue = topics.filter((t) => this.limitDue(t, now));
    if (limitDue.length > 0) await this.readLimits(limitDue, now);
    return this.factsOf(topics);
  }

  /** What `facts` would answer without asking the admin, for the topics it would not have to ask about (known, not due again). */
  knownFacts(topics: readonly string[]): Map<string, TopicFacts> {
    const now = this.now();
    return this.factsOf(topics.filter((t) => !this.existenceDue(t, now) && !this.limitDue(t, now)));
  }

  private factsOf(topics: readonly string[]): Map<string, TopicFacts> {
    return new Map(topics.map((t) => [t, { exists: this.entries.get(t)!.exists, maxMessageBytes: this.entries.get(t)!.maxMessageBytes }]));
  }

  private existenceDue(topic: string, now: number): boolean {
    const entry = this.entries.get(topic);
    return !entry || (!entry.exists && now - entry.checkedAt >= (this.options.missingForMs ?? 5000));
  }

  private limitDue(topic: string, now: number): boolean {
    const entry = this.entries.get(topic)!;
    return entry.exists && (entry.limitCheckedAt === undefined || now - entry.limitCheckedAt >= (this.options.limitForMs ?? 60_000));
  }

  /**
   * Checks these topics now, whatever the cache says, and creates the missing ones when
   * allowed: a send that takes long may be waiting for a topic deleted since it was checked.
   */
  async recheck(topics: readonly string[]): Promise<void> {
    await this.checkExistence([...topics], this.now());
  }

  /** The next use of these topics checks their existence again (a send met "unknown topic"). */
  forget(topics: Iterable<string>): void {
    for (const t of topics) this.entries.delete(t);
  }

  /** The next use of these topics reads their size limit again (the broker refused a message as too large). */
  forgetLimits(topics: Iterable<string>): void {
    for (const t of topics) {
      const entry = this.entries.get(t);
      if (entry) entry.limitCheckedAt = undefined;
    }
  }

  private async checkExistence(topics: string[], now: number): Promise<void> {
    const admin = await this.admin();
    if (this.options.createTopics) {
      await admin.createTopics(topics);
      for (const t of topics) this.entries.set(t, { ...this.entries.get(t), exists: true, checkedAt: now });
      return;
    }
    const existing = new Set(await admin.listTopics());
    for (const t of topics) this.entries.set(t, { ...this.entries.get(t), exists: existing.has(t), checkedAt: now });
  }

  private async readLimits(topics: string[], now: number): Promise<void> {
    let limits: Map<string, number> | undefined;
    try {
      limits = await (await this.admin()).maxMessageBytes(topics);
    } catch {
      // Not allowed to describe (a managed Kafka's ACLs) or not answered: no check before the
      // send for a while; the broker's refusal and the caller's bisection still find the message.
      limits = undefined;
    }
    for (const t of topics) {
      const entry = this.entries.get(t)!;
      entry.maxMessageBytes = limits?.get(t);
      entry.limitCheckedAt = now;
    }
  }
}
