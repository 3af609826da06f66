import { describe, expect, it } from 'vitest';
import { PublishError, type MessagePublisher, type OutboundMessage } from '@eventbus/kafka';
import { publishBisecting, requireEveryPosition, type BisectItem } from './publish-bisecting.js';

/** A broker that refuses any request holding a message whose value is 'bad', and stores the others. */
function fakeBroker(transientOn?: string) {
  const stored: string[] = [];
  let requests = 0;
  const publisher: MessagePublisher = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    publish: async (messages: readonly OutboundMessage[]) => {
      requests++;
      if (transientOn && messages.some((m) => m.value === transientOn)) throw new PublishError('transient', 'broker gone');
      if (messages.some((m) => m.value === 'bad')) throw new PublishError('rejected', 'MESSAGE_TOO_LARGE');
      stored.push(...messages.map((m) => `${m.key}:${String(m.value)}`));
      return messages.map((m) => ({ topic: m.topic, partition: 0, offset: String(stored.length) }));
    },
  };
  return { publisher, stored, requests: () => requests };
}

const item = (key: string, value: string): BisectItem => ({ message: { topic: 't', key, value, headers: {} } });

describe('publishBisecting', () => {
  it('marks exactly the refused messages, sends the rest in order, in O(log n) requests', async () => {
    const broker = fakeBroker();
    const items = Array.from({ length: 1000 }, (_, i) => item(`k${i % 3}`, i === 417 ? 'bad' : String(i)));
    await publishBisecting(broker.publisher, items);
    expect(items.filter((i) => i.error).map((i) => i.message.value)).toEqual(['bad']);
    expect(items[417]!.error).toBeInstanceOf(PublishError);
    const expected = items.filter((i) => i.message.value !== 'bad').map((i) => `${i.message.key}:${String(i.message.value)}`);
    expect(broker.stored).toEqual(expected);
    expect(broker.requests()).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(1000)) + 1);
  });

  it('finds several refused messages', async () => {
    const broker = fakeBroker();
    const items = ['a', 'bad', 'b', 'c', 'bad', 'bad', 'd'].map((v, i) => item(`k${i}`, v));
    await publishBisecting(broker.publisher, items);
    expect(items.map((i) => Boolean(i.error))).toEqual([false, true, false, false, true, true, false]);
    expect(broker.stored.map((s) => s.split(':')[1])).toEqual(['a', 'b', 'c', 'd']);
  });

  it('throws a transient failure for the caller to roll back, whatever the halving reached', async () => {
    const broker = fakeBroker('boom');
    const items = ['a', 'bad', 'boom', 'c'].map((v, i) => item(`k${i}`, v));
    await expect(publishBisecting(broker.publisher, items)).rejects.toMatchObject({ kind: 'transient' });
  });

  it('treats a publish that resolves without a position for every message as a transient failure', async () => {
    const message: OutboundMessage = { topic: 't', key: 'k', value: 'v', headers: {} };
    const resolvesShort: MessagePublisher = {
      connect: async () => undefined,
      disconnect: async () => undefined,
      publish: async () => [],
    };
    const error = await publishBisecting(resolvesShort, [{ message }, { message }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishError);
    expect((error as PublishError).kind).toBe('transient');
    expect(() => requireEveryPosition([message], [{ topic: 't', partition: -1, offset: '3' }])).toThrow(PublishError);
    expect(() => requireEveryPosition([message], [{ topic: 'other', partition: 0, offset: '3' }])).toThrow(PublishError);
    expect(() => requireEveryPosition([message], [{ topic: 't', partition: 0, offset: '-1' }])).toThrow(PublishError);
    expect(() => requireEveryPosition([message], [{ topic: 't', partition: 0, offset: '3' }])).not.toThrow();
  });

  it('does not send again what a refused request stored anyway (its acknowledged partitions)', async () => {
    const sends: string[][] = [];
    // Partition "a" is acknowledged in the first request while partition "b" is refused
    // because of the 'bad' message in it.
    const publisher: MessagePublisher = {
      connect: async () => undefined,
      disconnect: async () => undefined,
      publish: async (messages: readonly OutboundMessage[]) => {
        sends.push(messages.map((m) => String(m.value)));
        const positions = messages.map((m, i) => (m.key === 'a' ? { topic: m.topic, partition: 0, offset: String(i) } : undefined));
        if (messages.some((m) => m.value === 'bad')) throw new PublishError('rejected', 'MESSAGE_TOO_LARGE', { positions });
        return messages.map((m, i) => ({ topic: m.topic, partition: 0, offset: String(100 + i) }));
      },
    };
    const items = [item('a', 'a1'), item('b', 'b1'), item('b', 'bad'), item('a', 'a2'), item('b', 'b2')];
    await publishBisecting(publisher, items);
    expect(items.map((i) => Boolean(i.error))).toEqual([false, false, true, false, false]);
    // a1 and a2 went once, in the first request; only b's messages were sent again.
    expect(sends.flat().filter((v) => v.startsWith('a'))).toEqual(['a1', 'a2']);
    expect(sends.slice(1).flat()).not.toContain('a1');
  });

  it('takes the refusals the publisher decided without a send, with no halving', async () => {
    const sends: string[][] = [];
    // A publisher that refuses 'big' messages itself and stores the others in the same call.
    const publisher: MessagePublisher = {
      connect: async () => undefined,
      disconnect: async () => undefined,
      publish: async (messages: readonly OutboundMessage[]) => {
        sends.push(messages.map((m) => String(m.value)));
        const refusals = messages.map((m) => (m.value === 'big' ? new PublishError('rejected', `too large: ${m.key}`) : undefined));
        const positions = messages.map((m, i) => (refusals[i] ? undefined : { topic: m.topic, partition: 0, offset: String(i) }));
        if (refusals.some(Boolean)) throw new PublishError('rejected', 'refused without a send', { positions, refusals });
        return positions as Array<{ topic: string; partition: number; offset: string }>;
      },
    };
    const items = ['a', 'big', 'b', 'c', 'big', 'd'].map((v, i) => item(`k${i}`, v));
    await publishBisecting(publisher, items);
    expect(sends).toEqual([['a', 'big', 'b', 'c', 'big', 'd']]);
    expect(items.map((i) => i.error?.message)).toEqual([undefined, 'too large: k1', undefined, undefined, 'too large: k4', undefined]);
  });

  it('halves only what is neither stored nor refused when the broker refused the rest of the request', async () => {
    const sends: string[][] = [];
    const publisher: MessagePublisher = {
      connect: async () => undefined,
      disconnect: async () => undefined,
      publish: async (messages: readonly OutboundMessage[]) => {
        sends.push(messages.map((m) => String(m.value)));
        const refusals = messages.map((m) => (m.value === 'big' ? new PublishError('rejected', 'too large') : undefined));
        // The broker refuses any request holding 'bad' (and stores nothing of it).
        if (messages.some((m) => m.value === 'bad')) throw new PublishError('rejected', 'CORRUPT_MESSAGE', { refusals });
        const positions = messages.map((m, i) => (refusals[i] ? undefined : { topic: m.topic, partition: 0, offset: String(i) }));
        if (refusals.some(Boolean)) throw new PublishError('rejected', 'refused without a send', { positions, refusals });
        return positions as Array<{ topic: string; partition: number; offset: string }>;
      },
    };
    const items = ['a', 'big', 'bad', 'b'].map((v, i) => item(`k${i}`, v));
    await publishBisecting(publisher, items);
    expect(items.map((i) => i.error?.message)).toEqual([undefined, 'too large', 'CORRUPT_MESSAGE', undefined]);
    // 'big' never goes out again after its refusal.
    expect(sends.slice(1).flat()).not.toContain('big');
  });
});
