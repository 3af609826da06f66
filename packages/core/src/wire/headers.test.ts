import { describe, expect, it } from 'vitest';
import { EventBusError } from '../errors.js';
import {
  coordinatesOnlyDlqRecord,
  decodeDropped,
  DLQ_HEADER,
  decodeDlqHeaders,
  encodeDlqHeaders,
  MAX_COORDINATES_ONLY_PART_BYTES,
  MAX_DLQ_ERROR_MESSAGE_BYTES,
  MAX_DLQ_ERROR_STACK_BYTES,
  truncatedDlqHeaders,
} from './dlq-headers.js';
import { RETRY_HEADER, decodeRetryHeaders, encodeRetryHeaders, type RetryInfo } from './retry-headers.js';
import { HEADER } from './message-format.js';

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
    expect(Buffer.byteLength(headers[DLQ_HEADER.errorMessage]!)).toBe(MAX_DLQ_ERROR_MESSAGE_BYTES);
    expect(headers[DLQ_HEADER.errorMessage]!.endsWith('…')).toBe(true);
    expect(Buffer.byteLength(headers[DLQ_HEADER.errorStack]!)).toBe(MAX_DLQ_ERROR_STACK_BYTES);
  });

  it('truncates by UTF-8 bytes at a character boundary, and leaves a message within the limit as it is', () => {
    const facts = { origin: info.origin, groupId: 'g', errorClass: 'Error', attempts: 1, firstFailureAt: 1, lastFailureAt: 1, retryTopic: 'r' };
    // 3-byte characters: 4000 of them are 12,000 bytes.
    const cut = encodeDlqHeaders(original, { ...facts, errorMessage: '語'.repeat(4000) })[DLQ_HEADER.errorMessage]!;
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(MAX_DLQ_ERROR_MESSAGE_BYTES);
    expect(cut).toMatch(/^語+…$/u);
    const exact = 'x'.repeat(MAX_DLQ_ERROR_MESSAGE_BYTES);
    expect(encodeDlqHeaders(original, { ...facts, errorMessage: exact })[DLQ_HEADER.errorMessage]).toBe(exact);
  });

  it('makes a truncated record: DLQ and identity headers only, with the refused size, which decodes', () => {
    const copy = encodeDlqHeaders(
      { ...original, ce_id: 'e-1', ce_type: 'order.placed', ce_tenantid: 't-1', ce_eventkey: 'k', 'x-big': 'b'.repeat(1000) },
      { origin: info.origin, groupId: 'g', errorClass: 'Error', errorMessage: 'boom', attempts: 2, firstFailureAt: 1, lastFailureAt: 2, retryTopic: 'r' },
    );
    const marker = truncatedDlqHeaders(copy, 1_100_000);
    expect(marker['x-big']).toBeUndefined();
    expect(marker['x-custom']).toBeUndefined();
    expect(marker).toMatchObject({ ce_id: 'e-1', ce_type: 'order.placed', ce_tenantid: 't-1', ce_eventkey: 'k', [DLQ_HEADER.truncated]: '1100000' });
    const { info: decoded } = decodeDlqHeaders(marker as Record<string, string>);
    expect(decoded).toMatchObject({ origin: info.origin, groupId: 'g', attempts: 2, refusedCopyBytes: 1_100_000 });
  });

  it('makes a coordinates-only record: oversize key and identity headers and the stack left out and named, the coordinates kept, which decodes', () => {
    const bigTenant = 't'.repeat(MAX_COORDINATES_ONLY_PART_BYTES + 1);
    const copy = encodeDlqHeaders(
      { ce_id: 'e-1', ce_type: 'order.placed', ce_tenantid: bigTenant, ce_eventkey: 'k', 'x-big': 'b'.repeat(1000) },
      {
        origin: info.origin,
        groupId: 'g',
        errorClass: 'Error',
        errorMessage: 'boom',
        errorStack: 's'.repeat(300),
        attempts: 2,
        firstFailureAt: 1,
        lastFailureAt: 2,
        retryTopic: 'r',
      },
    );
    const truncated = { key: Buffer.from(bigTenant), headers: truncatedDlqHeaders(copy, 1_100_000) };
    const record = coordinatesOnlyDlqRecord(truncated);
    expect(record.key).toEqual(Buffer.alloc(0));
    expect(record.value).toEqual(Buffer.alloc(0));
    expect(record.headers[HEADER.tenantId]).toBeUndefined();
    expect(record.headers[DLQ_HEADER.errorStack]).toBeUndefined();
    expect(record.headers).toMatchObject({
      ce_id: 'e-1',
      ce_type: 'order.placed',
      ce_eventkey: 'k',
      [DLQ_HEADER.errorMessage]: 'boom',
      [DLQ_HEADER.truncated]: '1100000',
    });
    expect(record.headers[DLQ_HEADER.dropped]).toBe(`key=${bigTenant.length},ce_tenantid=${bigTenant.length},${DLQ_HEADER.errorStack}=300`);
    const { info: decoded, original } = decodeDlqHeaders(record.headers as Record<string, string>);
    expect(decoded).toMatchObject({
      origin: info.origin,
      groupId: 'g',
      errorClass: 'Error',
      refusedCopyBytes: 1_100_000,
      dropped: [
        { name: 'key', bytes: bigTenant.length },
        { name: 'ce_tenantid', bytes: bigTenant.length },
        { name: DLQ_HEADER.errorStack, bytes: 300 },
      ],
    });
    expect(original).toEqual({ ce_id: 'e-1', ce_type: 'order.placed', ce_eventkey: 'k' });
    // A key and identity headers within the limit stay (exactly at it included).
    const small = coordinatesOnlyDlqRecord({ key: 'acme', headers: { ...truncated.headers, ce_tenantid: 'a'.repeat(MAX_COORDINATES_ONLY_PART_BYTES) } });
    expect(small.key).toBe('acme');
    expect(small.headers.ce_tenantid).toHaveLength(MAX_COORDINATES_ONLY_PART_BYTES);
    expect(decodeDropped(small.headers[DLQ_HEADER.dropped] as string)).toEqual([{ name: DLQ_HEADER.errorStack, bytes: 300 }]);
  });

  it('reads a dropped header leniently: parts that do not parse are left out', () => {
    expect(decodeDropped('')).toEqual([]);
    expect(decodeDropped('key=12,odd,x=-1,y=2.5,a=b=3')).toEqual([
      { name: 'key', bytes: 12 },
      { name: 'a=b', bytes: 3 },
    ]);
  });
});
