import { describe, expect, it, vi } from 'vitest';
import { retryWhileTopicUnknown } from './create-topics.js';

const unknownTopic = () => Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });

describe('retryWhileTopicUnknown', () => {
  it('retries while the broker does not host the topic yet (also when kafkajs wraps the error), then returns the result', async () => {
    let calls = 0;
    const result = await retryWhileTopicUnknown(async () => {
      calls++;
      if (calls === 1) throw unknownTopic();
      if (calls === 2) throw Object.assign(new Error('retries exhausted'), { originalError: unknownTopic() });
      return 'subscribed';
    });
    expect(result).toBe('subscribed');
    expect(calls).toBe(3);
  });

  it('throws any other error at once', async () => {
    const attempt = vi.fn(async () => {
      throw Object.assign(new Error('not authorized'), { type: 'TOPIC_AUTHORIZATION_FAILED' });
    });
    await expect(retryWhileTopicUnknown(attempt)).rejects.toThrow('not authorized');
    expect(attempt).toHaveBeenCalledTimes(1);
  });

  it('gives up with the broker’s error once the deadline has passed', async () => {
    const attempt = vi.fn(async () => {
      throw unknownTopic();
    });
    await expect(retryWhileTopicUnknown(attempt, 250)).rejects.toThrow('does not host');
    expect(attempt.mock.calls.length).toBeGreaterThan(1);
    expect(attempt.mock.calls.length).toBeLessThan(5);
  });
});
