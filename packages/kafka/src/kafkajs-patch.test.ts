import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

/**
 * patches/kafkajs@2.2.4.patch makes kafkajs' record encoding about twice as cheap (pooled
 * buffers, varints written in place, headers written into the record) and its key hash
 * 32-bit. Kafka must see the very same bytes: a hand-computed record, and round trips
 * through kafkajs' own decoder over the shapes the relay sends (null key or value, Buffer
 * and string headers, repeated header keys, multi-byte UTF-8, timestamp deltas beyond 32
 * bits). And a key must land in the partition Java clients choose for it. The batch CRC
 * (computed slicing-by-8) is also checked by the broker on every produce of the
 * integration tests: Kafka refuses a batch whose CRC is wrong (CORRUPT_MESSAGE).
 */
const require = createRequire(import.meta.url);
const kafkajsRoot = require.resolve('kafkajs').replace(/index\.js$/, '');
const Encoder = require(`${kafkajsRoot}src/protocol/encoder`);
const Decoder = require(`${kafkajsRoot}src/protocol/decoder`);
const encodeRecord = require(`${kafkajsRoot}src/protocol/recordBatch/record/v0`);
const decodeRecord = require(`${kafkajsRoot}src/protocol/recordBatch/record/v0/decoder`);
const murmur2 = require(`${kafkajsRoot}src/producer/partitioners/default/murmur2`);
const crc32C = require(`${kafkajsRoot}src/protocol/recordBatch/crc32C/crc32C`);
const groupMessagesPerPartition = require(`${kafkajsRoot}src/producer/groupMessagesPerPartition`);
const produceRequestV3 = require(`${kafkajsRoot}src/protocol/requests/produce/v3/request`);
const RequestQueue = require(`${kafkajsRoot}src/network/requestQueue`);
const Runner = require(`${kafkajsRoot}src/consumer/runner`);

type RecordInput = {
  offsetDelta: number;
  timestampDelta: number;
  key: string | null;
  value: string | Buffer | null;
  headers: Record<string, string | Buffer | string[]>;
};

function roundTrip(record: RecordInput) {
  const bytes: Buffer = encodeRecord(record).buffer;
  const decoder = new Decoder(bytes);
  const length = decoder.readVarInt();
  expect(length).toBe(bytes.length - decoder.offset);
  return decodeRecord(decoder, { firstOffset: '0', firstTimestamp: '0', magicByte: 2 });
}

