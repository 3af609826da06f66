import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { NonRetriableError, uuidv7 } from '@eventbus/core';
import { waitFor } from '@eventbus/dev-services';
import { discardDeadLetter, redriveDeadLetter } from '@eventbus/dead-letters';
import { DLQ_HEADER, processOnce } from '../src/index.js';
import { consumerFixture } from './consumer-fixture.js';

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-dlq');
  await f.pool.query('CREATE TABLE public.effects (event_id text NOT NULL, note text)');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

const effectCount = async (eventId: string): Promise<number> =>
  (await f.pool.query('SELECT count(*)::int AS n FROM public.effects WHERE event_id = $1', [eventId])).rows[0].n;
const deadLetter = async (where: string, value: string) => (await f.pool.query(`SELECT * FROM eventbus.dead_letters WHERE ${where} = $1`, [value])).rows;

describe('dead letters: mirror, re-drive, discard (real Kafka, real Postgres)', () => {
  it('re-drives a consumer dead letter to its group once; the group handles it again and the row is marked', async () => {
    const prefix = f.prefix();
    const groupId = f.group('mailer');
    const calls: Array<{ id: string; attempt: number }> = [];
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig: { maxRetries: 2, initialDelayMs: 200 } }, [
      {
        eventTypes: ['customer.registered'],
        name: 'welcome-mail',
        handler: async (event, ctx) => {
          calls.push({ id: event.id, attempt: ctx.attempt });
          // Fails the first time only: the template was missing, then fixed.
          if (calls.filter((c) => c.id === event.id).length === 1) throw new NonRetriableError('template missing');
        },
      },
    ]);
    await f.mirror({ routing: { prefix }, groups: [groupId] });
    const [id] = await f.publish(prefix, [{ tenantId: 'shop-9', eventType: 'customer.registered', payload: { email: 'a@b.c' } }]);
    const row = await waitFor(async () => (await deadLetter('event_id', id!))[0], { timeoutMs: 15_000, message: 'dead_letters row' });
    expect(row).toMatchObject({ stage: 'consumer', group_id: groupId, status: 'pending', attempts: 1, error_class: 'NonRetriableError' });
    expect(row.headers[DLQ_HEADER.subscription]).toBe('welcome-mail');

    const first = await redriveDeadLetter(f.pool, f.publisher, row.id);
    expect(first).toMatchObject({ outcome: 'redriven', stage: 'consumer' });
    await waitFor(() => calls.length === 2, { timeoutMs: 15_000, message: 'the re-driven delivery' });
    expect(calls).toEqual([
      { id, attempt: 1 },
      { id, attempt: 1 },
    ]);
    const [after] = await deadLetter('id', row.id);
    expect(after).toMatchObject({ status: 'redriven' });
    expect(after.status_changed_at).toBeInstanceOf(Date);

    const second = await redriveDeadLetter(f.pool, f.publisher, row.id);
    expect(second).toMatchObject({ outcome: 'already_redriven' });
    expect(second.message).toContain('already redriven');
    // Anything the second call sent would already be in the topic: publish waits for the ack.
    expect(await f.messageCount(consumer.options.retryTopic)).toBe(1);

    // A second mirror re-reads the DLQ from the start: still one row, still re-driven.
    const replay = await f.mirror({ routing: { prefix }, groups: [groupId] });
    await waitFor(() => replay.seenBefore === 1, { timeoutMs: 15_000, message: 'the replayed DLQ record' });
    expect(replay.mirrored).toBe(0);
    expect(await deadLetter('event_id', id!)).toMatchObject([{ id: row.id, status: 'redriven' }]);
  });

  it('re-drives a dead letter of a since renamed subscription: dead-lettered again as UNKNOWN_SUBSCRIPTION, not dropped, then handled by the subscription that now handles its type', async () => {
    const prefix = f.prefix();
    const groupId = f.group('renamed');
    const v1 = await f.consumer({ groupId, routing: { prefix } }, [
      {
        name: 'index',
        eventTypes: ['product.*'],
        handler: async () => {
          throw new NonRetriableError('mapping missing');
        },
      },
    ]);
    await f.mirror({ routing: { prefix }, groups: [groupId] });
    const [id] = await f.publish(prefix, [{ tenantId: 't1', eventType: 'product.created' }]);
    const row = await waitFor(async () => (await deadLetter('event_id', id!))[0], { timeoutMs: 15_000, message: 'dead_letters row' });
    expect(row.headers[DLQ_HEADER.subscription]).toBe('index');
    await v1.stop();

    // A deploy renamed the subscription.
    const calls: number[] = [];
    await f.consumer({ groupId, routing: { prefix } }, [
      { name: 'search-index', eventTypes: ['product.*'], handler: async (_e, ctx) => void calls.push(ctx.attempt) },
    ]);
    expect(await redriveDeadLetter(f.pool, f.publisher, row.id)).toMatchObject({ outcome: 'redriven' });
    // Dropped before, as not for this consumer, while the row said redriven: now the DLQ again, and the row reopens.
    const reopened = await waitFor(
      async () => {
        const [r] = await deadLetter('id', row.id);
        return r.status === 'pending' && r.error_class === 'EventBusError:UNKNOWN_SUBSCRIPTION' ? r : undefined;
      },
      { timeoutMs: 15_000, message: 'the row reopened with UNKNOWN_SUBSCRIPTION' },
    );
    expect(reopened.error_message).toContain('for subscription "index" of group');
    expect(reopened.error_message).toContain('its subscriptions are "search-index" (product.*)');
    expect(reopened.headers[DLQ_HEADER.subscription]).toBeUndefined();
    expect(calls).toEqual([]);

    // Its re-drive names no subscription: the one that handles product.created now runs it.
    expect(await redriveDeadLetter(f.pool, f.publisher, row.id)).toMatchObject({ outcome: 'redriven' });
    await waitFor(() => calls.length === 1, { timeoutMs: 15_000, message: 'the renamed subscription handling the re-drive' });
    expect(calls).toEqual([1]);
  });

  it('a mirror that re-reads the DLQ topics from the beginning does not bring back a dead letter resolved and pruned since', async () => {
    const prefix = f.prefix();
    const groupId = f.group('indexer');
    await f.consumer({ groupId, routing: { prefix } }, [
      {
        eventTypes: ['doc.indexed'],
        name: 'index',
        handler: async () => {
          throw new NonRetriableError('bad document');
        },
      },
    ]);
    const first = await f.mirror({ routing: { prefix }, groups: [groupId] });
    const [resolved] = await f.publish(prefix, [{ tenantId: 'shop-1', eventType: 'doc.indexed', payload: { n: 1 } }]);
    const row = await waitFor(async () => (await deadLetter('event_id', resolved!))[0], { timeoutMs: 15_000, message: 'the first dead letter' });
    // An operator discards it; `eventbus prune` later deletes resolved rows past their retention.
    expect(await discardDeadLetter(f.pool, row.id)).toMatchObject({ outcome: 'discarded' });
    await f.pool.query('DELETE FROM eventbus.dead_letters WHERE id = $1', [row.id]);
    await first.stop();

    // The mirror comes back in a consumer group without offsets (renamed, or its offsets
    // expired while it was down): it reads the DLQ topic from the beginning. A new failure too.
    const fresh = await f.mirror({ routing: { prefix }, groups: [groupId] });
    const [later] = await f.publish(prefix, [{ tenantId: 'shop-1', eventType: 'doc.indexed', payload: { n: 2 } }]);
    await waitFor(() => fresh.seenBefore === 1 && fresh.mirrored === 1, { timeoutMs: 20_000, message: 'both DLQ records read by the new mirror' });
    expect(await deadLetter('event_id', resolved!)).toEqual([]);
    expect(await deadLetter('event_id', later!)).toMatchObject([{ status: 'pending', error_class: 'NonRetriableError' }]);
  });
});

