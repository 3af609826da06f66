import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Consumer, type IHeaders } from 'kafkajs';
import { uuidv7 } from '@eventbus/core';
import { createTopics, uniqueName, waitFor } from '@eventbus/dev-services';
import { redriveDeadLetter } from '@eventbus/dead-letters';
import { DLQ_HEADER, dlqTopicFor, RETRY_HEADER, retryTopicFor } from '../src/index.js';
import { consumerFixture } from './consumer-fixture.js';
import { RetryPartitions } from '../src/retry-partitions.js';

let f: Awaited<ReturnType<typeof consumerFixture>>;
const collectors: Consumer[] = [];
beforeAll(async () => {
  f = await consumerFixture('consumer-dlq-bytes');
});
afterEach(async () => {
  await Promise.all(collectors.splice(0).map((c) => c.disconnect()));
  await f.reset();
});
afterAll(async () => f?.close());

/** A record as kafkajs delivers it: bytes, not strings. */
interface RawRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

/** Reads topics with plain kafkajs, keeping key, value and header values as Buffers. */
async function collectRaw(topics: string[]): Promise<RawRecord[]> {
  const records: RawRecord[] = [];
  const consumer = new Kafka({ brokers: f.brokers, clientId: 'raw-collector', logLevel: logLevel.NOTHING }).consumer({
    groupId: uniqueName('raw-'),
    maxWaitTimeInMs: 50,
  });
  collectors.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) =>
      void records.push({ topic, partition, offset: message.offset, ...message, headers: message.headers ?? {} }),
  });
  return records;
}

/** `00 ff fe 00 41`: NUL bytes and bytes that are not UTF-8 (issue 15, item 4). */
const KEY = Buffer.from([0x00, 0xff, 0xfe, 0x00, 0x41]);
/** Not UTF-8 either (a lead byte without its continuation), NUL included. */
const BROKEN = Buffer.from([0xc3, 0x28, 0x00, 0xe2, 0x82]);
// A JSON value the consumer decodes (the invalid bytes sit inside a string), so the handler runs and fails.
const VALUE = Buffer.concat([Buffer.from('{"note":"'), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from('"}')]);

function eventHeaders(id: string): Record<string, string | Buffer> {
  return {
    ce_specversion: '1.0',
    ce_id: id,
    ce_type: 'blob.stored',
    ce_source: '/tenants/bytes',
    ce_time: new Date().toISOString(),
    ce_tenantid: 'bytes',
    ce_eventkey: `key-${id}`,
    'content-type': 'application/json',
    'x-binary': KEY,
    'x-broken': BROKEN,
    'x-nul': Buffer.from('a\u0000b'),
  };
}

/** Every original header arrives with its bytes unchanged. */
function expectOriginalHeaders(headers: IHeaders, original: Record<string, string | Buffer>): void {
  for (const [name, value] of Object.entries(original)) {
    expect(Buffer.from(headers[name] as Buffer).equals(Buffer.from(value)), `header ${name}: ${(headers[name] as Buffer | undefined)?.toString('hex')}`).toBe(
      true,
    );
  }
}

