import { describe, expect, it } from 'vitest';
import { PublishError, type MessagePublisher, type OutboundMessage, type PublishedPosition } from '@eventbus/kafka';
import { CopyPublisher } from './copy-publisher.js';

const copy = (n: number, bytes = 10): OutboundMessage => ({ topic: 't.retry', key: 'k', value: 'x'.repeat(bytes), headers: { n: String(n) } });
const at = (messages: readonly OutboundMessage[]): PublishedPosition[] =>
  messages.map((m) => ({ topic: m.topic, partition: 0, offset: m.headers.n as string }));

/** A publisher whose publishes finish when the test says so, recording each call's copies. */
function gatedPublisher(answer: (messages: readonly OutboundMessage[]) => Promise<PublishedPosition[]> = async (m) => at(m)) {
  const calls: string[][] = [];
  const gates: Array<() => void> = [];
  const publisher: MessagePublisher = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    publish: async (messages) => {
      calls.push(messages.map((m) => m.headers.n as string));
      await new Promise<void>((r) => gates.push(r));
      return answer(messages);
    },
  };
  const open = async () => {
    while (gates.length === 0) await new Promise((r) => setImmediate(r));
    gates.shift()!();
  };
  return { publisher, calls, open };
}

describe('CopyPublisher', () => {
  it('sends the first copy at once and the copies asked for meanwhile together in the next publish', async () => {
    const { publisher, calls, open } = gatedPublisher();
    const copies = new CopyPublisher(publisher);
    const sent = [copies.send(copy(1)), copies.send(copy(2)), copies.send(copy(3))];
    await open();
    await open();
    const positions = await Promise.all(sent);
    expect(calls).toEqual([['1'], ['2', '3']]);
    expect(positions.map((p) => p.offset)).toEqual(['1', '2', '3']);
  });

  it('keeps a publish under its byte limit, however many copies wait', async () => {
    const { publisher, calls, open } = gatedPublisher();
    const copies = new CopyPublisher(publisher);
    const sent = [0, 1, 2, 3].map((n) => copies.send(copy(n, 200 * 1024)));
    for (let i = 0; i < 3; i++) await open();
    await Promise.all(sent);
    expect(calls).toEqual([['0'], ['1', '2'], ['3']]);
  });

  it('after a refusal of the whole publish, sends each copy alone so only the refused one fails', async () => {
    const { publisher, calls, open } = gatedPublisher(async (messages) => {
      if (messages.some((m) => m.headers.n === '3')) throw new PublishError('rejected', 'MESSAGE_TOO_LARGE');
      return at(messages);
    });
    const copies = new CopyPublisher(publisher);
    const sent = [1, 2, 3, 4].map((n) =>
      copies.send(copy(n)).then(
        (p) => p.offset,
        (e: PublishError) => e.kind,
      ),
    );
    for (let i = 0; i < 5; i++) await open();
    expect(await Promise.all(sent)).toEqual(['1', '2', 'rejected', '4']);
    expect(calls).toEqual([['1'], ['2', '3', '4'], ['2'], ['3'], ['4']].slice(0, 2).concat([['2'], ['3'], ['4']]));
  });

  it('fails every copy of a publish that failed for the broker, and sends the next ones', async () => {
    let fail = true;
    const { publisher, open } = gatedPublisher(async (messages) => {
      if (fail) throw new PublishError('transient', 'broker down');
      return at(messages);
    });
    const copies = new CopyPublisher(publisher);
    const failed = [copies.send(copy(1)), copies.send(copy(2))].map((p) => p.catch((e: PublishError) => e.kind));
    await open();
    await open();
    expect(await Promise.all(failed)).toEqual(['transient', 'transient']);
    fail = false;
    const later = copies.send(copy(3));
    await open();
    expect((await later).offset).toBe('3');
  });
});
