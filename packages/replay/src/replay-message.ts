import { encodeEvent, HEADER, type StoredEvent, type TopicRouter } from '@eventbus/core';
import { encodeRetryHeaders, retryTopicFor } from '@eventbus/core';
import type { OutboundMessage } from '@eventbus/kafka';

/** Where republished events go. */
export type ReplayTarget =
  /** The topic the relay publishes each type to: every group subscribed to it sees the events again. */
  | { kind: 'event-topics'; router: TopicRouter }
  /** One named topic (a scratch topic, a connector's input). */
  | { kind: 'topic'; topic: string }
  /**
   * One consumer group's retry topic, so only that group rebuilds. The events arrive as
   * due-now retries with attempt 1 and no subscription named, so every matching
   * subscription of the group runs.
   */
  | { kind: 'group'; groupId: string; router: TopicRouter };

/** Headers that mark a message as replayed, on top of the relay's format. */
export const REPLAY_HEADER = { replayId: HEADER.replayId } as const;

/** The topic a target sends `eventType` to. */
export function targetTopic(target: ReplayTarget, eventType: string): string {
  switch (target.kind) {
    case 'event-topics':
      return target.router.topicFor(eventType);
    case 'topic':
      return target.topic;
    case 'group':
      return retryTopicFor(target.router.prefix, target.groupId);
  }
}

/**
 * The message for one replayed event: exactly what the relay sends (encodeEvent), plus
 * `ce_replayid`. For a group target it is wrapped as a retry message.
 */
export function replayMessage(event: StoredEvent, target: ReplayTarget, replayId: string, now = Date.now()): OutboundMessage {
  const message = encodeEvent(event, { [REPLAY_HEADER.replayId]: replayId });
  const topic = targetTopic(target, event.eventType);
  if (target.kind !== 'group') return { topic, ...message };
  return {
    topic,
    key: message.key,
    value: message.value,
    headers: encodeRetryHeaders(message.headers, {
      attempt: 1,
      dueAt: now,
      firstFailureAt: now,
      // A replayed event has no Kafka position of its own. The origin names the topic the
      // event lives on and, as its "offset", the event id read as a 128-bit number: the
      // consumer's DLQ dedupe key is built from the origin, so each replayed event that
      // fails gets its own dead-letter row (one per event and group, across replays).
      origin: { topic: target.router.topicFor(event.eventType), partition: 0, offset: uuidAsDecimal(event.id), timestamp: event.createdAt.getTime() },
    }),
  };
}

function uuidAsDecimal(id: string): string {
  return BigInt(`0x${id.replace(/-/g, '')}`).toString(10);
}
