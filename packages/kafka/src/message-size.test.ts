import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { loneRecordBatchBytes, varintBytes } from './message-size.js';

// kafkajs' own record batch encoder (the bytes it puts on the wire), to check the count against.
const require = createRequire(import.meta.url);
const kafkajsRoot = require.resolve('kafkajs').replace(/index\.js$/, '');
const { RecordBatch } = require(`${kafkajsRoot}src/protocol/recordBatch/v0/index.js`) as { RecordBatch: (args: object) => Promise<{ buffer: Buffer }> };
const Record = require(`${kafkajsRoot}src/protocol/recordBatch/record/v0/index.js`) as (args: object) => unknown;

async function encodedBatchBytes(message: { key: string | Buffer; value: string | Buffer; headers: Record<string, string | Buffer> }): Promise<number> {
  const records = [Record({ offsetDelta: 0, timestampDelta: 0, key: message.key, value: message.value, headers: message.headers })];
  return (await RecordBatch({ records })).buffer.length;
}

describe('loneRecordBatchBytes', () => {
  it('counts exactly the bytes kafkajs writes for a batch of one message', async () => {
    const cases = [
      { key: '', value: '', headers: {} },
      { key: 'tenant-1', value: '{"a":1}', headers: { ce_id: '0190a3b2-1111-7222-8333-944445555666', ce_type: 'order.placed' } },
      { key: Buffer.from('k'), value: Buffer.alloc(70_000, 1), headers: { h: Buffer.alloc(200, 2) } },
      { key: 'é'.repeat(100), value: 'ü'.repeat(5000), headers: { 'x-ünïcode': 'välue' } },
    ];
    for (const message of cases) expect(loneRecordBatchBytes(message)).toBe(await encodedBatchBytes(message));
  });

  it('sizes zig-zag varints', () => {
    expect([0, 63, 64, 8191, 8192, 2 ** 20].map(varintBytes)).toEqual([1, 1, 2, 2, 3, 4]);
  });
});
