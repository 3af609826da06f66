import { describe, expect, it } from 'vitest';
import { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, KafkaJSSASLAuthenticationError } from 'kafkajs';
import { isEventBusError } from '@eventbus/core';
import { brokersUnreachable, isConnectionFailure } from './connection-options.js';

// kafkajs' own error classes, as its clients throw them.
describe('isConnectionFailure', () => {
  it('is true when no broker could be talked to, however many retries wrapped it', () => {
    expect(isConnectionFailure(new KafkaJSConnectionError('Connection timeout'))).toBe(true);
    expect(
      isConnectionFailure(
        new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED'), { retryCount: 5, retryTime: 3000 }),
      ),
    ).toBe(true);
    expect(isConnectionFailure(new Error('Broker not connected'))).toBe(true);
    expect(isConnectionFailure(new KafkaJSSASLAuthenticationError('SASL PLAIN authentication failed'))).toBe(true);
  });

  it('is false for a broker that answered, even after retries (an unknown topic must stay retriable as such)', () => {
    const unknownTopic = new KafkaJSProtocolError({
      message: 'This server does not host this topic-partition',
      type: 'UNKNOWN_TOPIC_OR_PARTITION',
      code: 3,
      retriable: true,
    });
    expect(isConnectionFailure(unknownTopic)).toBe(false);
    expect(isConnectionFailure(new KafkaJSNumberOfRetriesExceeded(unknownTopic, { retryCount: 5, retryTime: 3000 }))).toBe(false);
    expect(isConnectionFailure(new Error('something else'))).toBe(false);
  });
});

describe('brokersUnreachable', () => {
  it('is a retriable BROKER_UNAVAILABLE naming the brokers, with the cause kept', () => {
    const cause = new KafkaJSConnectionError('Connection timeout');
    const error = brokersUnreachable(['k1:9092', 'k2:9092'], cause);
    expect(isEventBusError(error, 'BROKER_UNAVAILABLE')).toBe(true);
    expect(error.retriable).toBe(true);
    expect(error.message).toBe('cannot connect to Kafka at k1:9092,k2:9092: Connection timeout');
    expect(error.cause).toBe(cause);
  });
});
