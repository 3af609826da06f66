import { describe, expect, it } from 'vitest';
import { PartitionPauses } from './partition-pauses.js';

/** A stand-in for kafkajs' per-batch pause: records the pause and resume calls it receives. */
function kafkajsPause(log: string[], name: string) {
  return () => {
    log.push(`pause ${name}`);
    return () => void log.push(`resume ${name}`);
  };
}

describe('PartitionPauses', () => {
  it('resumes a partition only when every pause of it was resumed, each resume counting once', () => {
    const log: string[] = [];
    const pauses = new PartitionPauses();
    const first = pauses.pause('t', 0, kafkajsPause(log, 't/0'));
    const second = pauses.pause('t', 0, kafkajsPause(log, 't/0'));
    first();
    first();
    expect(log).toEqual(['pause t/0']);
    second();
    expect(log).toEqual(['pause t/0', 'resume t/0']);
    pauses.pause('t', 0, kafkajsPause(log, 't/0'))();
    expect(log).toEqual(['pause t/0', 'resume t/0', 'pause t/0', 'resume t/0']);
  });

  it('keeps partitions apart', () => {
    const log: string[] = [];
    const pauses = new PartitionPauses();
    const a = pauses.pause('t', 0, kafkajsPause(log, 't/0'));
    pauses.pause('t', 1, kafkajsPause(log, 't/1'))();
    a();
    expect(log).toEqual(['pause t/0', 'pause t/1', 'resume t/1', 'resume t/0']);
  });

  it('after forgetAll (kafkajs restarted its consumer) pauses the partition again, and an old resume touches nothing', () => {
    const log: string[] = [];
    const pauses = new PartitionPauses();
    const old = pauses.pause('t', 0, kafkajsPause(log, 'old t/0'));
    pauses.forgetAll();
    const fresh = pauses.pause('t', 0, kafkajsPause(log, 'new t/0'));
    old();
    expect(log).toEqual(['pause old t/0', 'pause new t/0']);
    fresh();
    expect(log).toEqual(['pause old t/0', 'pause new t/0', 'resume new t/0']);
  });
});
