/**
 * Kafka's answers that refuse this client's principal: an ACL that is missing (the
 * `*_AUTHORIZATION_FAILED` error codes) or credentials the broker does not accept (SASL). The
 * same request refused again until an operator grants the ACL or fixes the credentials: not a
 * broker outage, however many retries kafkajs wrapped around it.
 */
const REFUSALS = [
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'DELEGATION_TOKEN_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
] as const;
export type KafkaRefusal = (typeof REFUSALS)[number];
const REFUSAL_TYPES: ReadonlySet<string> = new Set(REFUSALS);

type KafkaJSErrorShape = { name?: unknown; type?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown };

/**
 * The refusal in `error` or its causes (kafkajs' `originalError`, `cause`: retries exhausted
 * wrap the last answer; `errors` of a KafkaJSAggregateError: CreateTopics answers per topic),
 * or undefined. kafkajs reports a SASL handshake the broker refused as a
 * KafkaJSSASLAuthenticationError without a `type`.
 */
export function kafkaRefusal(error: unknown, depth = 0): KafkaRefusal | undefined {
  for (let e = error as KafkaJSErrorShape | undefined; e && depth < 5; depth++) {
    if (typeof e.type === 'string' && REFUSAL_TYPES.has(e.type)) return e.type as KafkaRefusal;
    if (e.name === 'KafkaJSSASLAuthenticationError') return 'SASL_AUTHENTICATION_FAILED';
    if (Array.isArray(e.errors)) {
      for (const inner of e.errors) {
        const refusal = kafkaRefusal(inner, depth + 1);
        if (refusal) return refusal;
      }
    }
    e = (e.originalError ?? e.cause) as KafkaJSErrorShape | undefined;
  }
  return undefined;
}

/**
 * What a publish needs, for the message of a refused one: the refusal and the grants that end
 * it. `createsTopics`: the publisher creates missing topics (CreateTopics needs Create, and a
 * topic the principal may not describe looks missing to it).
 */
export function publishAuthorizationHint(refusal: KafkaRefusal, topics: readonly string[], createsTopics: boolean): string {
  const named = topics.length === 0 ? 'the topics it publishes to' : topics.length === 1 ? `topic ${topics[0]}` : `topics ${topics.join(', ')}`;
  switch (refusal) {
    case 'TOPIC_AUTHORIZATION_FAILED':
      return (
        `Kafka refused this client's principal (${refusal}): grant it Write and Describe on ${named}` +
        (createsTopics ? ', and Create there unless the topics exist beforehand and topic creation is off (createTopics: false)' : '')
      );
    case 'CLUSTER_AUTHORIZATION_FAILED':
      // An idempotent producer (the default) asks for a producer id first: Kafka 3.0 and later
      // allow it with Write on any topic, older brokers need IdempotentWrite on the cluster.
      return `Kafka refused this client's principal (${refusal}), as it does an idempotent producer's producer id without permission: grant it Write and Describe on ${named} (Kafka 3.0 and later) or IdempotentWrite on the cluster`;
    case 'SASL_AUTHENTICATION_FAILED':
      return `Kafka refused this client's credentials (${refusal}): check the SASL mechanism, username and password`;
    default:
      return `Kafka refused this client's principal (${refusal}): grant it Write and Describe on ${named}`;
  }
}
