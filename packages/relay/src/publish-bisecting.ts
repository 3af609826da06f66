import { PublishError, type MessagePublisher, type OutboundMessage, type PublishedPosition } from '@eventbus/kafka';

/** A message to send and, once this returns, the refusal that belongs to it alone (if any). */
export interface BisectItem {
  message: OutboundMessage;
  error?: Error;
}

/**
 * Sends `items`; when Kafka refuses the request, finds which messages it refuses by halving,
 * in order, and sets `error` on each of them (the others are sent). Messages a refused request
 * stored anyway (their partitions were acknowledged: `PublishError.positions`) are not sent
 * again, and messages the publisher refused without a send (`PublishError.refusals`: larger
 * than their topic accepts, a topic that does not exist) get their refusal without any
 * halving. For refusals only the broker can decide, one bad message among n
 * costs about 2·log2(n) sends, where one send per message could outlast the relay's claim
 * transaction (idle_in_transaction_session_timeout) on a large batch and loop forever without
 * ever reaching the DLQ. Halves go in array order, so the accepted messages of a key keep
 * their order. A transient failure (or any error that is not
 * a PublishError) is thrown: the caller rolls the whole batch back.
 */
export async function publishBisecting(publisher: MessagePublisher, items: BisectItem[]): Promise<void> {
  if (items.length === 0) return;
  try {
    const messages = items.map((item) => item.message);
    requireEveryPosition(messages, await publisher.publish(messages));
  } catch (error) {
    if (!(error instanceof PublishError) || error.kind === 'transient') throw error;
    // Partitions acknowledged in the refused request hold their messages already: only the
    // others are sent again (a partition is acknowledged or not as a whole, and all messages
    // of one key sit in one partition, so this keeps per-key order).
    // Messages the publisher refused on their own (too large, a topic that does not exist)
    // carry their refusal; only the rest of what was not stored is halved.
    error.refusals?.forEach((refusal, i) => {
      if (refusal) items[i]!.error = refusal;
    });
    const unsent = items.filter((_, i) => error.positions?.[i] === undefined && error.refusals?.[i] === undefined);
    if (unsent.length === 0) return;
    if (unsent.length === 1) {
      unsent[0]!.error = error;
      return;
    }
    const middle = Math.ceil(unsent.length / 2);
    await publishBisecting(publisher, unsent.slice(0, middle));
    await publishBisecting(publisher, unsent.slice(middle));
  }
}

/** An offset in its decimal form. One RegExp for every check: a literal in the callback is a new object per message. */
const OFFSET = /^\d+$/;

/**
 * The relay deletes a row only for a message Kafka gave a position (partition and offset):
 * a publisher that resolves with fewer positions than messages, or a position that is not
 * one, has not proven the send, so the batch counts as a transient failure and its rows
 * stay in the outbox. The publisher checks the client's answers already (acknowledged-
 * positions.ts); this holds the contract for any MessagePublisher.
 */
export function requireEveryPosition(messages: readonly OutboundMessage[], positions: readonly PublishedPosition[]): void {
  const proven = positions.length === messages.length && positions.every((p, i) => p.topic === messages[i]!.topic && p.partition >= 0 && OFFSET.test(p.offset));
  if (!proven) {
    throw new PublishError(
      'transient',
      `Kafka acknowledged no position for some of the ${messages.length} message(s) sent (${positions.length} position(s) returned); not deleting their rows`,
    );
  }
}
