import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName } from '@eventbus/dev-services';
import { cliFixture, createTopics, seedEvents, startCli, type RunningCli } from './cli-fixture.js';

let f: Awaited<ReturnType<typeof cliFixture>>;
beforeAll(async () => {
  f = await cliFixture('cli-memory');
});
afterAll(async () => f?.close());

/** Samples the process' resident set size (Linux /proc) every 50 ms until it exits. */
async function rssSamples(running: RunningCli): Promise<{ samples: number[]; exit: Awaited<RunningCli['done']> }> {
  const samples: number[] = [];
  const timer = setInterval(() => {
    try {
      const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${running.child.pid}/status`, 'utf8'))?.[1];
      if (kb) samples.push(Number(kb) / 1024);
    } catch {
      // exited between two samples
    }
  }, 50);
  const exit = await running.done;
  clearInterval(timer);
  return { samples, exit };
}

const max = (xs: number[]) => Math.max(...xs);

// The proof of "flat": the CLI runs with a V8 heap capped at HEAP_MB. A replay that kept
// its rows (or its messages) would need ~1 KB per event, 100 MB for 100k, and die with
// "JavaScript heap out of memory"; RSS is sampled and reported besides.
const HEAP_MB = 64;
const capped = [`--max-old-space-size=${HEAP_MB}`];
// Measured here: ~63 MB RSS early in the read, ~108 MB late, ~115 MB peak when publishing
// (V8 grows the young generation and keeps freed pages; native buffers of pg and kafkajs).
// The limits leave room for that on any machine, and fail a replay that keeps its rows.
const RSS_LIMIT_MB = 256;
const GROWTH_LIMIT_MB = 96;

describe('replay memory (the CLI as a process)', () => {
  it('stays flat over 100,000 events: keyset pages, one page in memory', { timeout: 120_000 }, async () => {
    const tenant = uniqueName('mem-');
    const total = 100_000;
    await seedEvents(f.pool, { tenantId: tenant, count: total, start: '2025-01-01T00:00:00Z', types: ['product.updated'] });

    // The read path over all 100k (the part whose size grows with the window), without Kafka.
    const started = Date.now();
    const read = await rssSamples(startCli(['replay', '--tenant', tenant, '--dry-run', '--page-size', '2000', '--json'], f.env('x.'), capped));
    const readSeconds = (Date.now() - started) / 1000;
    expect(read.exit.code, read.exit.stderr).toBe(0);
    expect(read.exit.json()).toMatchObject({ sent: total, total });
    // The heap cap is the hard check: exit 0 above means 100k events went through a 64 MB heap.
    expect(read.exit.stderr).not.toMatch(/heap out of memory/i);
    // RSS, from however many samples the run left (a fast machine may finish in a few): no
    // sample far above what a 64 MB heap plus Node's native memory needs, and the last
    // quarter not far above the first (a leak of even 1 KB per event would add 100 MB).
    expect(read.samples.length).toBeGreaterThan(0);
    expect(max(read.samples)).toBeLessThan(RSS_LIMIT_MB);
    const quarter = Math.max(1, Math.floor(read.samples.length / 4));
    const early = max(read.samples.slice(0, quarter));
    const late = max(read.samples.slice(-quarter));
    if (read.samples.length >= 8) expect(late).toBeLessThan(early + GROWTH_LIMIT_MB);

    // The publish path: 10k events through Kafka (acks = -1), same heap cap.
    const topic = `${uniqueName('mem.')}.replayed`;
    await createTopics(f.brokers, [{ topic }]);
    const publishStarted = Date.now();
    const publish = await rssSamples(
      startCli(['replay', '--tenant', tenant, '--to-topic', topic, '--to', '2025-01-07T22:39:00Z', '--json'], f.env('x.'), capped),
    );
    const publishSeconds = (Date.now() - publishStarted) / 1000;
    expect(publish.exit.code, publish.exit.stderr).toBe(0);
    expect(publish.exit.json().sent).toBe(10_000);
    expect(await f.messageCount(topic)).toBe(10_000);
    expect(publish.exit.stderr).not.toMatch(/heap out of memory/i);
    if (publish.samples.length > 0) expect(max(publish.samples)).toBeLessThan(RSS_LIMIT_MB);

    console.info(
      `replay memory (heap capped at ${HEAP_MB} MB): read 100k events in ${readSeconds.toFixed(1)} s, RSS ${early.toFixed(0)} MB (first quarter) / ${late.toFixed(0)} MB (last quarter), ` +
        `peak ${max(read.samples).toFixed(0)} MB; published 10k in ${publishSeconds.toFixed(1)} s (${Math.round(10_000 / publishSeconds)}/s), peak RSS ${max(publish.samples).toFixed(0)} MB`,
    );
  });
});
