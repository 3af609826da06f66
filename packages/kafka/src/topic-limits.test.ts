import { describe, expect, it } from 'vitest';
import { COPY_TOPIC_HEADROOM_BYTES, copyTopicLimit, warnAboutCopyTopicLimits } from './topic-limits.js';

describe('copyTopicLimit', () => {
  it('is the largest of the copied topics’ limits and the broker’s, plus the headroom', () => {
    expect(copyTopicLimit([], 1_048_588)).toBe(1_048_588 + COPY_TOPIC_HEADROOM_BYTES);
    expect(copyTopicLimit([500_000, 2_000_000], 1_048_588)).toBe(2_000_000 + COPY_TOPIC_HEADROOM_BYTES);
    // A topic below the broker's limit does not lower it: a topic found later by a pattern has the broker's.
    expect(copyTopicLimit([4096], 1_048_588)).toBe(1_048_588 + COPY_TOPIC_HEADROOM_BYTES);
  });
});

describe('warnAboutCopyTopicLimits', () => {
  it('warns once per copy topic below the need, with the command that raises it, and when the limits are unknown', () => {
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (fields: Record<string, unknown>, message: string) => void warnings.push({ fields, message }) };
    warnAboutCopyTopicLimits({ neededBytes: 1_114_124, shortfalls: [{ topic: 'eventbus.dlq.g', maxMessageBytes: 16_384 }] }, logger, { groupId: 'g' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fields).toEqual({ groupId: 'g', topic: 'eventbus.dlq.g', maxMessageBytes: 16_384, neededBytes: 1_114_124 });
    expect(warnings[0]!.message).toContain('--entity-name eventbus.dlq.g --add-config max.message.bytes=1114124');
    warnAboutCopyTopicLimits({ neededBytes: undefined, shortfalls: [], unknownBecause: 'TOPIC_AUTHORIZATION_FAILED' }, logger, {});
    expect(warnings[1]!.message).toContain('could not read max.message.bytes');
    warnAboutCopyTopicLimits({ neededBytes: 1_114_124, shortfalls: [], unknownBecause: 'CLUSTER_AUTHORIZATION_FAILED' }, logger, {});
    expect(warnings[2]!.message).toContain('sized and checked against 1114124 bytes from what could be read');
    warnAboutCopyTopicLimits({ neededBytes: 1, shortfalls: [] }, logger, {});
    warnAboutCopyTopicLimits(undefined, logger, {});
    expect(warnings).toHaveLength(3);
  });
});
