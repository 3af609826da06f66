import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { kafkaRefusal, publishAuthorizationHint } from './kafka-authorization.js';

// kafkajs' own error classes, and its errors as its clients build them from a broker's error
// code (protocol/error.js). Loaded as kafkajs exports them at run time: its type declarations
// leave out KafkaJSCreateTopicError and some constructors' arguments.
const load = createRequire(import.meta.url);
const { createErrorFromCode } = load('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error };
type ErrorClass = new (...args: any[]) => Error;
const {
  KafkaJSAggregateError,
  KafkaJSConnectionError,
  KafkaJSCreateTopicError,
  KafkaJSGroupCoordinatorNotFound,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSSASLAuthenticationError,
} = load('kafkajs') as Record<
  | 'KafkaJSAggregateError'
  | 'KafkaJSConnectionError'
  | 'KafkaJSCreateTopicError'
  | 'KafkaJSGroupCoordinatorNotFound'
  | 'KafkaJSNumberOfRetriesExceeded'
  | 'KafkaJSSASLAuthenticationError',
  ErrorClass
>;

describe('kafkaRefusal', () => {
  it.each([
    [29, 'TOPIC_AUTHORIZATION_FAILED'],
    [30, 'GROUP_AUTHORIZATION_FAILED'],
    [31, 'CLUSTER_AUTHORIZATION_FAILED'],
    [53, 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED'],
    [58, 'SASL_AUTHENTICATION_FAILED'],
    [65, 'DELEGATION_TOKEN_AUTHORIZATION_FAILED'],
  ])('names the refusal of error code %i (%s), also wrapped in exhausted retries', (code, type) => {
    const error = createErrorFromCode(code);
    expect(kafkaRefusal(error)).toBe(type);
    expect(kafkaRefusal(new KafkaJSNumberOfRetriesExceeded(error, { retryCount: 3, retryTime: 1000 }))).toBe(type);
  });

  it('names a SASL handshake refused, and a topic refused inside CreateTopics answers', () => {
    expect(kafkaRefusal(new KafkaJSSASLAuthenticationError('SASL PLAIN authentication failed: Authentication failed'))).toBe('SASL_AUTHENTICATION_FAILED');
    const created = new KafkaJSAggregateError('Topic creation errors', [new KafkaJSCreateTopicError(createErrorFromCode(29), 'orders')]);
    expect(kafkaRefusal(created)).toBe('TOPIC_AUTHORIZATION_FAILED');
  });

  it('is undefined for everything else: a missing topic, no connection, a coordinator not found (kafkajs drops its cause)', () => {
    expect(kafkaRefusal(createErrorFromCode(3))).toBeUndefined(); // UNKNOWN_TOPIC_OR_PARTITION
    expect(kafkaRefusal(createErrorFromCode(10))).toBeUndefined(); // MESSAGE_TOO_LARGE
    expect(kafkaRefusal(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED'))).toBeUndefined();
    expect(kafkaRefusal(new KafkaJSGroupCoordinatorNotFound('Failed to find group coordinator'))).toBeUndefined();
    expect(kafkaRefusal(new KafkaJSAggregateError('Topic creation errors', [new KafkaJSCreateTopicError(createErrorFromCode(36), 'orders')]))).toBeUndefined();
    expect(kafkaRefusal(undefined)).toBeUndefined();
  });
});

describe('publishAuthorizationHint', () => {
  it('names the grant that ends the refusal', () => {
    expect(publishAuthorizationHint('TOPIC_AUTHORIZATION_FAILED', ['orders'], false)).toBe(
      "Kafka refused this client's principal (TOPIC_AUTHORIZATION_FAILED): grant it Write and Describe on topic orders",
    );
    expect(publishAuthorizationHint('TOPIC_AUTHORIZATION_FAILED', ['a', 'b'], true)).toBe(
      "Kafka refused this client's principal (TOPIC_AUTHORIZATION_FAILED): grant it Write and Describe on topics a, b, and Create there unless the topics exist beforehand and topic creation is off (createTopics: false)",
    );
    expect(publishAuthorizationHint('CLUSTER_AUTHORIZATION_FAILED', [], false)).toContain(
      'grant it Write and Describe on the topics it publishes to (Kafka 3.0 and later) or IdempotentWrite on the cluster',
    );
    expect(publishAuthorizationHint('SASL_AUTHENTICATION_FAILED', ['orders'], true)).toBe(
      "Kafka refused this client's credentials (SASL_AUTHENTICATION_FAILED): check the SASL mechanism, username and password",
    );
  });
});
