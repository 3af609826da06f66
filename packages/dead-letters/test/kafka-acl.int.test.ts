import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, logLevel, ResourcePatternTypes, type Admin } from 'kafkajs';
import { isEventBusError } from '@eventbus/core';
import { KafkaPublisher, PublishError, READ_GROUP_PREFIX } from '@eventbus/kafka';
import { LIMITED_SASL_USER, PrivateBroker, uniqueName, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase } from '@eventbus/dev-services/test';
import { redriveDeadLetter } from '../src/index.js';

// Kafka refusing the client's principal, on a real broker that enforces ACLs (StandardAuthorizer,
// SASL PLAIN over TLS: scripts/kafka-local.sh with KAFKA_ACL=1). The super user creates topics and
// grants ACLs; LIMITED_SASL_USER reads and publishes with only what a test granted. A refusal is
// KAFKA_NOT_AUTHORIZED (not retriable) for a read, a PublishError that names the grant for a
// publish; granting what the message says makes the same call work.

// Its own broker (port, controller +1, broker-to-broker +2), apart from every shared one.
const broker = new PrivateBroker(19952, { saslSsl: true, acl: true });
let superAdmin: Admin;
let database: TestDatabase;
let pool: pg.Pool;
const publishers: KafkaPublisher[] = [];

beforeAll(async () => {
  await broker.start();
  superAdmin = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING, ...broker.clientSecurity() }).admin();
  await superAdmin.connect();
  database = await testDatabase('kafka-acl');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pool.on('error', () => undefined);
}, 180_000);
afterAll(async () => {
  await Promise.all(publishers.map((p) => p.disconnect()));
  await superAdmin?.disconnect();
  await pool?.end();
  await database?.drop();
  await broker.destroy();
});

/** A publisher of the limited user: its publishes and its reads (readRecordAt) run as that principal. */
async function limitedPublisher(options: { idempotent?: boolean; createTopics?: boolean } = {}): Promise<KafkaPublisher> {
  const publisher = new KafkaPublisher({ brokers: [broker.address], connection: broker.clientSecurity(LIMITED_SASL_USER), topicPartitions: 1, ...options });
  publishers.push(publisher);
  return publisher;
}

/** A topic with one record at offset 0, written by the super user. */
async function topicWithRecord(): Promise<string> {
  const topic = uniqueName('acl-');
  await superAdmin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const producer = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING, ...broker.clientSecurity() }).producer();
  await producer.connect();
  await producer.send({ topic, messages: [{ key: 'k', value: 'the original', headers: { ce_id: 'e-1' } }] });
  await producer.disconnect();
  return topic;
}

type Grant = { resource: 'topic' | 'group-prefix'; name: string; operations: Array<keyof typeof AclOperationTypes> };

/** ACLs for the limited user; waits until the broker applies them (they go through the metadata log). */
async function grant(grants: Grant[]): Promise<void> {
  const acl = grants.flatMap((g) =>
    g.operations.map((operation) => ({
      resourceType: g.resource === 'topic' ? AclResourceTypes.TOPIC : AclResourceTypes.GROUP,
      resourceName: g.name,
      resourcePatternType: g.resource === 'topic' ? ResourcePatternTypes.LITERAL : ResourcePatternTypes.PREFIXED,
      principal: `User:${LIMITED_SASL_USER.username}`,
      host: '*',
      operation: AclOperationTypes[operation],
      permissionType: AclPermissionTypes.ALLOW,
    })),
  );
  const before = await aclCount();
  await superAdmin.createAcls({ acl });
  await waitFor(async () => (await aclCount()) >= before + acl.length || undefined, { timeoutMs: 10_000, message: 'the ACLs applied' });
}

