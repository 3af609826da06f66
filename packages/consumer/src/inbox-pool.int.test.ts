import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { isEventBusError } from '@eventbus/core';
import { waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase } from '@eventbus/dev-services/test';
import { InboxPool, type InboxCall } from './inbox-pool.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await testDatabase('inbox-pool');
});
afterAll(async () => database?.drop());

let eventCount = 0;
const call = (subscription: string, tenantId: string): InboxCall => ({ groupId: 'g', eventId: `e-${++eventCount}`, subscription, tenantId });
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe('InboxPool (real Postgres)', () => {
  it('holds a connection for every handler that can run at once, and fails a processOnce that finds none free within its bound with a retriable error naming the holder', async () => {
    // partitionsConsumedConcurrently 1: a batch in the fetch round and a detached one, plus two
    // abandoned attempts; acquiring waits at most half the handler timeout.
    const inbox = new InboxPool({ connectionString: database.url, partitionsConsumedConcurrently: 1, handlerTimeoutMs: 600 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    try {
      let entered = 0;
      const holders = Array.from({ length: 4 }, () =>
        inbox.processOnce(call('slow', 'tenant-x'), async () => {
          entered++;
          await gate;
        }),
      );
      // Each of the four got a connection of its own (with partitionsConsumedConcurrently + 1, two waited).
      await waitFor(() => entered === 4, { timeoutMs: 10_000, message: 'four effects running at once' });

      const startedAt = Date.now();
      // Without a bound on the wait it never settles while the holders hold: the race says so after 5 s.
      const outcome = await Promise.race([
        inbox
          .processOnce(call('healthy', 'tenant-y'), async () => {})
          .then(
            () => 'ran',
            (error: unknown) => error,
          ),
        new Promise((resolve) => setTimeout(resolve, 5000, 'still waiting')),
      ]);
      const waitedMs = Date.now() - startedAt;
      expect(isEventBusError(outcome, 'DATABASE_UNAVAILABLE')).toBe(true);
      const error = outcome as Error & { retriable: boolean };
      expect(error.retriable).toBe(true);
      expect(waitedMs).toBeGreaterThanOrEqual(250);
      expect(waitedMs).toBeLessThan(2000);
      expect(error.message).toContain('found no free inbox connection within 300 ms: all 4 are held by handlers inside ctx.processOnce');
      expect(error.message).toMatch(/the longest held for \d+ ms by subscription "slow", tenant "tenant-x", event e-\d+/);

      release();
      expect(await Promise.all(holders)).toEqual([true, true, true, true]);
      expect(await inbox.processOnce(call('healthy', 'tenant-y'), async () => {})).toBe(true);
    } finally {
      release();
      await inbox.close(Date.now(), silent, 'g');
    }
  });

  it('close() ends a transaction still open at the deadline: its connection is closed, the warning names its call, nothing is left unhandled', async () => {
    const inbox = new InboxPool({ connectionString: database.url, partitionsConsumedConcurrently: 1, handlerTimeoutMs: 30_000 });
    let inside = false;
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = { ...silent, warn: (fields: Record<string, unknown>, message: string) => void warnings.push({ fields, message }) };
    const held = call('indexer', 'tenant-z');
    const running = inbox.processOnce(held, async (tx) => {
      inside = true;
      await tx.execute(sql`SELECT pg_sleep(5)`);
    });
    const settled = running.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await waitFor(() => inside, { timeoutMs: 10_000, message: 'the effect running' });
    const startedAt = Date.now();
    await inbox.close(Date.now(), logger, 'g');
    // 500 ms for it to end by itself, then its connection closed: not the 5 s of pg_sleep.
    expect(Date.now() - startedAt).toBeLessThan(2000);
    expect(warnings.map((w) => w.message)).toEqual([expect.stringContaining('stop(): ctx.processOnce transactions still open after the grace period')]);
    expect(warnings[0]!.fields.transactions).toMatchObject([{ ...held, openForMs: expect.any(Number) }]);
    // Rejected (drizzle reports the failed ROLLBACK on the closed connection), not committed.
    expect(await settled).toBeInstanceOf(Error);
    // After close, a late call (an attempt abandoned earlier) is refused instead of opening connections again.
    await expect(inbox.processOnce(call('indexer', 'tenant-z'), async () => {})).rejects.toMatchObject({ code: 'STOPPED' });
  });
});
