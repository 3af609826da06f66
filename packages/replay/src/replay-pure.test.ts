import { describe, expect, it } from 'vitest';
import { decodeEvent, matchesEventType, TopicRouter, type StoredEvent } from '@eventbus/core';
import { decodeRetryHeaders } from '@eventbus/core';
import { patternToRegex } from './type-pattern-regex.js';
import { checkResumePoint, decodeResumeToken, encodeResumeToken, replayFilterHash } from './replay-cursor.js';
import { MAX_EVENT_IDS, resolveReplayFilter } from './replay-filter.js';
import { RatePacer } from './rate-pacer.js';
import { replayMessage } from './replay-message.js';

describe('patternToRegex', () => {
  const types = [
    'product.created',
    'product.updated',
    'product.variant.created',
    'shopify.product.synced',
    'pricechange.applied',
    'a.b.c.d',
    'product_x.created',
    'productx.created',
  ];
  const patterns = [
    'product.created',
    'product.*',
    '*.created',
    'product.#',
    '#.created',
    '#',
    'product.#.created',
    '*.*',
    '*.product.*',
    '#.b.#'.replace('.#', ''),
    'a.#.d',
    'shopify.#',
  ];
  it('agrees with matchesEventType on every pair', () => {
    for (const pattern of patterns) {
      const re = new RegExp(patternToRegex(pattern));
      for (const type of types) expect([pattern, type, re.test(type)]).toEqual([pattern, type, matchesEventType(pattern, type)]);
    }
  });
  it('refuses what is not a pattern, injection attempts included', () => {
    for (const bad of ["' OR 1=1 --", 'product.(.*)', '"; DROP TABLE x', 'a.#.#', '', 'x'.repeat(10_000), 'a\u0000b']) {
      expect(() => patternToRegex(bad)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
  });
});

describe('resume tokens', () => {
  const filterA = resolveReplayFilter({ tenantId: 'tenant-a', eventTypes: ['product.*'], fromDate: new Date('2026-01-01') });
  const point = {
    replayId: '01890a5d-ac96-774b-bcce-b302099a8057',
    cursor: { createdAt: '2026-01-02T03:04:05.123456Z', id: '01890a5d-ac96-774b-bcce-b302099a8058' },
    tenantId: 'tenant-a',
    filterHash: replayFilterHash(filterA),
    upperBound: '2026-11-26T20:00:00.000001Z',
  };
  it('round-trip, with tenant, filter hash and upper bound', () => expect(decodeResumeToken(encodeResumeToken(point))).toEqual(point));
  it('refuse garbage and tampered tokens', () => {
    const encode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const fields = { v: 2, r: point.replayId, t: point.cursor.createdAt, i: point.cursor.id, n: point.tenantId, f: point.filterHash, u: point.upperBound };
    for (const bad of [
      '',
      'not a token',
      encode({ v: 1 }),
      encode({ ...fields, t: "x' OR 1=1" }),
      encode({ ...fields, u: 'infinity' }),
      encode({ ...fields, f: 'zz' }),
      encode({ ...fields, n: '' }),
    ]) {
      expect(() => decodeResumeToken(bad)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
    // A token of the first format (no tenant, no filters): refused with what to do instead.
    expect(() => decodeResumeToken(encode({ v: 1, r: point.replayId, t: point.cursor.createdAt, i: point.cursor.id }))).toThrow(/--after/);
  });
  it('belong to their tenant and filters: another tenant or other filters are refused', () => {
    expect(() => checkResumePoint(point, filterA)).not.toThrow();
    // Same filters written differently: the same hash.
    expect(() =>
      checkResumePoint(point, resolveReplayFilter({ tenantId: 'tenant-a', eventTypes: ['product.*'], fromDate: new Date('2026-01-01T00:00:00Z') })),
    ).not.toThrow();
    expect(() => checkResumePoint(point, resolveReplayFilter({ tenantId: 'tenant-b', eventTypes: ['product.*'], fromDate: new Date('2026-01-01') }))).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(/tenant "tenant-a", not "tenant-b"/) }),
    );
    for (const other of [
      { tenantId: 'tenant-a', eventTypes: ['product.#'], fromDate: new Date('2026-01-01') },
      { tenantId: 'tenant-a', eventTypes: ['product.*'] },
      { tenantId: 'tenant-a', eventTypes: ['product.*'], fromDate: new Date('2026-01-01'), toDate: new Date('2026-02-01') },
      { tenantId: 'tenant-a', eventTypes: ['product.*'], fromDate: new Date('2026-01-01'), correlationId: 'c' },
      { tenantId: 'tenant-a', eventTypes: ['product.*'], fromDate: new Date('2026-01-01'), eventIds: [point.cursor.id] },
    ]) {
      expect(() => checkResumePoint(point, resolveReplayFilter(other))).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(/other filters/) }),
      );
    }
  });
});

describe('replayFilterHash', () => {
  it('of a filter without event ids is the five-field hash that printed tokens carry; with ids it depends on the set, not on case, order or repeats', () => {
    // sha256 of JSON ["tenant-a",["^product\\.[^.]+$"],"2026-01-01T00:00:00.000Z",null,null], first 16 hex digits.
    expect(replayFilterHash(filterOf({}))).toBe('7195339ab8f4739b');
    const a = '01890a5d-ac96-774b-bcce-b302099a8057';
    const b = '01890a5d-ac96-774b-bcce-b302099a8058';
    const withIds = replayFilterHash(filterOf({ eventIds: [a, b] }));
    expect(withIds).not.toBe(replayFilterHash(filterOf({})));
    expect(replayFilterHash(filterOf({ eventIds: [b.toUpperCase(), a, b] }))).toBe(withIds);
    expect(replayFilterHash(filterOf({ eventIds: [a] }))).not.toBe(withIds);
  });
  function filterOf(extra: { eventIds?: string[] }) {
    return resolveReplayFilter({ tenantId: 'tenant-a', eventTypes: ['product.*'], fromDate: new Date('2026-01-01'), ...extra });
  }
});

