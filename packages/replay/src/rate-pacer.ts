import { invalidConfig, sleep } from '@eventbus/core';

/**
 * Paces sends to `ratePerSecond` on average: before each chunk it waits until the time by
 * which the messages already sent were allowed. Chunks are about a tenth of a second's
 * worth, so the rate holds over short spans too, without a Kafka request per message.
 */
export class RatePacer {
  readonly chunkSize: number;
  private readonly startedAt: number;
  private sent = 0;

  constructor(
    private readonly ratePerSecond: number | undefined,
    maxChunk: number,
    private readonly now: () => number = Date.now,
  ) {
    if (ratePerSecond !== undefined && !(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) {
      throw invalidConfig('rate', 'a positive number of events per second', ratePerSecond);
    }
    this.chunkSize = ratePerSecond === undefined ? maxChunk : Math.max(1, Math.min(maxChunk, Math.floor(ratePerSecond / 10)));
    this.startedAt = now();
  }

  /** How long to wait before sending the next chunk, in ms. */
  delayMs(): number {
    if (this.ratePerSecond === undefined) return 0;
    return Math.max(0, this.startedAt + (this.sent / this.ratePerSecond) * 1000 - this.now());
  }

  /** Waits for the next chunk's turn (cut short by `signal`); then counts it as sent. */
  async take(count: number, signal?: AbortSignal): Promise<void> {
    await sleep(this.delayMs(), signal);
    this.sent += count;
  }
}
