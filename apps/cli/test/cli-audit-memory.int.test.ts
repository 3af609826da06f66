import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent, uuidv7 } from '@eventbus/core';
import { uniqueName } from '@eventbus/dev-services';
import { KafkaPublisher } from '@eventbus/kafka';
import { cliFixture, createTopics, startCli, type RunningCli } from './cli-fixture.js';

// `eventbus audit`'s memory does not grow with the window: the same audit over a small and a
// large window, each as its own CLI process with a capped V8 heap, and their peak RSS compared.
// Sizes: AUDIT_MEMORY_EVENTS="small,large" (default 10000,50000, to keep the suite short; docs/cli.md reports
// 200000,1000000).
const SIZES = (process.env.AUDIT_MEMORY_EVENTS ?? '10000,50000').split(',').map(Number) as [number, number];
const HEAP_MB = 96;
const capped = [`--max-old-space-size=${HEAP_MB}`];
const RSS_LIMIT_MB = 320;

let f: Awaited<ReturnType<typeof cliFixture>>;
let publisher: KafkaPublisher;
beforeAll(async () => {
  f = await cliFixture('cli-audit-memory');
  publisher = new KafkaPublisher({ brokers: f.brokers });
  await publisher.connect();
});
afterAll(async () => {
  await publisher?.disconnect();
  await f?.close();
});

/** Peak resident set size (Linux /proc, sampled every 50 ms) of the process until it exits. */
async function peakRss(running: RunningCli): Promise<{ peakMb: number; exit: Awaited<RunningCli['done']> }> {
  let peakMb = 0;
  const timer = setInterval(() => {
    try {
      const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${running.child.pid}/status`, 'utf8'))?.[1];
      if (kb) peakMb = Math.max(peakMb, Number(kb) / 1024);
    } catch {
      // exited between two samples
    }
  }, 50);
  const exit = await running.done;
  clearInterval(timer);
  return { peakMb, exit };
}

/**
 * `count` events of `tenantId` in the EventLog, created one millisecond apart ending now, and
 * each on Kafka as the relay would have published it; written in chunks so the test's own
 * memory stays flat too.
 */
async function seedPublished(tenantId: string, topic: string, count: number): Promise<{ from: Date; to: Date }> {
  const start = Date.now() - count;
  // One tenant = one key = one partition: a chunk is one record batch, under the broker's 1 MB limit.
  const chunk = 1000;
  for (let offset = 0; offset < count; offset += chunk) {
    const n = Math.min(chunk, count - offset);
    const events = Array.from({ length: n }, (_, i) => {
      const id = uuidv7();
      return {
        id,
        tenantId,
        projectId: null,
        eventKey: `${tenantId}-${offset + i}`,
        eventType: 'product.updated',
        version: 1,
        payloadJson: `{"seq":${offset + i}}`,
        correlationId: id,
        causationId: null,
        createdAt: new Date(start + offset + i),
        traceparent: null,
        tracestate: null,
      };
    });
    await f.pool.query(
      `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id, created_at)
       SELECT id, $2, key, 'product.updated', '{}', id::text, created FROM unnest($1::uuid[], $3::text[], $4::timestamptz[]) AS t(id, key, created)`,
      [events.map((e) => e.id), tenantId, events.map((e) => e.eventKey), events.map((e) => e.createdAt)],
    );
    await publisher.publish(events.map((e) => ({ topic, ...encodeEvent(e) })));
  }
  return { from: new Date(start), to: new Date(start + count) };
}

describe('audit memory (the CLI as a process)', () => {
  it(`does not grow with the window: ${SIZES[0]} vs ${SIZES[1]} events`, async () => {
    const prefix = f.prefix();
    const topic = `${prefix}product`;
    await createTopics(f.brokers, [{ topic, numPartitions: 3 }]);
    const runs: Array<{ events: number; peakMb: number; seconds: number; seedSeconds: number }> = [];
    for (const events of SIZES) {
      const tenant = uniqueName('mem-');
      const seeding = Date.now();
      const window = await seedPublished(tenant, topic, events);
      const seedSeconds = (Date.now() - seeding) / 1000;
      await f.pool.query('ANALYZE eventbus.event_log');
      const started = Date.now();
      const { peakMb, exit } = await peakRss(
        startCli(['audit', '--tenant', tenant, '--from', window.from.toISOString(), '--to', window.to.toISOString(), '--json'], f.env(prefix), capped),
      );
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.json()).toMatchObject({ events, onKafka: events, missing: { count: 0 }, phantom: { count: 0 }, duplicates: { count: 0 }, clean: true });
      expect(exit.stderr).not.toMatch(/heap out of memory/i);
      runs.push({ events, peakMb, seconds: (Date.now() - started) / 1000, seedSeconds });
    }
    const [small, large] = runs as [(typeof runs)[0], (typeof runs)[0]];
    console.info(
      `audit memory (heap capped at ${HEAP_MB} MB): ${small.events} events peak RSS ${small.peakMb.toFixed(0)} MB in ${small.seconds.toFixed(1)} s; ` +
        `${large.events} events peak RSS ${large.peakMb.toFixed(0)} MB in ${large.seconds.toFixed(1)} s; ` +
        `ratio ${(large.peakMb / small.peakMb).toFixed(2)} for ${(large.events / small.events).toFixed(0)}x the events; ` +
        // What bounds the sizes this test can reach: seeding and the audit's read, both about linear.
        `seeded at ${(small.events / small.seedSeconds).toFixed(0)} and ${(large.events / large.seedSeconds).toFixed(0)} events/s, ` +
        `audited at ${(small.events / small.seconds).toFixed(0)} and ${(large.events / large.seconds).toFixed(0)} events/s`,
    );
    expect(large.peakMb).toBeLessThan(RSS_LIMIT_MB);
    // Flat: 5x the events may cost a little more (V8 keeps freed pages), never in proportion.
    expect(large.peakMb / small.peakMb).toBeLessThan(1.5);
  }, 1_800_000);
});
