import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OffsetCommitter, type PartitionOffset } from './offset-committer.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** A committer whose commits are recorded, optionally held until released. */
function committer(options: { hold?: boolean; fail?: boolean } = {}) {
  const commits: Array<{ at: number; offsets: PartitionOffset[] }> = [];
  const releases: Array<() => void> = [];
  const errors: unknown[] = [];
  const c = new OffsetCommitter(
    async (offsets) => {
      commits.push({ at: Date.now(), offsets });
      if (options.fail) throw new Error('REBALANCE_IN_PROGRESS');
      if (options.hold) await new Promise<void>((resolve) => releases.push(resolve));
    },
    1000,
    (error) => errors.push(error),
  );
  return { c, commits, releases, errors };
}

describe('OffsetCommitter', () => {
  it('commits the next offset of each partition about once per interval, and nothing while idle', async () => {
    const { c, commits } = committer();
    const start = Date.now();
    c.start();
    c.resolve('t', 0, '41');
    c.resolve('t', 0, '42');
    c.resolve('t', 1, '7');
    await vi.advanceTimersByTimeAsync(999);
    expect(commits).toEqual([]); // the fetch loop never waits for a commit
    await vi.advanceTimersByTimeAsync(1);
    expect(commits).toEqual([
      {
        at: start + 1000,
        offsets: [
          { topic: 't', partition: 0, offset: '43' },
          { topic: 't', partition: 1, offset: '8' },
        ],
      },
    ]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(commits).toHaveLength(1); // nothing new resolved: no commit
    c.resolve('t', 1, '8');
    await vi.advanceTimersByTimeAsync(1000);
    expect(commits[1]!.offsets).toEqual([{ topic: 't', partition: 1, offset: '9' }]);
    await c.stop();
  });

  it('keeps offsets resolved during a commit for the next one, and a flush waits for the commit in flight', async () => {
    const { c, commits, releases } = committer({ hold: true });
    c.resolve('t', 0, '1');
    const first = c.flush();
    await vi.advanceTimersByTimeAsync(0);
    c.resolve('t', 0, '2'); // resolved while the first commit is on its way
    const second = c.flush();
    await vi.advanceTimersByTimeAsync(0);
    expect(commits).toHaveLength(1); // one commit in flight at a time
    releases.shift()!();
    await first;
    await vi.advanceTimersByTimeAsync(0);
    expect(commits[1]!.offsets).toEqual([{ topic: 't', partition: 0, offset: '3' }]);
    releases.shift()!();
    await second;
    expect(c.pendingOffsets()).toEqual([]);
  });

  it('after a rebalance forgets pending offsets and ignores late resolves for partitions no longer assigned', async () => {
    const { c, commits } = committer();
    c.resolve('t', 0, '10');
    c.resolve('t', 1, '20');
    c.assign({ t: [1, 2] });
    expect(c.pendingOffsets()).toEqual([]); // kafkajs restarts partition 1 from its committed offset
    c.resolve('t', 0, '11'); // a batch of partition 0 that outlived the rebalance
    c.resolve('t', 1, '15');
    c.resolve('t', 2, '5');
    await c.flush();
    expect(commits[0]!.offsets).toEqual([
      { topic: 't', partition: 1, offset: '16' },
      { topic: 't', partition: 2, offset: '6' },
    ]);
  });

  it("a partition's resolver resolves as resolve() does, across commits and rebalances", async () => {
    const { c, commits } = committer();
    const partition0 = c.partitionResolver('t', 0);
    const partition1 = c.partitionResolver('t', 1);
    partition0('10');
    c.resolve('t', 0, '11'); // the same pending entry
    partition1('20');
    await c.flush();
    partition0('12'); // after the commit: pending again
    c.assign({ t: [1] });
    partition0('13'); // a batch of partition 0 that outlived the rebalance
    partition1('21');
    await c.flush();
    expect(commits.map((commit) => commit.offsets)).toEqual([
      [
        { topic: 't', partition: 0, offset: '12' },
        { topic: 't', partition: 1, offset: '21' },
      ],
      [{ topic: 't', partition: 1, offset: '22' }],
    ]);
  });

  it('keeps offsets pending when a commit fails, reports the error and sends them with the next commit', async () => {
    const failing = committer({ fail: true });
    failing.c.start();
    failing.c.resolve('t', 0, '1');
    await vi.advanceTimersByTimeAsync(1000);
    expect(failing.errors).toHaveLength(1);
    expect(failing.c.pendingOffsets()).toEqual([{ topic: 't', partition: 0, offset: '2' }]);
    await expect(failing.c.stop()).rejects.toThrow(/REBALANCE/);
    await vi.advanceTimersByTimeAsync(5000);
    expect(failing.commits).toHaveLength(2); // the timer is gone after stop()
  });

  it('commits offsets past 2^53 exactly', async () => {
    const { c, commits } = committer();
    c.resolve('t', 0, '9007199254740993');
    await c.flush();
    expect(commits[0]!.offsets[0]!.offset).toBe('9007199254740994');
  });
});