describe('kafkajs record encoding (patched)', () => {
  it('writes the bytes the Kafka record format prescribes', () => {
    const bytes: Buffer = encodeRecord({ offsetDelta: 1, timestampDelta: 0, key: 'k', value: 'v', headers: { a: 'b' } }).buffer;
    // length 12 · attributes 0 · timestamp delta 0 · offset delta 1 · key "k" · value "v" · 1 header "a" = "b" (zigzag varints)
    expect(bytes.toString('hex')).toBe('18' + '00' + '00' + '02' + '026b' + '0276' + '02' + '0261' + '0262');
  });

  it('round-trips through kafkajs’ decoder for every shape the relay sends', () => {
    for (let i = 0; i < 300; i++) {
      const headers: RecordInput['headers'] = {};
      for (let h = 0; h < i % 12; h++) headers[`ce_h${h}${'é'.repeat(h)}`] = h % 3 === 0 ? Buffer.from('v'.repeat(i % 300)) : `${'x'.repeat((i * h) % 200)}ü`;
      if (i % 7 === 0) headers.multi = ['a', 'bb'];
      const record: RecordInput = {
        offsetDelta: i,
        timestampDelta: i % 50 === 49 ? 2 ** 33 + i : i * 1000,
        key: i % 5 === 0 ? null : `tenant-${i}`,
        value: i % 11 === 0 ? null : JSON.stringify({ text: 'y'.repeat(i * 7), n: i }),
        headers,
      };
      const decoded = roundTrip(record);
      expect(decoded.offset).toBe(String(record.offsetDelta));
      expect(decoded.timestamp).toBe(String(record.timestampDelta));
      expect(decoded.key?.toString() ?? null).toBe(record.key);
      expect(decoded.value?.toString() ?? null).toBe(record.value === null ? null : record.value.toString());
      const expected = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v : v.toString()]));
      const got = Object.fromEntries(
        Object.entries(decoded.headers as Record<string, Buffer | Buffer[]>).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : v.toString()]),
      );
      expect(got).toEqual(expected);
    }
  });

  it('writes the right length prefix when UTF-8 needs a longer varint than the string’s length suggests', () => {
    // The patched encoder guesses the prefix from the UTF-16 length and moves the bytes when
    // UTF-8 is longer: 40 × 'é' is 80 bytes (1 → 2 prefix bytes), 5,000 × 'é' is 10,000 (2 → 3).
    // A value larger than the shared scratch buffer (128 KiB) makes it grow mid-record.
    const cases: RecordInput[] = [
      { offsetDelta: 0, timestampDelta: 0, key: 'é'.repeat(40), value: 'é'.repeat(5000), headers: { ['ü'.repeat(40)]: 'é'.repeat(40) } },
      { offsetDelta: 1, timestampDelta: 5, key: '€'.repeat(30), value: 'x'.repeat(200_000) + '€'.repeat(10), headers: { a: Buffer.alloc(0), b: '' } },
      { offsetDelta: 2, timestampDelta: 5, key: '', value: '', headers: {} },
    ];
    for (const record of cases) {
      const decoded = roundTrip(record);
      expect(decoded.key?.toString()).toBe(record.key);
      expect(decoded.value?.toString()).toBe(record.value);
      const got = Object.fromEntries(Object.entries(decoded.headers as Record<string, Buffer>).map(([k, v]) => [k, v.toString()]));
      expect(got).toEqual(Object.fromEntries(Object.entries(record.headers).map(([k, v]) => [k, v.toString()])));
    }
  });

  it('encodes varlongs at the 32-bit edges as kafkajs’ Long path does', () => {
    for (const v of [0, 1, -1, 63, 64, -65, 2 ** 30, -(2 ** 30), 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 40]) {
      const bytes: Buffer = new Encoder().writeVarLong(v).buffer;
      expect(new Decoder(bytes).readVarLong().toString()).toBe(String(v));
      expect(Encoder.sizeOfVarLong(v)).toBe(bytes.length);
    }
  });

  it('hashes keys as Java’s Utils.murmur2 does (the partition of a tenant is the same from any client)', () => {
    // Kafka's own UtilsTest.testMurmur2 cases.
    const java: Record<string, number> = {
      '21': -973932308,
      foobar: -790332482,
      'a-little-bit-long-string': -985981536,
      'a-little-bit-longer-string': -1486304829,
      lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8: -58897971,
      abc: 479470107,
      // Lengths 1 and 0 mod 4, which those cases miss, as kafkajs 2.2.4 computed them before the patch.
      'tenant-10': 1826753538,
      'tenant-1': 374640331,
      '': 275646681,
    };
    for (const [key, hash] of Object.entries(java)) {
      expect(murmur2(key), key).toBe(hash);
      expect(murmur2(Buffer.from(key)), key).toBe(hash);
    }
  });

  it('computes CRC32-C as RFC 3720 and the byte-at-a-time original do, at every length', () => {
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283);
    // RFC 3720, B.4: 32 zero bytes, 32 bytes of 0xff, 32 ascending bytes.
    expect(crc32C(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(crc32C(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32C(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    let seed = 1;
    const byte = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 16) & 0xff;
    for (let length = 0; length < 600; length += 1 + (length >> 5)) {
      const buffer = Buffer.from(Array.from({ length }, byte));
      expect(crc32C(buffer), `length ${length}`).toBe(crc32C.bytewise(buffer));
    }
  });

  it('groups messages per partition in their order, without copying arrays per message', () => {
    const messages = Array.from({ length: 50 }, (_, i) => ({ key: `tenant-${i % 7}`, value: String(i) }));
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 0 }));
    const partitioner = ({ message }: { message: { key: string } }) => Number(message.key.slice(7)) % 3;
    const grouped = groupMessagesPerPartition({ topic: 't', partitionMetadata, messages, partitioner });
    expect(Object.keys(grouped)).toEqual(['0', '1', '2']);
    for (const partition of [0, 1, 2]) expect(grouped[partition]).toEqual(messages.filter((m) => partitioner({ message: m }) === partition));
    expect(groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages, partitioner })).toEqual({});
  });

  it('puts each message’s record, with its offset and timestamp deltas, into the produce request', async () => {
    const messages = [
      { key: 'tenant-1', value: 'a', headers: { ce_id: '1' }, timestamp: 1000, partition: 0 },
      { key: null, value: Buffer.from('b'), headers: { ce_id: '2', multi: ['x', 'y'] }, timestamp: 1500 },
      { key: 'tenant-2', value: null, timestamp: 1250 },
    ];
    const request = produceRequestV3({
      acks: -1,
      timeout: 30000,
      compression: 0,
      topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages }] }],
    });
    const bytes: Buffer = (await request.encode()).buffer;
    messages.forEach((message, i) => {
      const record: Buffer = encodeRecord({
        key: message.key,
        value: message.value,
        headers: message.headers,
        offsetDelta: i,
        timestampDelta: message.timestamp - 1000,
      }).buffer;
      expect(bytes.includes(record), `record ${i}`).toBe(true);
    });
  });

  it('arms no timer in a request queue with nothing pending (revision 7; plain kafkajs re-arms a 1 ms timer forever)', async () => {
    const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const queue = new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 30_000, enforceRequestTimeout: true, clientId: 't', broker: 'b', logger: silent });
    let checks = 0;
    const check = queue.checkPendingRequests.bind(queue);
    queue.checkPendingRequests = () => {
      checks++;
      check();
    };
    queue.checkPendingRequests(); // what the end of every request does
    expect(queue.throttleCheckTimeoutId).toBeFalsy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Plain kafkajs: a check each millisecond or so, forever.
    expect(checks).toBe(1);
    queue.destroy();
  });
});

