/**
 * Pauses that nest, per partition: kafkajs' pause and resume are not counted, so a partition
 * paused twice (a retry not due yet, and a batch holding offsets for its copies) would be
 * fetched again by the first resume. Here it is fetched again when every pause was resumed.
 */
export class PartitionPauses {
  private readonly paused = new Map<string, { count: number; resume: () => void }>();

  /** Pauses through `kafkajsPause` (the batch's) unless already paused; returns a resume that counts once. */
  pause(topic: string, partition: number, kafkajsPause: () => () => void): () => void {
    const key = `${topic}\u0000${partition}`;
    let entry = this.paused.get(key);
    if (entry) entry.count++;
    else this.paused.set(key, (entry = { count: 1, resume: kafkajsPause() }));
    let resumed = false;
    return () => {
      if (resumed) return;
      resumed = true;
      if (--entry.count > 0) return;
      if (this.paused.get(key) === entry) this.paused.delete(key);
      entry.resume();
    };
  }
}
