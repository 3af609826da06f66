import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test', KAFKA_BROKERS: '127.0.0.1:19092' };

describe('loadConfig: KAFKA_REQUEST_TIMEOUT_MS', () => {
  it('is 10000 ms by default, as for the relay, and takes a value from 1000 to 600000', () => {
    expect(loadConfig(base).kafkaRequestTimeoutMs).toBe(10_000);
    expect(loadConfig({ ...base, KAFKA_REQUEST_TIMEOUT_MS: '2000' }).kafkaRequestTimeoutMs).toBe(2000);
  });

  it('refuses a value out of range or not a number, naming the variable', () => {
    for (const value of ['999', '600001', '2s']) expect(() => loadConfig({ ...base, KAFKA_REQUEST_TIMEOUT_MS: value })).toThrow(/KAFKA_REQUEST_TIMEOUT_MS=/);
  });
});