describe('kafkajs consumer offset commits (patched, revision 8)', () => {
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, namespace: () => silent };
  /** A consumer group as the runner sees it: its commit goes through its current OffsetManager, which a join replaces. */
  type Group = { groupId: string; memberId: string | null; offsetManager: { commitOffsets(offsets: unknown): Promise<void> } | null };
  const runnerOf = (group: Group, running: boolean) => {
    const consumerGroup = { ...group, commitOffsets: (offsets: unknown) => consumerGroup.offsetManager!.commitOffsets(offsets) };
    const runner = new Runner({
      logger: silent,
      consumerGroup,
      instrumentationEmitter: { emit: () => undefined },
      concurrency: 1,
      onCrash: () => undefined,
      retry: { retries: 3, initialRetryTime: 5, maxRetryTime: 10 },
    });
    runner.running = running;
    return { runner, consumerGroup };
  };
  const offsets = { topics: [{ topic: 't', partitions: [{ partition: 0, offset: '5' }] }] };

  it("never retries a commit under the generation the member rejoined in (plain kafkajs' retry commits the old generation's offsets under the new one)", async () => {
    const sent: string[] = [];
    const rejoined = { commitOffsets: async () => void sent.push('new generation') };
    const { runner, consumerGroup } = runnerOf({ groupId: 'g', memberId: 'm', offsetManager: null }, true);
    consumerGroup.offsetManager = {
      commitOffsets: async () => {
        sent.push('old generation');
        consumerGroup.offsetManager = rejoined; // the member rejoined while the request was out
        throw Object.assign(new Error('Request timed out'), { retriable: true });
      },
    };
    await expect(runner.commitOffsets(offsets)).rejects.toThrow(/rejoined its group/);
    expect(sent).toEqual(['old generation']);
  });

  it('commits while the runner stops until the member left its group (a stop kafkajs makes itself committed nothing)', async () => {
    const sent: unknown[] = [];
    const offsetManager = { commitOffsets: async (o: unknown) => void sent.push(o) };
    await runnerOf({ groupId: 'g', memberId: 'm', offsetManager }, false).runner.commitOffsets(offsets);
    expect(sent).toEqual([offsets]);
    await runnerOf({ groupId: 'g', memberId: null, offsetManager }, false).runner.commitOffsets(offsets);
    expect(sent).toHaveLength(1); // left: nothing to commit with
  });
});
