import { describe, expect, it } from 'vitest';
import { TopicCatalog, type TopicAdmin } from './topic-catalog.js';

/** An admin over an in-memory set of topics, counting its calls. */
function memoryAdmin(initial: Record<string, number>, options: { describeFails?: boolean } = {}) {
  const topics = new Map(Object.entries(initial));
  const calls = { list: 0, create: 0, describe: 0 };
  const admin: TopicAdmin = {
    listTopics: async () => {
      calls.list++;
      return [...topics.keys()];
    },
    createTopics: async (names) => {
      calls.create++;
      for (const n of names) if (!topics.has(n)) topics.set(n, 1_048_588);
    },
    maxMessageBytes: async (names) => {
      calls.describe++;
      if (options.describeFails) throw new Error('TOPIC_AUTHORIZATION_FAILED');
      return new Map(names.map((n) => [n, topics.get(n)!]));
    },
  };
  return { admin, topics, calls };
}

describe('TopicCatalog', () => {
  it('asks once per topic, then answers from the cache', async () => {
    const { admin, calls } = memoryAdmin({ a: 4096, b: 1_048_588 });
    const catalog = new TopicCatalog(async () => admin, { createTopics: false });
    expect(await catalog.facts(['a', 'b'])).toEqual(
      new Map([
        ['a', { exists: true, maxMessageBytes: 4096 }],
        ['b', { exists: true, maxMessageBytes: 1_048_588 }],
      ]),
    );
    await catalog.facts(['a', 'b']);
    expect(calls).toEqual({ list: 1, create: 0, describe: 1 });
  });

  it('knownFacts answers from the cache only: the topics it would have to ask about are left out, and nothing is asked', async () => {
    let now = 1000;
    const { admin, calls } = memoryAdmin({ a: 4096 });
    const catalog = new TopicCatalog(async () => admin, { createTopics: false, missingForMs: 5000, limitForMs: 60_000, now: () => now });
    expect(catalog.knownFacts(['a'])).toEqual(new Map());
    await catalog.facts(['a', 'gone']);
    expect(catalog.knownFacts(['a', 'gone', 'new'])).toEqual(
      new Map([
        ['a', { exists: true, maxMessageBytes: 4096 }],
        ['gone', { exists: false, maxMessageBytes: undefined }],
      ]),
    );
    now += 5000; // "missing" is due to be asked again, the limit not yet
    expect([...catalog.knownFacts(['a', 'gone']).keys()]).toEqual(['a']);
    now += 55_000; // the limit is due too
    expect(catalog.knownFacts(['a', 'gone'])).toEqual(new Map());
    expect(calls).toEqual({ list: 1, create: 0, describe: 1 });
  });

  it('holds "missing" for a while, then sees a topic created meanwhile', async () => {
    let now = 1000;
    const { admin, topics, calls } = memoryAdmin({});
    const catalog = new TopicCatalog(async () => admin, { createTopics: false, missingForMs: 5000, now: () => now });
    expect((await catalog.facts(['gone'])).get('gone')).toEqual({ exists: false, maxMessageBytes: undefined });
    topics.set('gone', 2048);
    now += 4999;
    expect((await catalog.facts(['gone'])).get('gone')!.exists).toBe(false);
    expect(calls.list).toBe(1);
    now += 1;
    expect((await catalog.facts(['gone'])).get('gone')).toEqual({ exists: true, maxMessageBytes: 2048 });
    expect(calls.list).toBe(2);
  });

  it('creates missing topics when allowed, and again after forget (a topic deleted under the publisher)', async () => {
    const { admin, topics, calls } = memoryAdmin({});
    const catalog = new TopicCatalog(async () => admin, { createTopics: true });
    expect((await catalog.facts(['t'])).get('t')!.exists).toBe(true);
    topics.delete('t');
    await catalog.facts(['t']);
    expect(calls.create).toBe(1);
    catalog.forget(['t']);
    await catalog.facts(['t']);
    expect(calls.create).toBe(2);
    expect(topics.has('t')).toBe(true);
    expect(calls.list).toBe(0);
  });

  it('goes without a size limit when the broker will not describe the topic, and asks again only after limitForMs or forgetLimits', async () => {
    let now = 0;
    const { admin, calls } = memoryAdmin({ t: 4096 }, { describeFails: true });
    const catalog = new TopicCatalog(async () => admin, { createTopics: false, limitForMs: 60_000, now: () => now });
    expect((await catalog.facts(['t'])).get('t')).toEqual({ exists: true, maxMessageBytes: undefined });
    await catalog.facts(['t']);
    expect(calls.describe).toBe(1);
    catalog.forgetLimits(['t']);
    await catalog.facts(['t']);
    expect(calls.describe).toBe(2);
    now += 60_000;
    await catalog.facts(['t']);
    expect(calls.describe).toBe(3);
  });

  it('recheck finds a topic deleted since it was seen: recreated when allowed, else missing from then on', async () => {
    const created = memoryAdmin({ t: 4096 });
    const creating = new TopicCatalog(async () => created.admin, { createTopics: true });
    await creating.facts(['t']);
    created.topics.delete('t');
    await creating.recheck(['t']);
    expect(created.topics.has('t')).toBe(true);
    const listed = memoryAdmin({ t: 4096 });
    const notCreating = new TopicCatalog(async () => listed.admin, { createTopics: false });
    expect((await notCreating.facts(['t'])).get('t')).toEqual({ exists: true, maxMessageBytes: 4096 });
    listed.topics.delete('t');
    await notCreating.recheck(['t']);
    expect((await notCreating.facts(['t'])).get('t')!.exists).toBe(false);
    expect(listed.topics.has('t')).toBe(false);
  });
});
