import type { MessagePublisher, OutboundMessage, PublishedPosition } from '@eventbus/kafka';

/**
 * Serialises publishes: MessagePublisher calls must not overlap, but partitions are
 * handled concurrently and each may send a retry or DLQ message at any time.
 */
export class SerialPublisher {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly publisher: MessagePublisher) {}

  /** Publishes after every earlier call settled; rejects with that publish's error. */
  publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    const run = this.tail.then(() => this.publisher.publish(messages));
    this.tail = run.catch(() => undefined);
    return run;
  }
}
