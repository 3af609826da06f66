import type { OutboundMessage } from './publisher.js';

/**
 * Bytes of a record batch's fixed part (base offset, length, leader epoch, magic, CRC,
 * attributes, offset delta, timestamps, producer id and epoch, sequence, record count): the
 * 61 bytes Kafka counts in a batch's size (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
 */
const RECORD_BATCH_OVERHEAD = 61;

/**
 * The size Kafka gives an uncompressed record batch holding only `message` (record format v2,
 * as kafkajs writes it), which it compares with the topic's `max.message.bytes`. Any batch
 * that holds the message is at least this large, so a message above the limit by this count
 * is refused by the broker whatever else is sent with it: the publisher refuses it without a
 * round trip. Deltas (timestamp, offset) are counted at their smallest (one byte each), which
 * is exact for a lone record and only ever low otherwise.
 */
export function loneRecordBatchBytes(message: Pick<OutboundMessage, 'key' | 'value' | 'headers'>): number {
  let body = 1 + 1 + 1; // attributes, timestamp delta, offset delta
  body += lengthPrefixed(byteLength(message.key));
  body += lengthPrefixed(byteLength(message.value));
  // for-in, not Object.entries: this runs for every message the relay sends, and an array of
  // pairs per message is ~12% of all a relay drain allocates (V8's allocation sampling).
  let headerCount = 0;
  let headerBytes = 0;
  for (const key in message.headers) {
    headerCount++;
    headerBytes += lengthPrefixed(Buffer.byteLength(key)) + lengthPrefixed(byteLength(message.headers[key]!));
  }
  body += varintBytes(headerCount) + headerBytes;
  return RECORD_BATCH_OVERHEAD + varintBytes(body) + body;
}

function byteLength(value: string | Buffer): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

function lengthPrefixed(bytes: number): number {
  return varintBytes(bytes) + bytes;
}

/** Bytes of a zig-zag encoded varint (Kafka's record fields), for a value >= 0. */
export function varintBytes(value: number): number {
  let zigzag = value * 2;
  let bytes = 1;
  while (zigzag >= 0x80) {
    zigzag = Math.floor(zigzag / 0x80);
    bytes++;
  }
  return bytes;
}