describe('dead letters byte for byte (real Kafka, real Postgres)', () => {
  it('retry and DLQ copies, the mirrored row and a re-drive carry the original key, value and header bytes', async () => {
    const prefix = f.prefix();
    const groupId = f.group('bytes');
    const topic = `${prefix}blob`;
    // Equal partition counts: the same key bytes hash to the same partition number in each topic.
    // KEY hashes to partition 0 of 3; the UTF-8 round trip of it (00 ef bf bd ef bf bd 00 41) to 2.
    await createTopics(
      f.brokers,
      [topic, retryTopicFor(prefix, groupId), dlqTopicFor(prefix, groupId)].map((t) => ({ topic: t, numPartitions: 3 })),
    );
    const raw = await collectRaw([topic, retryTopicFor(prefix, groupId), dlqTopicFor(prefix, groupId)]);
    const attempts: number[] = [];
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig: { maxRetries: 1, initialDelayMs: 100 } }, [
      {
        eventTypes: ['blob.stored'],
        name: 'store',
        handler: async (_event, ctx) => {
          attempts.push(ctx.attempt);
          throw new TypeError('storage is full');
        },
      },
    ]);
    await f.mirror({ routing: { prefix }, groups: [groupId] });

    const id = uuidv7();
    const headers = eventHeaders(id);
    await f.publisher.publish([{ topic, key: KEY, value: VALUE, headers }]);
    await waitFor(() => raw.some((r) => r.topic === consumer.options.dlqTopic), { timeoutMs: 20_000, message: 'the DLQ record' });
    const original = raw.find((r) => r.topic === topic)!;
    const retry = raw.find((r) => r.topic === consumer.options.retryTopic)!;
    const dlq = raw.find((r) => r.topic === consumer.options.dlqTopic)!;
    expect(attempts).toEqual([1, 2]);
    expect(original.key!.equals(KEY)).toBe(true);
    for (const copy of [retry, dlq]) {
      expect(copy.key?.toString('hex'), `${copy.topic} key`).toBe(KEY.toString('hex'));
      expect(copy.value?.toString('hex'), `${copy.topic} value`).toBe(VALUE.toString('hex'));
      expectOriginalHeaders(copy.headers, headers);
    }
    // The DLQ copy goes by its key; the retry copy to its delay's partitions (RetryPartitions), picked by the key bytes.
    expect(dlq.partition).toBe(original.partition);
    expect(retry.partition).toBe(new RetryPartitions(consumer.options.retryConfig).chooser(100, KEY)(3));
    expect(retry.headers[RETRY_HEADER.attempt]?.toString()).toBe('2');
    expect(dlq.headers[DLQ_HEADER.errorClass]?.toString()).toBe('TypeError');
    expect(dlq.headers).not.toHaveProperty(RETRY_HEADER.attempt);

    // The mirror keeps the bytes (a NUL in the key and in headers once made its INSERT fail).
    const row = await waitFor(async () => (await f.pool.query('SELECT * FROM eventbus.dead_letters WHERE group_id = $1', [groupId])).rows[0], {
      timeoutMs: 15_000,
      message: 'the mirrored dead_letters row',
    });
    expect(row.message_key_bytes.toString('hex')).toBe(KEY.toString('hex'));
    expect(row.value_bytes.toString('hex')).toBe(VALUE.toString('hex'));
    const stored = Object.fromEntries((row.header_names as Buffer[]).map((name, i) => [name.toString('utf8'), row.header_values[i] as Buffer]));
    expectOriginalHeaders(stored, headers);
    expect(Object.keys(stored).sort()).toEqual(Object.keys(dlq.headers).sort());
    // The readable columns: U+FFFD where the bytes are not text.
    expect(row).toMatchObject({ event_id: id, tenant_id: 'bytes', message_key: '\uFFFD\uFFFD\uFFFD\uFFFDA', status: 'pending' });
    expect(row.headers['x-nul']).toBe('a\uFFFDb');

    // A re-drive sends the same bytes again, to the retry topic, on the same partition.
    expect(await redriveDeadLetter(f.pool, f.publisher, row.id)).toMatchObject({ outcome: 'redriven' });
    const redriven = await waitFor(() => raw.filter((r) => r.topic === consumer.options.retryTopic)[1], { timeoutMs: 15_000, message: 'the re-driven record' });
    expect(redriven.key?.toString('hex')).toBe(KEY.toString('hex'));
    expect(redriven.value?.toString('hex')).toBe(VALUE.toString('hex'));
    expectOriginalHeaders(redriven.headers, headers);
    expect(redriven.partition).toBe(original.partition);
    expect(redriven.headers[RETRY_HEADER.attempt]?.toString()).toBe('1');
    expect(redriven.headers).not.toHaveProperty(DLQ_HEADER.errorClass);
    await waitFor(() => attempts.length === 3, { timeoutMs: 15_000, message: 'the re-driven delivery' });
  });
});
