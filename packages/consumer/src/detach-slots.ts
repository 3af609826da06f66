/**
 * Places for detached batches that run handlers (BatchProcessor.handleBatch): at most
 * `partitionsConsumedConcurrently` of them, so handlers run at most twice that many at once
 * (the fetch round's batches and these). A batch waiting for a retry to be due holds no place:
 * it runs no handler meanwhile, and one per retry partition may wait.
 */
export class DetachSlots {
  private taken = 0;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  /** Takes a place if one is free. */
  tryTake(): boolean {
    if (this.taken >= this.limit) return false;
    this.taken++;
    return true;
  }

  /** Takes a place, waiting for one to be given back; false when `signal` aborted first (no place taken). */
  take(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.tryTake()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const granted = () => {
        signal.removeEventListener('abort', aborted);
        resolve(true); // give() passed its place on: `taken` is unchanged
      };
      const aborted = () => {
        const i = this.queue.indexOf(granted);
        if (i >= 0) this.queue.splice(i, 1);
        resolve(false);
      };
      this.queue.push(granted);
      signal.addEventListener('abort', aborted, { once: true });
    });
  }

  /** Gives a place back, to the longest waiting taker if there is one. */
  give(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.taken--;
  }
}
