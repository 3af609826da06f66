/**
 * Per partition, the order in which finished messages' offsets reach the committer when some
 * of them wait for something first (a retry or DLQ copy's acknowledgement by Kafka).
 *
 * Why not pause the partition until the copies are acknowledged: a tenant failing every event
 * kept its partition paused nearly all the time, and every healthy tenant hashed to the same
 * partition waited for each copy's round trip and then for the next fetch round. Here the
 * partition is fetched and handled on; only the commit waits, in order: an offset goes to the
 * committer once what it waits for settled and every earlier offset of the partition went. Kafka's
 * committed offset is one number per partition, so committing a later offset first would pass
 * the failed message, and a crash then would lose it (no copy stored, never read again).
 *
 * When what an offset waits for rejects (Kafka did not take the copy), that offset and every
 * later one of the partition are never committed: the partition is rewound to it (`rewind`,
 * a seek), a new epoch begins, and the resolves of batches fetched before the rewind are
 * ignored (`resolve` returns false), so nothing handled before the rewind moves the committed
 * offset or the fetch position past the message that is read again.
 *
 * A batch takes its partition's `PartitionCommits` once (`partition()`): a resolve per message
 * then builds no key and does no lookup.
 */
export class OrderedCommits {
  private partitions = new Map<string, PartitionCommits>();
  /** Epochs are unique across partitions and resets, so a batch's epoch never matches a newer chain by chance. */
  private lastEpoch = 0;

  constructor(
    /** The committer's resolve for one partition (taken once per partition, called per offset). */
    private readonly committerFor: (topic: string, partition: number) => (offset: string) => void,
    /** What `offset` waited for rejected: read the partition again from `offset`. */
    private readonly rewind: (topic: string, partition: number, offset: string, error: unknown) => void,
  ) {}

  /** The partition's commit order; a batch takes it, and its `epoch`, when it starts. */
  partition(topic: string, partition: number): PartitionCommits {
    const key = `${topic}\u0000${partition}`;
    let commits = this.partitions.get(key);
    if (!commits) {
      const rewind = (offset: string, error: unknown) => this.rewind(topic, partition, offset, error);
      commits = new PartitionCommits(this.committerFor(topic, partition), rewind, () => ++this.lastEpoch);
      this.partitions.set(key, commits);
    }
    return commits;
  }

  /** What is still waiting, one promise per partition (never rejects): stop() waits for them. */
  waiting(): Promise<void>[] {
    const tails: Promise<void>[] = [];
    for (const commits of this.partitions.values()) if (commits.tail) tails.push(commits.tail);
    return tails;
  }

  /** A new group generation: what waits is dropped (the next owner reads from the committed offset), and older batches go stale. */
  reset(): void {
    for (const commits of this.partitions.values()) commits.newEpoch();
    this.partitions = new Map();
  }
}

/** One partition's commit order (see OrderedCommits). */
export class PartitionCommits {
  epoch: number;
  /** The last offset waiting to go to the committer; undefined when none waits. */
  tail: Promise<void> | undefined;
  /** How many offsets wait. */
  private waiting = 0;

  constructor(
    private readonly commit: (offset: string) => void,
    private readonly rewind: (offset: string, error: unknown) => void,
    private readonly nextEpoch: () => number,
  ) {
    this.epoch = nextEpoch();
  }

  /** Whether the partition was rewound (or the member rejoined) since `epoch` was taken. */
  isStale(epoch: number): boolean {
    return this.epoch !== epoch;
  }

  /**
   * The message at `offset` is finished with. Its offset goes to the committer at once when
   * nothing of the partition is waiting; else after `after` (if given) and everything before it.
   * Returns false, and does nothing, when the batch is stale (its epoch is gone).
   */
  resolve(offset: string, epoch: number, after?: Promise<unknown>): boolean {
    if (this.epoch !== epoch) return false;
    if (after === undefined && this.tail === undefined) {
      this.commit(offset);
      return true;
    }
    after?.catch(() => undefined); // awaited below, in turn; not an unhandled rejection meanwhile
    const previous = this.tail ?? Promise.resolve();
    const link: Promise<void> = previous.then(async () => {
      if (this.epoch !== epoch) return;
      try {
        await after;
      } catch (error) {
        if (this.epoch !== epoch) return;
        this.newEpoch();
        this.rewind(offset, error);
        return;
      }
      if (this.epoch === epoch) this.commit(offset);
    });
    this.tail = link;
    this.waiting++;
    void link.finally(() => {
      this.waiting--;
      if (this.tail === link) this.tail = undefined;
    });
    return true;
  }

  /**
   * When at least `limit` offsets wait, the promise of the last (it never rejects): the caller
   * pauses the partition until then. Copies that Kafka neither takes nor refuses for a while (up
   * to the publish timeout) would otherwise let a busy partition's handled-but-uncommitted
   * messages, and the redelivery a crash would cause, grow without bound.
   */
  backlog(limit: number): Promise<void> | undefined {
    return this.waiting >= limit ? this.tail : undefined;
  }

  /** Makes every batch that took the current epoch stale. */
  newEpoch(): void {
    this.epoch = this.nextEpoch();
  }
}
