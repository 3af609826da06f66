/**
 * Pauses that nest, per partition: kafkajs' pause and resume are not counted, so a partition
 * paused twice (a retry not due yet, and a batch holding offsets for its copies) would be
 * fetched again by the first resume. Here it is fetched again when every pause was resumed.
 */
export class PartitionPauses {
  private paused = new Map<string, { count: number; resume: () => void }>();

  /**
   * kafkajs restarted its consumer after a crash: the new one has no partition paused, so the
   * pauses taken so far end without a resume of theirs counting any more, and the next pause of
   * a partition pauses it in the new consumer. (Otherwise a partition paused before the
   * restart would stay counted as paused: a later pause would not reach kafkajs, and a retry
   * message not due yet would be fetched again and again until the old pause ended.)
   */
  forgetAll(): void {
    this.paused = new Map();
  }

  /** Pauses through `kafkajsPause` (the batch's) unless already paused; returns a resume that counts once. */
  pause(topic: string, partition: number, kafkajsPause: () => () => void): () => void {
    const key = `${topic}\u0000${partition}`;
    let entry = this.paused.get(key);
    if (entry) entry.count++;
    else this.paused.set(key, (entry = { count: 1, resume: kafkajsPause() }));
    let resumed = false;
    const paused = this.paused;
    return () => {
      if (resumed) return;
      resumed = true;
      if (--entry.count > 0) return;
      if (paused !== this.paused) return; // forgotten: its consumer is gone
      if (paused.get(key) === entry) paused.delete(key);
      entry.resume();
    };
  }
}
