import { describe, expect, it } from 'vitest';
import { OrderedCommits } from './ordered-commits.js';

function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function setup() {
  const committed: string[] = [];
  const rewinds: Array<{ partition: number; offset: string; error: string }> = [];
  const commits = new OrderedCommits(
    (_topic, partition) => (offset) => void committed.push(`${partition}:${offset}`),
    (_topic, partition, offset, error) => void rewinds.push({ partition, offset, error: (error as Error).message }),
  );
  return { commits, committed, rewinds };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('OrderedCommits', () => {
  it('passes an offset on at once when nothing of its partition waits', () => {
    const { commits, committed } = setup();
    const epoch = commits.partition('t', 0).epoch;
    expect(commits.partition('t', 0).resolve('0', epoch)).toBe(true);
    expect(commits.partition('t', 0).resolve('1', epoch)).toBe(true);
    expect(committed).toEqual(['0:0', '0:1']);
  });

  it('holds an offset until its copy is acknowledged, and every later offset of the partition behind it, across batches', async () => {
    const { commits, committed } = setup();
    const copy = deferred();
    const first = commits.partition('t', 0).epoch;
    commits.partition('t', 0).resolve('0', first);
    commits.partition('t', 0).resolve('1', first, copy.promise);
    commits.partition('t', 0).resolve('2', first);
    const next = commits.partition('t', 0).epoch; // the partition's next batch, fetched while the copy is on its way
    commits.partition('t', 0).resolve('3', next);
    commits.partition('t', 1).resolve('7', commits.partition('t', 1).epoch); // another partition does not wait
    await flush();
    expect(committed).toEqual(['0:0', '1:7']);
    expect(commits.waiting()).toHaveLength(1);
    copy.resolve();
    await flush();
    expect(committed).toEqual(['0:0', '1:7', '0:1', '0:2', '0:3']);
    expect(commits.waiting()).toHaveLength(0);
  });

  it('names the partition as backed up once the limit of waiting offsets is reached, until they went on', async () => {
    const { commits, committed } = setup();
    const copy = deferred();
    const epoch = commits.partition('t', 0).epoch;
    commits.partition('t', 0).resolve('0', epoch, copy.promise);
    commits.partition('t', 0).resolve('1', epoch);
    expect(commits.partition('t', 0).backlog(3)).toBeUndefined();
    commits.partition('t', 0).resolve('2', epoch);
    const backlog = commits.partition('t', 0).backlog(3);
    expect(backlog).toBeInstanceOf(Promise);
    copy.resolve();
    await backlog;
    expect(committed).toEqual(['0:0', '0:1', '0:2']);
    await flush();
    expect(commits.partition('t', 0).backlog(1)).toBeUndefined();
  });

  it('keeps the order when a later copy is acknowledged first', async () => {
    const { commits, committed } = setup();
    const early = deferred();
    const late = deferred();
    const epoch = commits.partition('t', 0).epoch;
    commits.partition('t', 0).resolve('0', epoch, early.promise);
    commits.partition('t', 0).resolve('1', epoch, late.promise);
    late.resolve();
    await flush();
    expect(committed).toEqual([]);
    early.resolve();
    await flush();
    expect(committed).toEqual(['0:0', '0:1']);
  });

  it('rewinds to an offset whose copy was refused, commits nothing from there on, and ignores the stale batches', async () => {
    const { commits, committed, rewinds } = setup();
    const refused = deferred();
    const epoch = commits.partition('t', 0).epoch;
    commits.partition('t', 0).resolve('4', epoch);
    commits.partition('t', 0).resolve('5', epoch, refused.promise);
    commits.partition('t', 0).resolve('6', epoch, Promise.resolve());
    commits.partition('t', 0).resolve('7', epoch);
    refused.reject(new Error('not acknowledged'));
    await flush();
    expect(committed).toEqual(['0:4']);
    expect(rewinds).toEqual([{ partition: 0, offset: '5', error: 'not acknowledged' }]);
    // A batch fetched before the rewind goes stale: its resolves do nothing.
    expect(commits.partition('t', 0).isStale(epoch)).toBe(true);
    expect(commits.partition('t', 0).resolve('8', epoch)).toBe(false);
    // Read again from 5: a batch of the new epoch commits in order.
    const again = commits.partition('t', 0).epoch;
    expect(commits.partition('t', 0).resolve('5', again, Promise.resolve())).toBe(true);
    commits.partition('t', 0).resolve('6', again);
    await flush();
    expect(committed).toEqual(['0:4', '0:5', '0:6']);
  });

  it('drops what waits at a new generation, and the batches of the old one go stale', async () => {
    const { commits, committed, rewinds } = setup();
    const copy = deferred();
    const old = commits.partition('t', 0).epoch;
    commits.partition('t', 0).resolve('0', old, copy.promise);
    commits.reset();
    copy.reject(new Error('refused after the rejoin'));
    await flush();
    expect(committed).toEqual([]);
    expect(rewinds).toEqual([]); // the next owner reads from the committed offset: no seek
    expect(commits.partition('t', 0).resolve('1', old)).toBe(false);
    expect(commits.partition('t', 0).resolve('1', commits.partition('t', 0).epoch)).toBe(true);
    expect(committed).toEqual(['0:1']);
  });
});
