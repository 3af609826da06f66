import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Consumer, type IHeaders, type Producer } from 'kafkajs';
import { DlqMirror, dlqTopicFor, encodeDlqHeaders, RETRY_HEADER, retryTopicFor } from '@eventbus/consumer';
import { uniqueName, waitFor } from '@eventbus/dev-services';
import { cliFixture, createTopics, runCli } from './cli-fixture.js';

let f: Awaited<ReturnType<typeof cliFixture>>;
let producer: Producer;
let reader: Consumer | undefined;
beforeAll(async () => {
  f = await cliFixture('cli-dlq-bytes');
  producer = new Kafka({ brokers: f.brokers, clientId: 'cli-dlq-bytes', logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
});
afterAll(async () => {
  await reader?.disconnect();
  await producer?.disconnect();
  await f?.close();
});

/** `00 ff fe 00 41`: NUL bytes and bytes that are not UTF-8. */
const KEY = Buffer.from([0x00, 0xff, 0xfe, 0x00, 0x41]);
const VALUE = Buffer.from([0x7b, 0xff, 0x00, 0x7d]);

describe('eventbus dlq show|retry with bytes that are not text (the CLI as a process)', () => {
  it('shows key, value and headers escaped, --json as base64 or utf8, and a retry sends the same bytes', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const groupId = uniqueName('bytes-');
    const dlqTopic = dlqTopicFor(prefix, groupId);
    const retryTopic = retryTopicFor(prefix, groupId);
    await createTopics(f.brokers, [{ topic: dlqTopic }, { topic: retryTopic }]);
    const original: Record<string, string | Buffer> = {
      ce_id: 'evt-bytes-1',
      ce_type: 'blob.stored',
      ce_tenantid: 'bytes',
      'x-binary': KEY,
      'x-nul': Buffer.from('a\u0000b'),
    };
    const now = Date.now();
    const headers = encodeDlqHeaders(original, {
      origin: { topic: `${prefix}blob`, partition: 0, offset: '7', timestamp: now - 1000 },
      groupId,
      errorClass: 'TypeError',
      errorMessage: 'storage is full',
      attempts: 2,
      firstFailureAt: now - 500,
      lastFailureAt: now - 100,
      retryTopic,
    });
    await producer.send({ topic: dlqTopic, acks: -1, messages: [{ key: KEY, value: VALUE, headers }] });
    const mirror = f.track(
      new DlqMirror({ brokers: f.brokers, pool: f.pool, routing: { prefix }, groups: [groupId], groupId: uniqueName('mirror-'), topicPartitions: 3 }),
    );
    await mirror.start();
    const id = await waitFor(
      async () => (await f.pool.query('SELECT id::text FROM eventbus.dead_letters WHERE group_id = $1', [groupId])).rows[0]?.id as string | undefined,
      {
        timeoutMs: 20_000,
        message: 'the mirrored row',
      },
    );

    const show = await runCli(['dlq', 'show', id], env);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^key:\s+\\x00\\xff\\xfe\\x00A \(not UTF-8\)$/m);
    expect(show.stdout).toContain('\npayload:\n  {\\xff\\x00} (not UTF-8)\n');
    expect(show.stdout).toContain('  x-binary: \\x00\\xff\\xfe\\x00A (not UTF-8)');
    expect(show.stdout).toContain('  x-nul: a\\x00b');
    expect(show.stdout).toContain('  ce_tenantid: bytes');

    const json = (await runCli(['dlq', 'show', id, '--json'], env)).json();
    expect(json.bytes.key).toEqual({ base64: KEY.toString('base64') });
    expect(json.bytes.value).toEqual({ base64: VALUE.toString('base64') });
    expect(json.payload).toEqual({ base64: VALUE.toString('base64') });
    expect(json.bytes.headers).toEqual(
      expect.arrayContaining([
        { name: 'x-binary', value: { base64: KEY.toString('base64') } },
        { name: 'x-nul', value: { utf8: 'a\u0000b' } },
        { name: 'ce_tenantid', value: { utf8: 'bytes' } },
      ]),
    );
    expect(Buffer.from(json.bytes.key.base64, 'base64').equals(KEY)).toBe(true);

    // The re-drive carries the record's bytes to the group's retry topic, on the partition the key hashes to.
    const retried = await runCli(['dlq', 'retry', id], env);
    expect(retried.code, retried.stderr).toBe(0);
    const received: Array<{ partition: number; key: Buffer | null; value: Buffer | null; headers: IHeaders }> = [];
    const dlqPartition = (await f.pool.query('SELECT partition FROM eventbus.dlq_mirror_positions WHERE topic = $1', [dlqTopic])).rows[0].partition as number;
    reader = new Kafka({ brokers: f.brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: uniqueName('reader-'), maxWaitTimeInMs: 50 });
    await reader.connect();
    await reader.subscribe({ topics: [retryTopic], fromBeginning: true });
    await reader.run({
      eachMessage: async ({ partition, message }) => void received.push({ partition, key: message.key, value: message.value, headers: message.headers ?? {} }),
    });
    const [redriven] = await waitFor(() => (received.length > 0 ? received : undefined), { timeoutMs: 20_000, message: 'the re-driven record' });
    expect(redriven!.key?.toString('hex')).toBe(KEY.toString('hex'));
    expect(redriven!.value?.toString('hex')).toBe(VALUE.toString('hex'));
    for (const [name, value] of Object.entries(original)) {
      expect((redriven!.headers[name] as Buffer).toString('hex'), `header ${name}`).toBe(Buffer.from(value).toString('hex'));
    }
    expect(redriven!.headers[RETRY_HEADER.attempt]?.toString()).toBe('1');
    // Both topics have 3 partitions and the same key bytes: the same partition.
    expect(redriven!.partition).toBe(dlqPartition);
  }, 90_000);
});
