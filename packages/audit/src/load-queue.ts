/**
 * Overlaps reading Kafka with loading Postgres: `push` hands a batch to one loader that runs the
 * loads one after another, and returns at once while fewer than `depth` batches wait, so kafkajs
 * fetches and decodes the next batch while Postgres inserts this one (two processes on two
 * cores, where reading and loading in turn left one idle). When `depth` batches wait, `push`
 * waits until one is loaded: the reader's batch handler does not return, so kafkajs fetches
 * nothing more (back-pressure), and memory holds at most `depth` + 1 batches whatever the window.
 *
 * A failed load fails the next `push` and `flush`; batches still waiting are dropped (the audit
 * fails as a whole, nothing is compared).
 */
export class LoadQueue<T> {
  private readonly waiting: T[] = [];
  private running: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;
  private spaceWaiters: Array<() => void> = [];

  constructor(
    private readonly load: (batch: T) => Promise<void>,
    private readonly depth: number,
  ) {
    if (!Number.isSafeInteger(depth) || depth < 1) throw new RangeError(`LoadQueue depth must be an integer >= 1, got ${depth}`);
  }

  /** Queues `batch`; resolves once fewer than `depth` batches wait; rejects with the loader's error. */
  async push(batch: T): Promise<void> {
    this.throwIfFailed();
    this.waiting.push(batch);
    this.running ??= this.drain();
    while (this.waiting.length >= this.depth && this.failure === undefined) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    this.throwIfFailed();
  }

  /** Resolves once every queued batch is loaded; rejects with the loader's error. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    this.throwIfFailed();
  }

  /** Batches waiting, not counting one being loaded. */
  get size(): number {
    return this.waiting.length;
  }

  private async drain(): Promise<void> {
    try {
      for (let batch = this.waiting.shift(); batch !== undefined; batch = this.waiting.shift()) {
        this.wake();
        await this.load(batch);
      }
    } catch (error) {
      this.failure = { error };
      this.waiting.length = 0;
    } finally {
      this.running = undefined;
      this.wake();
    }
  }

  private wake(): void {
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
