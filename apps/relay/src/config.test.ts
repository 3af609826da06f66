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

describe('loadConfig: KAFKA_REQUEST_TIMEOUT_MS', () => {
  it('is 10000 ms by default and takes a value from 1000 to 600000', () => {
    expect(loadConfig(base).kafkaRequestTimeoutMs).toBe(10_000);
    expect(loadConfig({ ...base, KAFKA_REQUEST_TIMEOUT_MS: '2000' }).kafkaRequestTimeoutMs).toBe(2000);
  });

  it('refuses a value out of range or not a number, naming the variable', () => {
    for (const value of ['999', '600001', '2s']) expect(() => loadConfig({ ...base, KAFKA_REQUEST_TIMEOUT_MS: value })).toThrow(/KAFKA_REQUEST_TIMEOUT_MS=/);
  });
});

describe('loadConfig: RELAY_MISSING_TOPIC_HOLD_MS / _MAX_MS / RELAY_MISSING_TOPIC_ALERT_MS', () => {
  it('holds a missing topic 1 s doubling to 30 s by default, and takes other values', () => {
    expect(loadConfig(base).missingTopicHold).toEqual({ initialMs: 1000, maxMs: 30_000, alertAfterMs: 300_000 });
    expect(
      loadConfig({ ...base, RELAY_MISSING_TOPIC_HOLD_MS: '500', RELAY_MISSING_TOPIC_HOLD_MAX_MS: '120000', RELAY_MISSING_TOPIC_ALERT_MS: '60000' })
        .missingTopicHold,
    ).toEqual({ initialMs: 500, maxMs: 120_000, alertAfterMs: 60_000 });
  });

  it('refuses a value out of range, naming the variable', () => {
    expect(() => loadConfig({ ...base, RELAY_MISSING_TOPIC_HOLD_MS: '5' })).toThrow(/RELAY_MISSING_TOPIC_HOLD_MS=/);
    expect(() => loadConfig({ ...base, RELAY_MISSING_TOPIC_HOLD_MAX_MS: '700000' })).toThrow(/RELAY_MISSING_TOPIC_HOLD_MAX_MS=/);
    expect(() => loadConfig({ ...base, RELAY_MISSING_TOPIC_ALERT_MS: '50' })).toThrow(/RELAY_MISSING_TOPIC_ALERT_MS=/);
  });
});
