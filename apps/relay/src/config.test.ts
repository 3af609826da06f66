import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test', KAFKA_BROKERS: '127.0.0.1:19092' };

describe('loadConfig: RELAY_CREATE_TOPICS', () => {
  it('creates missing topics by default, and not with false', () => {
    expect(loadConfig(base).createTopics).toBe(true);
    expect(loadConfig({ ...base, RELAY_CREATE_TOPICS: 'false' }).createTopics).toBe(false);
  });

  it('refuses a value that is not a boolean, naming the variable', () => {
    expect(() => loadConfig({ ...base, RELAY_CREATE_TOPICS: 'maybe' })).toThrow(/RELAY_CREATE_TOPICS/);
  });
});