describe('inbox: processOnce', () => {
  it('applies the effect of the same (group, event) once across transactions, and not at all when the effect fails', async () => {
    const key = { groupId: 'billing', eventId: uuidv7() };
    const effect = (tx: Parameters<Parameters<typeof f.db.transaction>[0]>[0]) => async () => {
      await tx.execute(sql`INSERT INTO public.effects (event_id) VALUES (${key.eventId})`);
    };
    await expect(
      f.db.transaction((tx) =>
        processOnce(tx, key, async () => {
          await effect(tx)();
          throw new Error('downstream failed');
        }),
      ),
    ).rejects.toThrow('downstream failed');
    // The failed attempt left no inbox row: the retry runs the effect.
    expect(await f.db.transaction((tx) => processOnce(tx, key, effect(tx)))).toBe(true);
    expect(await f.db.transaction((tx) => processOnce(tx, key, effect(tx)))).toBe(false);
    expect(await f.db.transaction((tx) => processOnce(tx, { ...key, groupId: 'other-group' }, effect(tx)))).toBe(true);
    expect(await effectCount(key.eventId)).toBe(2);
    const inbox = await f.pool.query('SELECT group_id FROM eventbus.inbox WHERE event_id = $1 ORDER BY group_id', [key.eventId]);
    expect(inbox.rows.map((r) => r.group_id)).toEqual(['billing', 'other-group']);
    await expect(processOnce(f.db as never, key, effect(f.db as never))).rejects.toThrow(/transaction/);
  });

  it('context.processOnce skips the effect of a redelivered event (same ce_id twice)', async () => {
    const prefix = f.prefix();
    const groupId = f.group('billing');
    const deliveries: boolean[] = [];
    await f.consumer({ groupId, routing: { prefix }, connectionString: f.database.url }, [
      {
        eventTypes: ['invoice.issued'],
        handler: async (event, ctx) => {
          deliveries.push(await ctx.processOnce(async (tx) => void (await tx.execute(sql`INSERT INTO public.effects (event_id) VALUES (${event.id})`))));
        },
      },
    ]);
    const id = uuidv7();
    await f.publish(prefix, [
      { tenantId: 't', eventType: 'invoice.issued', id },
      { tenantId: 't', eventType: 'invoice.issued', id },
    ]);
    await waitFor(() => deliveries.length === 2, { timeoutMs: 15_000, message: 'both deliveries' });
    expect(deliveries).toEqual([true, false]);
    expect(await effectCount(id)).toBe(1);
  });
});
