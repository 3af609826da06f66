import { PublishError, type MessagePublisher, type OutboundMessage, type PublishedPosition } from '@eventbus/kafka';

/** At most this many copies go in one publish. */
const MAX_COPIES_PER_PUBLISH = 500;
/**
 * At most about this many bytes (keys, values, headers) go in one publish. Kafka refuses a
 * partition's record batch above the topic's `max.message.bytes` (1 MiB by default), and the
 * copies of one tenant share a partition: half of that leaves room for the batch's framing.
 */
const MAX_BYTES_PER_PUBLISH = 512 * 1024;

interface QueuedCopy {
  message: OutboundMessage;
  bytes: number;
  resolve: (position: PublishedPosition) => void;
  reject: (error: unknown) => void;
}

/**
 * Sends the consumer's retry and DLQ copies, many per publish.
 *
 * A copy is sent at once when no publish is in flight; the copies asked for while one is in
 * flight wait for it and then go together in the next publish (group commit). So a lone failure
 * costs one round trip, as a copy sent on its own would, and a tenant failing at a thousand events a second costs a
 * few publishes per round trip instead of a thousand serial round trips, which would hold up
 * every other partition's batches behind its own (acks=-1 takes milliseconds per publish).
 *
 * `send` resolves once Kafka acknowledged that copy: the original message's offset is committed
 * only then, so a copy is never lost to a commit made before it was stored (see
 * BatchControl.resolveOffset's `after`).
 */
export class CopyPublisher {
  private readonly queue: QueuedCopy[] = [];
  private sending = false;

  constructor(private readonly publisher: MessagePublisher) {}

  /** Queues one copy; resolves with its position once Kafka acknowledged it, rejects with the publish's error. */
  send(message: OutboundMessage): Promise<PublishedPosition> {
    return new Promise<PublishedPosition>((resolve, reject) => {
      this.queue.push({ message, bytes: copyBytes(message), resolve, reject });
      if (!this.sending) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0) await this.publishBatch(this.takeBatch());
    } finally {
      this.sending = false;
    }
  }

  /** The oldest queued copies within the count and byte limits (at least one, however large). */
  private takeBatch(): QueuedCopy[] {
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < MAX_COPIES_PER_PUBLISH) {
      const next = this.queue[count]!.bytes;
      if (count > 0 && bytes + next > MAX_BYTES_PER_PUBLISH) break;
      bytes += next;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async publishBatch(batch: QueuedCopy[]): Promise<void> {
    try {
      const positions = await this.publisher.publish(batch.map((c) => c.message));
      for (const [i, copy] of batch.entries()) copy.resolve(positions[i]!);
    } catch (error) {
      // A refusal of the whole request (one copy too large, say) must not fail the copies that
      // Kafka would take: each is sent on its own, and only the refused ones fail.
      // Copies whose partition Kafka acknowledged in the refused request are stored already.
      if (batch.length > 1 && error instanceof PublishError && error.kind === 'rejected') {
        for (const [i, copy] of batch.entries()) {
          const stored = error.positions?.[i];
          if (stored) copy.resolve(stored);
          else await this.publishBatch([copy]);
        }
        return;
      }
      for (const copy of batch) copy.reject(error);
    }
  }
}

/** The bytes of a copy's key, value and headers: what a publish carries, and the size an operator compares with the topic's max.message.bytes. */
export function copyBytes(message: OutboundMessage): number {
  let bytes = byteLength(message.key) + byteLength(message.value);
  for (const name in message.headers) bytes += Buffer.byteLength(name) + byteLength(message.headers[name]!);
  return bytes;
}

function byteLength(value: string | Buffer): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}
