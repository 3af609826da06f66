import { createHash } from 'node:crypto';

const TOPIC_SAFE = /^[a-zA-Z0-9._-]+$/;
// Kafka's limit is 249; leave room for the prefix and the `retry.`/`dlq.` part.
const MAX_GROUP_PART = 180;

/**
 * The group id as it appears in topic names. A group id that is already a valid topic name
 * part is kept as is (readable topic names); otherwise the illegal characters become `_`
 * and a short hash of the real id is appended, so `a/b` and `a_b` never share a topic.
 */
export function topicSafeGroupId(groupId: string): string {
  if (TOPIC_SAFE.test(groupId) && groupId.length <= MAX_GROUP_PART) return groupId;
  const hash = createHash('sha256').update(groupId).digest('hex').slice(0, 10);
  return `${groupId.replace(/[^a-zA-Z0-9._-]/g, '_').slice(0, MAX_GROUP_PART - 11)}-${hash}`;
}

/** The group's retry topic: `{prefix}retry.{group}`. */
export function retryTopicFor(prefix: string, groupId: string): string {
  return `${prefix}retry.${topicSafeGroupId(groupId)}`;
}

/** The group's dead-letter topic: `{prefix}dlq.{group}`. */
export function dlqTopicFor(prefix: string, groupId: string): string {
  return `${prefix}dlq.${topicSafeGroupId(groupId)}`;
}

/** Matches every group's DLQ topic under `prefix` (for the mirror's regex subscription). */
export function dlqTopicPattern(prefix: string): RegExp {
  return new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}dlq\\.`);
}
