import type { RawHeaders } from './message-format.js';

/**
 * A fetched record's headers with their values as Kafka delivered them (Buffers), for the
 * copies the consumer sends to its retry topic and DLQ: decoding them as UTF-8 and encoding
 * again would turn invalid sequences into U+FFFD (`00 ff fe 00 41` became
 * `00 ef bf bd ef bf bd 00 41`). A header that repeats keeps its last value, as the decoded
 * view does (`headersToStrings`): an outbound message holds one value per name.
 */
export function headerBytes(raw: RawHeaders | undefined): Record<string, string | Buffer> {
  const out: Record<string, string | Buffer> = {};
  for (const [name, value] of Object.entries(raw ?? {})) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined && last !== null) out[name] = last;
  }
  return out;
}

/**
 * The key a copy is sent with: the original bytes, so the copy hashes to the same partition
 * as the original. A record without a key gets an empty one (an outbound message always
 * has a key).
 */
export function keyBytes(key: Buffer | null): Buffer | string {
  return key ?? '';
}
