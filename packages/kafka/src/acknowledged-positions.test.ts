import { describe, expect, it } from 'vitest';
import { acknowledgedPositions, positionsWhereAcknowledged } from './acknowledged-positions.js';

const ok = (topicName: string, partition: number, baseOffset: string) => ({ topicName, partition, errorCode: 0, baseOffset });

describe('acknowledgedPositions', () => {
  it('gives each message baseOffset + its index within its partition, in the order sent', () => {
    const sent = [
      { topic: 'orders', partition: 0 },
      { topic: 'orders', partition: 1 },
      { topic: 'orders', partition: 0 },
      { topic: 'billing', partition: 0 },
    ];
    const check = acknowledgedPositions(sent, [ok('orders', 0, '41'), ok('orders', 1, '7'), ok('billing', 0, '9007199254740993')]);
    expect(check).toEqual({
      ok: true,
      positions: [
        { topic: 'orders', partition: 0, offset: '41' },
        { topic: 'orders', partition: 1, offset: '7' },
        { topic: 'orders', partition: 0, offset: '42' },
        // 64-bit offsets stay exact (beyond Number.MAX_SAFE_INTEGER).
        { topic: 'billing', partition: 0, offset: '9007199254740993' },
      ],
    });
  });

  it('counts exactly across 2^53 within one partition (offsets are 64-bit)', () => {
    const sent = [0, 1, 2, 3].map(() => ({ topic: 'orders', partition: 0 }));
    const check = acknowledgedPositions(sent, [ok('orders', 0, '9007199254740990')]);
    expect(check.ok && check.positions.map((p) => p.offset)).toEqual(['9007199254740990', '9007199254740991', '9007199254740992', '9007199254740993']);
  });

  it('refuses a send whose answers leave a partition out (the shape kafkajs #1303 resolved with)', () => {
    // Partition 1 moved to the broker that had already answered for partition 0: the
    // client's answers hold only partition 0's entry.
    const sent = [
      { topic: 'orders', partition: 0 },
      { topic: 'orders', partition: 1 },
      { topic: 'orders', partition: 1 },
    ];
    expect(acknowledgedPositions(sent, [ok('orders', 0, '5')])).toEqual({ ok: false, unacknowledged: 2, example: { topic: 'orders', partition: 1 } });
  });

  it('refuses answers with an error code, answers without an offset, and messages never given a partition', () => {
    expect(acknowledgedPositions([{ topic: 't', partition: 0 }], [{ topicName: 't', partition: 0, errorCode: 6, baseOffset: '3' }]).ok).toBe(false);
    expect(acknowledgedPositions([{ topic: 't', partition: 0 }], [ok('t', 0, '-1')]).ok).toBe(false);
    expect(acknowledgedPositions([{ topic: 't', partition: undefined }], [ok('t', 0, '0')]).ok).toBe(false);
    // The same partition number of another topic is not an answer for this one.
    expect(acknowledgedPositions([{ topic: 't', partition: 0 }], [ok('u', 0, '0')]).ok).toBe(false);
  });
});

describe('positionsWhereAcknowledged', () => {
  it('gives positions to the messages of acknowledged partitions only (a send that failed for the others)', () => {
    const sent = [
      { topic: 'orders', partition: 0 },
      { topic: 'orders', partition: 1 },
      { topic: 'orders', partition: 0 },
    ];
    expect(positionsWhereAcknowledged(sent, [ok('orders', 0, '10'), { topicName: 'orders', partition: 1, errorCode: 10, baseOffset: '-1' }])).toEqual([
      { topic: 'orders', partition: 0, offset: '10' },
      undefined,
      { topic: 'orders', partition: 0, offset: '11' },
    ]);
  });
});
