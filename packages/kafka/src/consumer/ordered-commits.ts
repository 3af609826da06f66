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
 */
export class OrderedCommits {
  private chains = new Map<string, PartitionChain>();
  /** Epochs are unique across partitions and resets, so a batch's epoch never matches a newer chain by chance. */
  private lastEpoch = 0;

  constructor(
    /** Passes the offset to the committer (and whatever else counts it as done). */
    private readonly commit: (topic: string, partition: number, offset: string) => void,
    /** What `offset` waited for rejected: read the partition again from `offset`. */
    private readonly rewind: (topic: string, partition: number, offset: string, error: unknown) => void,
  ) {}

  /** The partition's current epoch: a batch takes it when it starts, and passes it to each resolve. */
  epoch(topic: string, partition: number): number {
    return this.chain(topic, partition).epoch;
  }

  /** Whether the partition was rewound (or the member rejoined) since `epoch` was taken. */
  isStale(topic: string, partition: number, epoch: number): boolean {
    return this.chain(topic, partition).epoch !== epoch;
  }

  /**
   * The message at `offset` is finished with. Its offset goes to the committer at once when
   * nothing of the partition is waiting; else after `after` (if given) and everything before it.
   * Returns false, and does nothing, when the batch is stale (its epoch is gone).
   */
  resolve(topic: string, partition: number, offset: string, epoch: number, after?: Promise<unknown>): boolean {
    const chain = this.chain(topic, partition);
    if (chain.epoch !== epoch) return false;
    if (after === undefined && chain.tail === undefined) {
      this.commit(topic, partition, offset);
      return true;
    }
    after?.catch(() => undefined); // awaited below, in turn; not an unhandled rejection meanwhile
    const previous = chain.tail ?? Promise.resolve();
    const link: Promise<void> = previous.then(async () => {
      if (chain.epoch !== epoch) return;
      try {
        await after;
      } catch (error) {
        if (chain.epoch !== epoch) return;
        chain.epoch = ++this.lastEpoch;
        this.rewind(topic, partition, offset, error);
        return;
      }
      if (chain.epoch === epoch) this.commit(topic, partition, offset);
    });
    chain.tail = link;
    chain.waiting++;
    void link.finally(() => {
      chain.waiting--;
      if (chain.tail === link) chain.tail = undefined;
    });
    return true;
  }

  /**
   * When the partition has at least `limit` offsets waiting, the promise of the last (it never
   * rejects): the caller pauses the partition until then. Copies that Kafka neither takes nor
   * refuses for a while (up to the publish timeout) would otherwise let a busy partition's
   * handled-but-uncommitted messages, and the redelivery a crash would cause, grow without bound.
   */
  backlog(topic: string, partition: number, limit: number): Promise<void> | undefined {
    const chain = this.chain(topic, partition);
    return chain.waiting >= limit ? chain.tail : undefined;
  }

  /** What is still waiting, one promise per partition (never rejects): stop() waits for them. */
  waiting(): Promise<void>[] {
    const tails: Promise<void>[] = [];
    for (const chain of this.chains.values()) if (chain.tail) tails.push(chain.tail);
    return tails;
  }

  /** A new group generation: what waits is dropped (the next owner reads from the committed offset), and older batches go stale. */
  reset(): void {
    for (const chain of this.chains.values()) chain.epoch = ++this.lastEpoch;
    this.chains = new Map();
  }

  private chain(topic: string, partition: number): PartitionChain {
    const key = `${topic}\u0000${partition}`;
    let chain = this.chains.get(key);
    if (!chain) this.chains.set(key, (chain = { epoch: ++this.lastEpoch, tail: undefined, waiting: 0 }));
    return chain;
  }
}

interface PartitionChain {
  epoch: number;
  /** The last offset waiting to go to the committer; undefined when none waits. */
  tail: Promise<void> | undefined;
  /** How many offsets wait. */
  waiting: number;
}
