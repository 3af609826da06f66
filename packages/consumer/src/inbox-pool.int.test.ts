import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
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
  it('close() ends a transaction still open at the deadline: its connection is closed, the warning names its call, nothing is left unhandled', async () => {
    const inbox = new InboxPool({ connectionString: database.url, partitionsConsumedConcurrently: 1 });
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