async function aclCount(): Promise<number> {
  const { resources } = await superAdmin.describeAcls({
    resourceType: AclResourceTypes.ANY,
    resourcePatternType: ResourcePatternTypes.ANY,
    principal: `User:${LIMITED_SASL_USER.username}`,
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY,
  });
  return resources.reduce((n, r) => n + r.acls.length, 0);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe('Kafka refusing the principal (a broker with ACLs)', () => {
  it('a read of a topic the principal may not describe is KAFKA_NOT_AUTHORIZED naming the ACLs, not a topic that is gone', { timeout: 60_000 }, async () => {
    const topic = await topicWithRecord();
    const publisher = await limitedPublisher({ idempotent: false });
    await publisher.connect();
    const error = await rejection(publisher.readRecordAt({ topic, partition: 0, offset: '0' }, { timeoutMs: 20_000 }));
    expect(isEventBusError(error, 'KAFKA_NOT_AUTHORIZED'), String(error)).toBe(true);
    expect((error as { retriable: boolean }).retriable).toBe(false);
    const message = (error as Error).message;
    expect(message).toContain(`Kafka refused this client's principal access to topic ${topic} (TOPIC_AUTHORIZATION_FAILED)`);
    expect(message).toContain(`A read needs Describe and Read on topic ${topic}, and Read on the consumer groups with the prefix ${READ_GROUP_PREFIX}`);
  });

  it('a read whose consumer group is refused is KAFKA_NOT_AUTHORIZED; the ACLs the message names make the read work', { timeout: 90_000 }, async () => {
    const topic = await topicWithRecord();
    const publisher = await limitedPublisher({ idempotent: false });
    await publisher.connect();
    await grant([{ resource: 'topic', name: topic, operations: ['DESCRIBE', 'READ'] }]);
    // No ACL at all on the groups: kafkajs drops FindCoordinator's answer, so the refusal cannot be
    // told from a coordinator outage; the retriable error says both and names the group ACL.
    const unknown = await rejection(publisher.readRecordAt({ topic, partition: 0, offset: '0' }, { timeoutMs: 20_000 }));
    expect(isEventBusError(unknown, 'BROKER_UNAVAILABLE'), String(unknown)).toBe(true);
    expect((unknown as Error).message).toContain('the group coordinator is unavailable, or Kafka refuses this client');
    expect((unknown as Error).message).toContain(`a read needs Read on the consumer groups with the prefix ${READ_GROUP_PREFIX}`);
    // Describe on the groups: FindCoordinator answers, and the join is refused by name.
    await grant([{ resource: 'group-prefix', name: READ_GROUP_PREFIX, operations: ['DESCRIBE'] }]);
    const refused = await rejection(publisher.readRecordAt({ topic, partition: 0, offset: '0' }, { timeoutMs: 20_000 }));
    expect(isEventBusError(refused, 'KAFKA_NOT_AUTHORIZED'), String(refused)).toBe(true);
    expect((refused as { retriable: boolean }).retriable).toBe(false);
    expect((refused as Error).message).toMatch(new RegExp(`the read's consumer group ${READ_GROUP_PREFIX}[0-9a-f-]+ \\(GROUP_AUTHORIZATION_FAILED\\)`));
    expect((refused as Error).message).toContain(`--operation Read --operation Delete --group ${READ_GROUP_PREFIX} --resource-pattern-type prefixed`);
    // What the message asks for: the read works, and deletes its group.
    await grant([{ resource: 'group-prefix', name: READ_GROUP_PREFIX, operations: ['READ', 'DELETE'] }]);
    const record = await publisher.readRecordAt({ topic, partition: 0, offset: '0' }, { timeoutMs: 20_000 });
    expect(record.value?.toString()).toBe('the original');
    expect((await superAdmin.listGroups()).groups.filter((g) => g.groupId.startsWith(READ_GROUP_PREFIX))).toEqual([]);
  });

  it('a re-drive that cannot read the original is refused with KAFKA_NOT_AUTHORIZED; the row stays pending', { timeout: 60_000 }, async () => {
    const topic = await topicWithRecord();
    const publisher = await limitedPublisher({ idempotent: false });
    await publisher.connect();
    const group = uniqueName('billing-');
    const { rows } = await pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, topic, partition, "offset",
         headers, error_class, error_message, attempts, first_failed_at, last_failed_at, header_names, header_values)
       VALUES ($1, 'consumer', $2, 'e-1', 'acme', 'order.placed', $3, 0, 0, $4::jsonb, 'NonRetriableError', 'cannot bill', 1, now(), now(), '{}', '{}')
       RETURNING id::text`,
      [`consumer:${group}:${topic}:0:0`, group, topic, JSON.stringify({ 'eventbus-dlq-truncated': '2000000' })],
    );
    const error = await rejection(redriveDeadLetter(pool, publisher, rows[0].id));
    expect(isEventBusError(error, 'KAFKA_NOT_AUTHORIZED'), String(error)).toBe(true);
    expect((error as Error).message).toContain(`A read needs Describe and Read on topic ${topic}`);
    expect((await pool.query('SELECT status FROM eventbus.dead_letters WHERE id = $1', [rows[0].id])).rows[0].status).toBe('pending');
  });

  it('a publish the principal may not make says which grant ends it; with that grant it goes through', { timeout: 90_000 }, async () => {
    const topic = await topicWithRecord();
    const message = { topic, key: 'k', value: 'v', headers: {} };
    // The idempotent producer (the default) asks for a producer id first, which Kafka refuses without Write anywhere.
    const idempotent = await limitedPublisher({ createTopics: false });
    const notConnected = await rejection(idempotent.connect());
    expect(isEventBusError(notConnected, 'BROKER_UNAVAILABLE'), String(notConnected)).toBe(true);
    expect((notConnected as Error).message).toContain(
      `Kafka refused this client's principal (CLUSTER_AUTHORIZATION_FAILED), as it does an idempotent producer's producer id without permission: grant it Write and Describe on the topics it publishes to (Kafka 3.0 and later) or IdempotentWrite on the cluster`,
    );
    // Without idempotence and topic creation, a topic the principal may not describe is not listed: refused as missing, the grant named too.
    const plain = await limitedPublisher({ idempotent: false, createTopics: false });
    await plain.connect();
    const hidden = await rejection(plain.publish([message]));
    expect(hidden).toBeInstanceOf(PublishError);
    expect((hidden as PublishError).kind).toBe('rejected');
    expect((hidden as Error).message).toContain(`if it exists, this client's principal may not describe it: grant it Write and Describe on topic ${topic}`);
    // Describe alone: the send itself is refused, rejected (the same bytes are refused again), naming the topic's grant.
    await grant([{ resource: 'topic', name: topic, operations: ['DESCRIBE'] }]);
    // A new publisher: the first one takes the topic for missing for 5 s (its catalog).
    const describing = await limitedPublisher({ idempotent: false, createTopics: false });
    await describing.connect();
    const refused = await rejection(describing.publish([message]));
    expect((refused as PublishError).kind).toBe('rejected');
    expect((refused as Error).message).toContain(
      `Kafka refused this client's principal (TOPIC_AUTHORIZATION_FAILED): grant it Write and Describe on topic ${topic}`,
    );
    // A publisher that creates its topics sees a topic it may not describe as missing, and CreateTopics is refused: transient, saying so.
    const other = await topicWithRecord();
    const creating = await limitedPublisher({ idempotent: false });
    await creating.connect();
    const notCreated = await rejection(creating.publish([{ ...message, topic: other }]));
    expect((notCreated as PublishError).kind).toBe('transient');
    expect((notCreated as Error).message).toContain(
      `grant it Write and Describe on topic ${other}, and Create there unless the topics exist beforehand and topic creation is off (createTopics: false) (until then every publish fails like an outage)`,
    );
    // The grant the messages name: the idempotent publisher connects and publishes.
    await grant([{ resource: 'topic', name: topic, operations: ['WRITE'] }]);
    const granted = await limitedPublisher({ createTopics: false });
    await granted.connect();
    expect(await granted.publish([message])).toEqual([{ topic, partition: 0, offset: '1' }]);
  });
});
