import { describe, expect, it } from 'vitest';
import { EventBusError } from '../errors.js';
import { DLQ_HEADER, decodeDlqHeaders, encodeDlqHeaders } from './dlq-headers.js';
import { RETRY_HEADER, decodeRetryHeaders, encodeRetryHeaders, type RetryInfo } from './retry-headers.js';

const original = { ce_id: 'e-1', ce_type: 'product.created', ce_tenantid: 't-1', 'x-custom': 'keep' };
const info: RetryInfo = {
  attempt: 3,
  dueAt: 1_700_000_001_234,
  origin: { topic: 'eventbus.product', partition: 7, offset: '9007199254740993', timestamp: 1_700_000_000_000 },
  firstFailureAt: 1_700_000_000_500,
  subscription: 'indexer',
};

describe('retry headers', () => {
  it('encodes the retry facts as strings next to the original headers and decodes them back', () => {
    const headers = encodeRetryHeaders(original, info);
    expect(headers).toEqual({
      ...original,
      'eventbus-attempt': '3',
      'eventbus-due-at': '1700000001234',
      'eventbus-original-topic': 'eventbus.product',
      'eventbus-original-partition': '7',
      'eventbus-original-offset': '9007199254740993',
      'eventbus-original-timestamp': '1700000000000',
      'eventbus-first-failure-at': '1700000000500',
      'eventbus-subscription': 'indexer',
    });
    expect(decodeRetryHeaders(headers)).toEqual({ info, original });
  });

  it('replaces the headers of an earlier retry instead of stacking them', () => {
    const first = encodeRetryHeaders(original, { ...info, attempt: 2 });
    const second = encodeRetryHeaders(first, { ...info, attempt: 3 });
    expect(second[RETRY_HEADER.attempt]).toBe('3');
    expect(decodeRetryHeaders(second).original).toEqual(original);
  });

  it('omits the subscription when every matching handler should run', () => {
    const { subscription: _, ...all } = info;
    const headers = encodeRetryHeaders(original, all);
    expect(headers).not.toHaveProperty(RETRY_HEADER.subscription);
    expect(decodeRetryHeaders(headers).info).toEqual(all);
  });

  it.each([
    [RETRY_HEADER.attempt, undefined],
    [RETRY_HEADER.attempt, '0'],
    [RETRY_HEADER.dueAt, 'soon'],
    [RETRY_HEADER.originalPartition, '-1'],
    [RETRY_HEADER.originalOffset, '12a'],
    [RETRY_HEADER.originalTopic, ''],
  ])('rejects a message whose %s is %j as undecodable', (name, value) => {
    const headers: Record<string, string> = encodeRetryHeaders(original, info);
    if (value === undefined) delete headers[name];
    else headers[name] = value;
    let thrown: unknown;
    try {
      decodeRetryHeaders(headers);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(EventBusError);
    expect((thrown as EventBusError).code).toBe('UNDECODABLE_MESSAGE');
    expect((thrown as EventBusError).message).toContain(name);
  });
});

describe('DLQ headers', () => {
  it('round-trips the failure facts and drops retry headers from the original ones', () => {
    const dlq = {
      origin: info.origin,
      groupId: 'search-indexer',
      errorClass: 'TypeError',
      errorMessage: 'boom',
      errorStack: 'TypeError: boom\n  at x',
      attempts: 6,
      firstFailureAt: 1,
      lastFailureAt: 2,
      subscription: 'indexer',
      retryTopic: 'eventbus.retry.search-indexer',
    };
    const headers = encodeDlqHeaders(original, dlq);
    expect(headers).toMatchObject({
      [DLQ_HEADER.originalTopic]: 'eventbus.product',
      [DLQ_HEADER.originalOffset]: '9007199254740993',
      [DLQ_HEADER.group]: 'search-indexer',
      [DLQ_HEADER.attempts]: '6',
      [DLQ_HEADER.errorClass]: 'TypeError',
      [DLQ_HEADER.errorMessage]: 'boom',
      'x-custom': 'keep',
    });
    expect(decodeDlqHeaders(headers)).toEqual({ info: dlq, original });
  });

  it('truncates long error messages and stacks', () => {
    const headers = encodeDlqHeaders(original, {
      origin: info.origin,
      groupId: 'g',
      errorClass: 'Error',
      errorMessage: 'm'.repeat(10_000),
      errorStack: 's'.repeat(20_000),
      attempts: 1,
      firstFailureAt: 1,
      lastFailureAt: 1,
      retryTopic: 'r',
    });
    expect(headers[DLQ_HEADER.errorMessage]).toHaveLength(4000);
    expect(headers[DLQ_HEADER.errorStack]).toHaveLength(8000);
  });
});
