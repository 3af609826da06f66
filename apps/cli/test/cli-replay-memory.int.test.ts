import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, uniqueName } from '@eventbus/dev-services';
import { cliFixture, seedEvents, startCli, type RunningCli } from './cli-fixture.js';

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

describe('replay memory (the CLI as a process)', () => {
  it('stays flat over 200,000 events: keyset pages, one page in memory', async () => {
    const tenant = uniqueName('mem-');
    const total = 200_000;
    await seedEvents(f.pool, { tenantId: tenant, count: total, start: '2025-01-01T00:00:00Z', types: ['product.updated'] });

    // The read path over all 200k (the part whose size grows with the window), without Kafka.
    const started = Date.now();
    const read = await rssSamples(startCli(['replay', '--tenant', tenant, '--dry-run', '--page-size', '2000', '--json'], f.env('x.')));
    const readSeconds = (Date.now() - started) / 1000;
    expect(read.exit.code, read.exit.stderr).toBe(0);
    expect(read.exit.json()).toMatchObject({ sent: total, total });
    // Flat: the last quarter of the run needs no more memory than the first quarter, give or
    // take garbage-collector slack. A replay that kept its rows would grow by ~100 MB here.
    const quarter = Math.max(1, Math.floor(read.samples.length / 4));
    const early = max(read.samples.slice(0, quarter));
    const late = max(read.samples.slice(-quarter));
    expect(read.samples.length).toBeGreaterThan(8);
    expect(late).toBeLessThan(early + 30);
    expect(max(read.samples)).toBeLessThan(200);

    // The publish path: 20k events through Kafka (acks = -1) against 2k: same peak, give or take.
    const topic = `${uniqueName('mem.')}.replayed`;
    await createTopics(f.brokers, [{ topic }]);
    const publishSmall = await rssSamples(startCli(['replay', '--tenant', tenant, '--to-topic', topic, '--to', '2025-01-02T09:19:00Z', '--json'], f.env('x.')));
    expect(publishSmall.exit.json().sent).toBe(2000);
    const publishStarted = Date.now();
    const publishLarge = await rssSamples(startCli(['replay', '--tenant', tenant, '--to-topic', topic, '--to', '2025-01-14T21:19:00Z', '--json'], f.env('x.')));
    const publishSeconds = (Date.now() - publishStarted) / 1000;
    expect(publishLarge.exit.code, publishLarge.exit.stderr).toBe(0);
    expect(publishLarge.exit.json().sent).toBe(20_000);
    expect(max(publishLarge.samples)).toBeLessThan(max(publishSmall.samples) + 40);
    expect(await f.messageCount(topic)).toBe(22_000);

    console.info(
      `replay memory: read 200k events in ${readSeconds.toFixed(1)} s, RSS ${early.toFixed(0)} MB (first quarter) → ${late.toFixed(0)} MB (last quarter), peak ${max(read.samples).toFixed(0)} MB; ` +
        `published 20k in ${publishSeconds.toFixed(1)} s (${Math.round(20_000 / publishSeconds)}/s), peak RSS ${max(publishLarge.samples).toFixed(0)} MB vs ${max(publishSmall.samples).toFixed(0)} MB for 2k`,
    );
  });
});
