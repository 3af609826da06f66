import type { Attributes } from '@opentelemetry/api';
import { HEADER } from './wire/message-format.js';

/**
 * Span attribute names: the OpenTelemetry messaging conventions (semconv 1.27+), the
 * CloudEvents conventions for the event's own attributes, and `eventbus.*` for the rest.
 * Span attributes may carry ids (one span per message); metric labels never do.
 */
export const SPAN_ATTR = {
  messagingSystem: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  partition: 'messaging.destination.partition.id',
  messageId: 'messaging.message.id',
  bodySize: 'messaging.message.body.size',
  batchMessageCount: 'messaging.batch.message_count',
  kafkaMessageKey: 'messaging.kafka.message.key',
  kafkaOffset: 'messaging.kafka.offset',
  consumerGroup: 'messaging.consumer.group.name',
  eventId: 'cloudevents.event_id',
  eventType: 'cloudevents.event_type',
  eventSource: 'cloudevents.event_source',
  tenantId: 'eventbus.tenant.id',
  /** Set (with the replay id) only on republished events, so a replay is never mistaken for new traffic. */
  replayed: 'eventbus.replayed',
  replayId: 'eventbus.replay.id',
  /** 1 on the first delivery, 2 on the first retry, ... */
  attempt: 'eventbus.attempt',
  subscription: 'eventbus.subscription',
  errorType: 'error.type',
} as const;

/** What a span needs to know about one Kafka message. */
export interface MessageFacts {
  topic: string;
  key: string | null;
  headers: Readonly<Record<string, string>>;
  /** Bytes of the value, when known. */
  bodySize?: number;
}

/** Attributes every span about one message carries, on the send and on the process side alike. */
export function messageSpanAttributes(message: MessageFacts): Attributes {
  const h = message.headers;
  const attributes: Attributes = {
    [SPAN_ATTR.messagingSystem]: 'kafka',
    [SPAN_ATTR.destination]: message.topic,
  };
  // The conventions say: no key attribute for a null key.
  if (message.key !== null && message.key !== '') attributes[SPAN_ATTR.kafkaMessageKey] = message.key;
  if (message.bodySize !== undefined) attributes[SPAN_ATTR.bodySize] = message.bodySize;
  if (h[HEADER.id]) {
    attributes[SPAN_ATTR.messageId] = h[HEADER.id];
    attributes[SPAN_ATTR.eventId] = h[HEADER.id];
  }
  if (h[HEADER.type]) attributes[SPAN_ATTR.eventType] = h[HEADER.type];
  if (h[HEADER.source]) attributes[SPAN_ATTR.eventSource] = h[HEADER.source];
  if (h[HEADER.tenantId]) attributes[SPAN_ATTR.tenantId] = h[HEADER.tenantId];
  if (h[HEADER.replayId]) {
    attributes[SPAN_ATTR.replayed] = true;
    attributes[SPAN_ATTR.replayId] = h[HEADER.replayId];
  }
  return attributes;
}

/** Bytes of a message value (a string counts in UTF-8). */
export function bodySizeOf(value: string | Buffer | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}