describe('resolveReplayFilter', () => {
  it('accepts a plain filter and turns patterns into regexes', () => {
    const f = resolveReplayFilter({ tenantId: "t' OR 1=1 --", eventTypes: ['product.*'], fromDate: new Date('2026-01-01'), toDate: new Date('2026-02-01') });
    expect(f).toMatchObject({ tenantId: "t' OR 1=1 --", typeRegexes: ['^product\\.[^.]+$'], correlationId: null });
  });
  it('refuses NUL bytes, blank or huge ids, invalid dates and reversed windows', () => {
    const bad = [
      { tenantId: 'a\u0000b' },
      { tenantId: ' ' },
      { tenantId: 'x'.repeat(10_001) },
      { tenantId: 't', fromDate: new Date('nope') },
      { tenantId: 't', fromDate: new Date('2026-02-01'), toDate: new Date('2026-01-01') },
      { tenantId: 't', correlationId: '\u0000' },
    ];
    for (const filter of bad) expect(() => resolveReplayFilter(filter)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
  it('event ids: uuids, lowercased, repeats dropped, sorted; absent means any event', () => {
    const a = '01890A5D-AC96-774B-BCCE-B302099A8057';
    const b = '01890a5d-ac96-774b-bcce-b302099a8056';
    expect(resolveReplayFilter({ tenantId: 't', eventIds: [a, b, a.toLowerCase()] }).eventIds).toEqual([b, a.toLowerCase()]);
    expect(resolveReplayFilter({ tenantId: 't' }).eventIds).toBeNull();
  });
  it('event ids: refuses an empty list (it is not "every event"), a non-uuid, and more than MAX_EVENT_IDS', () => {
    const expectRefused = (eventIds: readonly string[], message: RegExp) =>
      expect(() => resolveReplayFilter({ tenantId: 't', eventIds })).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIG', details: expect.objectContaining({ setting: 'eventIds' }), message: expect.stringMatching(message) }),
      );
    expectRefused([], /at least one event id/);
    expectRefused(["' OR 1=1 --"], /expected event ids \(uuids\), got "' OR 1=1 --"/);
    expectRefused(['01890a5d-ac96-774b-bcce-b302099a805'], /uuids/);
    const many = Array.from({ length: MAX_EVENT_IDS + 1 }, (_, i) => `01890a5d-ac96-774b-bcce-${i.toString(16).padStart(12, '0')}`);
    expectRefused(many, new RegExp(`at most ${MAX_EVENT_IDS} event ids`));
    expect(resolveReplayFilter({ tenantId: 't', eventIds: many.slice(1) }).eventIds).toHaveLength(MAX_EVENT_IDS);
  });
});

describe('RatePacer', () => {
  it('spaces chunks to the rate and sizes chunks to a tenth of a second', async () => {
    let now = 0;
    const pacer = new RatePacer(100, 500, () => now);
    expect(pacer.chunkSize).toBe(10);
    expect(pacer.delayMs()).toBe(0);
    await pacer.take(10);
    expect(pacer.delayMs()).toBe(100);
    now = 60;
    expect(pacer.delayMs()).toBe(40);
    expect(new RatePacer(undefined, 500).chunkSize).toBe(500);
    expect(() => new RatePacer(0, 500)).toThrow(/positive/);
  });
});

describe('replayMessage', () => {
  const event: StoredEvent = {
    id: '01890a5d-ac96-774b-bcce-b302099a8057',
    tenantId: 't-1',
    projectId: null,
    eventKey: 'k-1',
    eventType: 'product.created',
    version: 1,
    payloadJson: '{"a":1}',
    correlationId: 'c-1',
    causationId: null,
    createdAt: new Date('2026-01-01T00:00:00Z'),
    traceparent: null,
    tracestate: null,
  };
  const router = new TopicRouter({ prefix: 'eb.' });
  it('is the relay format plus ce_replayid, on the event topic', () => {
    const m = replayMessage(event, { kind: 'event-topics', router }, 'r-1');
    expect(m.topic).toBe('eb.product');
    expect(m.key).toBe('t-1');
    expect(decodeEvent(m.value as string, m.headers)).toMatchObject({ id: event.id, eventType: 'product.created', payload: { a: 1 } });
    expect(m.headers.ce_replayid).toBe('r-1');
  });
  it('targets a group as a due-now retry that its consumer decodes', () => {
    const m = replayMessage(event, { kind: 'group', groupId: 'billing', router }, 'r-1', 5000);
    expect(m.topic).toBe('eb.retry.billing');
    const { info, original } = decodeRetryHeaders(m.headers);
    expect(info).toMatchObject({ attempt: 1, dueAt: 5000, origin: { topic: 'eb.product', partition: 0 } });
    expect(info.subscription).toBeUndefined();
    expect(original.ce_replayid).toBe('r-1');
    expect(decodeEvent(m.value as string, original).id).toBe(event.id);
  });
});
