import { describe, expect, it } from 'vitest';
import { backoffDelayMs, reconnectDelayMs, resolveRetryConfig, DEFAULT_RETRY_CONFIG } from './retry.js';
import { eventTypeMatcher, eventTypePatternProblem, eventTypeProblem, matchesEventType } from './event-type.js';
import { TopicRouter, patternsMayOverlap } from './routing.js';
import { decodeEvent, encodeEvent, HEADER } from './wire/message-format.js';
import { EventBusError } from './errors.js';
import { uuidv7 } from './uuid.js';

describe('reconnectDelayMs', () => {
  it('doubles from initialMs up to maxMs, and stays finite after days of failures', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => reconnectDelayMs(a, { initialMs: 100, maxMs: 5000 }))).toEqual([100, 200, 400, 800, 1600, 3200, 5000]);
    expect(reconnectDelayMs(1_000_000, { initialMs: 100, maxMs: 5000 })).toBe(5000);
  });
  it('with jitter, spreads each delay over ±20%', () => {
    const delays = Array.from({ length: 200 }, () => reconnectDelayMs(3, { initialMs: 100, maxMs: 5000, jitter: true }));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(640);
    expect(Math.max(...delays)).toBeLessThanOrEqual(960);
    expect(new Set(delays).size).toBeGreaterThan(100);
  });
});

describe('retry config', () => {
  it('defaults to the seed: 1 s ×2 up to 60 s, 5 retries', () => {
    expect(resolveRetryConfig()).toEqual({ maxRetries: 5, initialDelayMs: 1000, maxDelayMs: 60_000, backoffMultiplier: 2 });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelayMs(DEFAULT_RETRY_CONFIG, n))).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
  });
  it('names the bad setting', () => {
    expect(() => resolveRetryConfig({ maxRetries: 1.5 })).toThrow(/retryConfig.maxRetries: expected an integer from 0 to 100, got 1.5/);
    expect(() => resolveRetryConfig({ initialDelayMs: 5000, maxDelayMs: 100 })).toThrow(/retryConfig.maxDelayMs: expected a value >= initialDelayMs/);
    expect(() => resolveRetryConfig({ backoffMultiplier: 0.5 })).toThrow(EventBusError);
  });
});

describe('event types and wildcard patterns', () => {
  it.each([
    ['product.created', 'product.created', true],
    ['product.*', 'product.created', true],
    ['product.*', 'product.variant.created', false],
    ['*.created', 'product.created', true],
    ['*.created', 'shopify.product.created', false],
    ['product.#', 'product.variant.created', true],
    ['product.#', 'product.created', true],
    ['product.#', 'pricechange.applied', false],
    ['#.created', 'shopify.product.created', true],
    ['#.created', 'product.updated', false],
    ['#', 'anything.at.all', true],
    ['shopify.*.synced', 'shopify.product.synced', true],
    ['shopify.*.synced', 'shopify.product.created', false],
    ['product.created', 'product.created.v2', false],
  ])('%s matches %s: %s', (pattern, type, expected) => {
    expect(matchesEventType(pattern, type)).toBe(expected);
    expect(eventTypeMatcher([pattern])(type)).toBe(expected);
  });
  it('validates names and patterns', () => {
    expect(eventTypeProblem('pricechange.applied')).toBeUndefined();
    expect(eventTypeProblem('shopify.product.synced')).toBeUndefined();
    expect(eventTypeProblem('product')).toMatch(/at least 2/);
    expect(eventTypeProblem('Product.created')).toMatch(/lowercase/);
    expect(eventTypePatternProblem('product.#.#')).toMatch(/only once/);
    expect(eventTypePatternProblem('product.*')).toBeUndefined();
    expect(eventTypePatternProblem('Product.*')).toMatch(/lowercase/);
  });
});

describe('topic routing', () => {
  it('routes by family under a prefix, with overrides that win in order', () => {
    const router = new TopicRouter({ prefix: 'eb.', routes: { 'media.*': 'eb.media-large', 'audit.#': 'eb.audit' } });
    expect(router.topicFor('product.created')).toBe('eb.product');
    expect(router.topicFor('shopify.product.synced')).toBe('eb.shopify');
    expect(router.topicFor('media.uploaded')).toBe('eb.media-large');
    expect(router.topicFor('audit.user.login')).toBe('eb.audit');
  });
  it('finds every topic a consumer pattern may need', () => {
    const router = new TopicRouter({ prefix: 'eb.', routes: { 'media.*': 'eb.media-large' } });
    expect(router.topicsFor(['product.*', 'pricechange.applied'])).toEqual({ topics: ['eb.pricechange', 'eb.product'] });
    expect(router.topicsFor(['media.uploaded']).topics).toEqual(['eb.media', 'eb.media-large']);
    const wild = router.topicsFor(['*.created']);
    expect(wild.topics).toEqual(['eb.media-large']);
    expect(wild.topicPattern?.test('eb.product')).toBe(true);
    expect(wild.topicPattern?.test('other.product')).toBe(false);
  });
  it('pattern overlap is exact without # and conservative with it', () => {
    expect(patternsMayOverlap('media.*', 'media.uploaded')).toBe(true);
    expect(patternsMayOverlap('media.*', 'product.created')).toBe(false);
    expect(patternsMayOverlap('media.*', 'media.a.b')).toBe(false);
    expect(patternsMayOverlap('media.#', 'media.a.b')).toBe(true);
    expect(patternsMayOverlap('media.#', 'product.#')).toBe(false);
  });
  it('refuses bad routing config', () => {
    expect(() => new TopicRouter({ prefix: 'bad prefix' })).toThrow(/routing.prefix/);
    expect(() => new TopicRouter({ routes: { 'Bad.*': 't' } })).toThrow(/routing.routes/);
    expect(() => new TopicRouter({ routes: { 'a.*': 'bad topic!' } })).toThrow(/valid Kafka topic name/);
  });
});

describe('message format', () => {
  const stored = {
    id: uuidv7(),
    tenantId: 't-1',
    projectId: null,
    eventKey: 'k',
    eventType: 'order.placed',
    version: 1,
    payloadJson: '{"a":1}',
    correlationId: 'c',
    causationId: null,
    createdAt: new Date('2026-01-02T03:04:05.678Z'),
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tracestate: null,
  };
  it('round-trips through CloudEvents binary-mode headers', () => {
    const wire = encodeEvent(stored, { [HEADER.replayId]: 'r-1' });
    expect(wire.key).toBe('t-1');
    expect(wire.headers).not.toHaveProperty(HEADER.projectId);
    const buffers = Object.fromEntries(Object.entries(wire.headers).map(([k, v]) => [k, Buffer.from(v)]));
    const event = decodeEvent(Buffer.from(wire.value), buffers);
    expect(event).toMatchObject({ id: stored.id, tenantId: 't-1', projectId: null, eventType: 'order.placed', payload: { a: 1 }, createdAt: stored.createdAt });
    expect(event.headers.ce_replayid).toBe('r-1');
  });
  it('refuses undecodable messages with UNDECODABLE_MESSAGE', () => {
    expect(() => decodeEvent(Buffer.from('{'), { ce_id: 'x', ce_time: '2026-01-01T00:00:00Z', ce_tenantid: 't', ce_type: 'a.b' })).toThrow(/not JSON/);
    expect(() => decodeEvent(Buffer.from('{}'), {})).toThrow(expect.objectContaining({ code: 'UNDECODABLE_MESSAGE' }));
  });
  it('uuidv7 ids sort by time', () => {
    const a = uuidv7(1_000);
    const b = uuidv7(2_000);
    expect(a < b).toBe(true);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
