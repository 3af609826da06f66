import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dlqTopicFor, encodeDlqHeaders, retryTopicFor, uuidv7, type Logger } from '@eventbus/core';
import { createTopics, waitFor } from '@eventbus/dev-services';
import { deadLettersFixture } from './dead-letters-fixture.js';

let f: Awaited<ReturnType<typeof deadLettersFixture>>;
beforeAll(async () => {
  f = await deadLettersFixture('dlq-mirror-unstorable');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

/** `00 ff fe 00 41`: NUL bytes and bytes that are not UTF-8 (issue 15, item 4). */
const KEY = Buffer.from([0x00, 0xff, 0xfe, 0x00, 0x41]);

describe('DLQ mirror: records Postgres refuses (real Kafka, real Postgres)', () => {
  it('skips a record Postgres refuses after bounded attempts into dead_letters_unstorable, and mirrors the records behind it', async () => {
    const prefix = f.prefix();
    const groupId = f.group('refused');
    const dlqTopic = dlqTopicFor(prefix, groupId);
    await createTopics(f.brokers, [{ topic: dlqTopic, numPartitions: 3 }]);
    // Genuinely unstorable in this database: dead_letters refuses the tenant, as a constraint an
    // operator added would (the mirror cannot store it however often it tries).
    await f.pool.query(`ALTER TABLE eventbus.dead_letters ADD CONSTRAINT test_refuses_tenant CHECK (tenant_id IS DISTINCT FROM 'refused-tenant')`);
    try {
      const record = (offset: string, tenant: string) => ({
        topic: dlqTopic,
        // One key: one partition, read in the order sent.
        key: Buffer.from([0x00, 0x01]),
        value: Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]),
        headers: encodeDlqHeaders(
          { ce_id: uuidv7(), ce_type: 'order.placed', ce_tenantid: tenant, 'x-binary': KEY },
          {
            origin: { topic: `${prefix}order`, partition: 1, offset, timestamp: Date.now() },
            groupId,
            errorClass: 'Error',
            errorMessage: 'boom',
            attempts: 1,
            firstFailureAt: Date.now(),
            lastFailureAt: Date.now(),
            retryTopic: retryTopicFor(prefix, groupId),
          },
        ),
      });
      await f.publisher.publish([record('1', 'refused-tenant'), record('2', 'ok-tenant'), record('3', 'ok-tenant')]);

      const logs: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
      const logger: Logger = {
        debug: () => {},
        info: () => {},
        warn: (fields, message) => void logs.push({ level: 'warn', fields, message }),
        error: (fields, message) => void logs.push({ level: 'error', fields, message }),
      };
      const mirror = await f.mirror({ routing: { prefix }, groups: [groupId], unstorableAttempts: 3, logger });
      await waitFor(() => mirror.mirrored === 2, { timeoutMs: 20_000, message: `the two records behind the refused one (logs: ${JSON.stringify(logs)})` });
      expect(mirror.unstorable).toBe(1);

      const skipped = (await f.pool.query('SELECT * FROM eventbus.dead_letters_unstorable WHERE topic = $1', [dlqTopic])).rows;
      expect(skipped).toHaveLength(1);
      const [unstorable] = skipped;
      expect(unstorable).toMatchObject({ attempts: 3, error_code: '23514' });
      expect(unstorable.error_message).toContain('test_refuses_tenant');
      expect(unstorable.message_key.toString('hex')).toBe('0001');
      expect(unstorable.value.toString('hex')).toBe('dead00beef');
      const names = (unstorable.header_names as Buffer[]).map((n) => n.toString('utf8'));
      expect(unstorable.header_values[names.indexOf('x-binary')].equals(KEY)).toBe(true);

      const rows = (await f.pool.query(`SELECT "offset", tenant_id FROM eventbus.dead_letters WHERE group_id = $1 ORDER BY "offset"`, [groupId])).rows;
      expect(rows).toEqual([
        { offset: '2', tenant_id: 'ok-tenant' },
        { offset: '3', tenant_id: 'ok-tenant' },
      ]);
      // The position moved past all three DLQ records (the refused one included).
      const position = (await f.pool.query('SELECT partition, next_offset::int AS next FROM eventbus.dlq_mirror_positions WHERE topic = $1', [dlqTopic])).rows;
      expect(position).toEqual([{ partition: unstorable.partition, next: Number(unstorable.offset) + 3 }]);

      // Two refused tries logged as warnings, the skip as an error with the record's position.
      const tries = logs.filter((l) => l.message.startsWith('DLQ record refused'));
      expect(tries.map((l) => l.fields.attempt)).toEqual([1, 2]);
      const skip = logs.filter((l) => l.level === 'error');
      expect(skip).toEqual([
        {
          level: 'error',
          message: expect.stringContaining('skipped into eventbus.dead_letters_unstorable'),
          fields: expect.objectContaining({ topic: dlqTopic, partition: unstorable.partition, offset: String(unstorable.offset), attempts: 3, code: '23514' }),
        },
      ]);
    } finally {
      await f.pool.query('ALTER TABLE eventbus.dead_letters DROP CONSTRAINT test_refuses_tenant');
    }
  });
});
