import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '@eventbus/core';
import { EventWriter } from '@eventbus/producer';
import { shardForTenant } from '@eventbus/schema';
import { discardDeadLetter, redriveDeadLetter } from '../src/index.js';
import { deadLettersFixture } from './dead-letters-fixture.js';

let f: Awaited<ReturnType<typeof deadLettersFixture>>;
beforeAll(async () => {
  f = await deadLettersFixture('dead-letter-admin');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

const deadLetter = async (where: string, value: string) => (await f.pool.query(`SELECT * FROM eventbus.dead_letters WHERE ${where} = $1`, [value])).rows;

// Re-drive and discard of rows already in the table. The consumer-stage round trip (a
// consumer dead-letters, the mirror copies, a re-drive reaches the group again) is in
// packages/consumer/test/dead-letters.int.test.ts: it needs an EventConsumer.
describe('dead letters: re-drive, discard (real Kafka, real Postgres)', () => {
  it('re-drives a relay dead letter into the outbox in its shard, once', async () => {
    const tenantId = `tenant-${uuidv7()}`;
    const eventId = await new EventWriter(f.db).writeEvent({ tenantId, eventKey: 'k-1', eventType: 'order.placed', payload: { n: 1 } });
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, event_id, tenant_id, event_type, error_class, error_message, attempts, first_failed_at, last_failed_at)
       VALUES ('relay:' || $1, 'relay', $1, $2, 'order.placed', 'PublishError', 'MESSAGE_TOO_LARGE', 6, now(), now()) RETURNING id`,
      [eventId, tenantId],
    );
    const id = rows[0].id as string;
    expect(await redriveDeadLetter(f.pool, f.publisher, id)).toMatchObject({ outcome: 'redriven', stage: 'relay' });
    expect(await redriveDeadLetter(f.pool, f.publisher, id)).toMatchObject({ outcome: 'already_redriven' });
    const outbox = await f.pool.query('SELECT shard, attempts FROM eventbus.outbox WHERE event_id = $1', [eventId]);
    expect(outbox.rows).toEqual([{ shard: shardForTenant(tenantId), attempts: 0 }]);
    expect((await deadLetter('id', id))[0]).toMatchObject({ status: 'redriven' });
  });

  it('discards a pending dead letter and then refuses to re-drive or discard it again', async () => {
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, topic, partition, "offset", error_class, error_message, attempts, first_failed_at, last_failed_at)
       VALUES ($1, 'consumer', 'g', 't', 0, '5', 'Error', 'x', 1, now(), now()) RETURNING id`,
      [`consumer:g:t:0:${uuidv7()}`],
    );
    const id = rows[0].id as string;
    expect(await discardDeadLetter(f.pool, id)).toMatchObject({ outcome: 'discarded' });
    expect(await discardDeadLetter(f.pool, id)).toMatchObject({ outcome: 'already_discarded' });
    expect(await redriveDeadLetter(f.pool, f.publisher, id)).toMatchObject({ outcome: 'already_discarded' });
    expect(await discardDeadLetter(f.pool, '999999999')).toMatchObject({ outcome: 'not_found' });
    expect((await deadLetter('id', id))[0]).toMatchObject({ status: 'discarded' });
  });
});
