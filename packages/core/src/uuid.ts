import { randomFillSync } from 'node:crypto';

/**
 * A UUID version 7 (RFC 9562): 48 bits of milliseconds, then random bits. Time-ordered ids
 * keep the EventLog's primary-key index appending at its right edge instead of writing
 * to random pages, which random v4 ids would do.
 *
 * Monotonic within a process (RFC 9562 §6.2, method 1, a counter in rand_b): an id made
 * in the same millisecond as the previous one is that id plus one, so a bulk write's
 * events sort by id in the order they were written. Replay reads the EventLog in
 * (created_at, id) order and all events of one transaction share created_at, so without
 * this a bulk write's events would replay in random order within each millisecond.
 */
const state = Buffer.alloc(16);
let lastMs = -1;

export function uuidv7(now = Date.now()): string {
  if (now !== lastMs || !incrementRandB(state)) {
    randomFillSync(state, 6, 10);
    // rand_b starts with its top bit clear: 2^61 ids of headroom to count up within one ms.
    state[8] = state[8]! & 0x1f;
    state.writeUIntBE(now, 0, 6);
    lastMs = now;
  }
  const hex = state.toString('hex');
  const version = (0x70 | (state[6]! & 0x0f)).toString(16);
  const variant = (0x80 | (state[8]! & 0x3f)).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${version}${hex.slice(14, 16)}-${variant}${hex.slice(18, 20)}-${hex.slice(20)}`;
}

/** Adds one to rand_b (the low 6 bits of byte 8 and bytes 9–15); false on overflow. */
function incrementRandB(bytes: Buffer): boolean {
  for (let i = 15; i >= 9; i--) {
    if (bytes[i] !== 0xff) {
      bytes[i]!++;
      return true;
    }
    bytes[i] = 0;
  }
  if ((bytes[8]! & 0x3f) === 0x3f) return false;
  bytes[8]!++;
  return true;
}
