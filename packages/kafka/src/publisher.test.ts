import { describe, expect, it } from 'vitest';
import { isTooLargeRefusal, PublishError } from './publisher.js';

describe('isTooLargeRefusal', () => {
  const tooLarge = new PublishError('rejected', 'message too large', { reason: 'too-large' });
  const missing = new PublishError('rejected', 'no such topic', { reason: 'missing-topic' });

  it('is true for a broker refusal as too large and for a message the publisher refused before the send as too large', () => {
    expect(isTooLargeRefusal(tooLarge)).toBe(true);
    expect(isTooLargeRefusal(new PublishError('rejected', '1 of 1 message(s) refused', { refusals: [tooLarge] }))).toBe(true);
  });

  it('is false for anything else: transient failures, other refusals, a refusal of other reasons, errors that are not PublishErrors', () => {
    expect(isTooLargeRefusal(new PublishError('transient', 'timeout'))).toBe(false);
    expect(isTooLargeRefusal(new PublishError('rejected', 'policy violation'))).toBe(false);
    expect(isTooLargeRefusal(new PublishError('rejected', 'refused', { refusals: [missing] }))).toBe(false);
    expect(isTooLargeRefusal(new PublishError('rejected', 'refused', { refusals: [tooLarge, missing] }))).toBe(false);
    expect(isTooLargeRefusal(Object.assign(new Error('x'), { type: 'MESSAGE_TOO_LARGE' }))).toBe(false);
  });
});
