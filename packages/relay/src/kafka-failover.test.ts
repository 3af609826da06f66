import { afterEach, describe, expect, it, vi } from 'vitest';
import type pg from 'pg';
import { silentLogger } from '@eventbus/core';
import { KafkaFailover } from './kafka-failover.js';
import { RelayMetrics } from './metrics.js';

// The decision logic alone; kafka-failover.int.test.ts runs it with real relays, Postgres and a cut Kafka route.
const FAILOVER_MS = 20_000;
/** A claim connection that reports `others` presence holders besides this instance's. */
const connection = (others: number) => ({ query: vi.fn(async () => ({ rows: [{ n: others }] })) }) as unknown as pg.ClientBase;

function failover(probe = vi.fn(async () => undefined), failoverMs = FAILOVER_MS) {
  const publisher = { connect: async () => undefined, publish: async () => undefined, disconnect: async () => undefined, probe };
  return new KafkaFailover({ failoverMs, outageBackoffMs: 5000, publisher, metrics: new RelayMetrics(), logger: silentLogger, ownBackendPids: () => [1, 2] });
}

afterEach(() => vi.useRealTimers());

describe('KafkaFailover', () => {
  it('hands over after failoverMs of failures when another instance is live, probes, and ends when Kafka answers', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const probe = vi.fn(async () => undefined);
    const f = failover(probe);
    const start = Date.now();
    for (let t = 0; t <= FAILOVER_MS; t += 4000) {
      vi.setSystemTime(start + t);
      f.failed(start + t - 1000);
    }
    expect(await f.handOverIfDue(connection(1), new AbortController().signal)).toBe(true);
    await f.ended();
    expect(probe).toHaveBeenCalledTimes(1);
    expect(f.handedOver).toBe(false);
  });

  it('keeps the shards with nobody to hand over to, before failoverMs, after a success, or when disabled', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const signal = new AbortController().signal;
    const start = Date.now();
    const failingFor = (f: KafkaFailover, ms: number) => {
      for (let t = 0; t <= ms; t += 4000) {
        vi.setSystemTime(start + t);
        f.failed(start + t);
      }
    };
    const alone = failover();
    failingFor(alone, FAILOVER_MS + 4000);
    expect(await alone.handOverIfDue(connection(0), signal)).toBe(false);

    const early = failover();
    failingFor(early, FAILOVER_MS - 4000);
    expect(await early.handOverIfDue(connection(1), signal)).toBe(false);

    const recovered = failover();
    failingFor(recovered, FAILOVER_MS + 4000);
    recovered.succeeded();
    expect(await recovered.handOverIfDue(connection(1), signal)).toBe(false);

    const disabled = failover(undefined, 0);
    failingFor(disabled, FAILOVER_MS + 4000);
    expect(await disabled.handOverIfDue(connection(1), signal)).toBe(false);
  });

  it('does not count one old blip and one new failure as a long outage', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const f = failover();
    const start = Date.now();
    f.failed(start);
    vi.setSystemTime(start + 3_600_000); // an hour later, without a success in between (no traffic)
    f.failed(start + 3_600_000 - 1000);
    expect(await f.handOverIfDue(connection(1), new AbortController().signal)).toBe(false);
  });

  it('stops probing when the relay stops', async () => {
    const probe = vi.fn(() => new Promise<undefined>(() => {})); // Kafka never answers
    const f = failover(probe, 1);
    f.failed(Date.now() - 10);
    const stop = new AbortController();
    expect(await f.handOverIfDue(connection(1), stop.signal)).toBe(true);
    stop.abort();
    await f.ended();
    expect(f.handedOver).toBe(false);
  });
});
