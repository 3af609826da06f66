import type { BatchControl } from '@eventbus/kafka';

/**
 * The offsets of one batch, resolved in order and only once every retry or DLQ copy sent for
 * them (and for every earlier message) was acknowledged by Kafka.
 *
 * Why: a copy is sent without waiting for it (CopyPublisher batches them), and the batch goes on
 * to the next message. Resolving an offset lets the background commit pass it; were that done
 * before the copy was stored, a crash in between would lose the failed event: no copy on the
 * retry topic, and the original never read again. Kafka's committed offset is one number per
 * partition, so an offset waits for the copies of every message before it too.
 *
 * Messages that sent no copy, with nothing waiting before them, are resolved at once: the
 * healthy path stays as it was.
 */
export class AcknowledgedOffsets {
  private readonly pending: Array<{ offset: string; copy: Promise<unknown> | undefined }> = [];

  constructor(private readonly control: BatchControl) {}

  /** Whether some offsets wait for copies (settle() resolves them). */
  get waiting(): boolean {
    return this.pending.length > 0;
  }

  /** The message at `offset` is finished with; `copy`: its retry or DLQ copy's acknowledgement, if it sent one. */
  finished(offset: string, copy?: Promise<unknown>): void {
    if (copy === undefined && this.pending.length === 0) {
      this.control.resolveOffset(offset);
      return;
    }
    // Awaited by settle(); this keeps a rejection from counting as unhandled in the meantime.
    copy?.catch(() => undefined);
    this.pending.push({ offset, copy });
  }

  /**
   * Waits for the copies, resolving each offset once its copy and all before it are
   * acknowledged. A failed copy rejects: its offset and every later one stay unresolved, so
   * the next fetch (or the partition's next owner) delivers those messages again.
   */
  async settle(): Promise<void> {
    const pending = this.pending.splice(0);
    for (const { offset, copy } of pending) {
      if (copy !== undefined) await copy;
      this.control.resolveOffset(offset);
    }
  }
}
