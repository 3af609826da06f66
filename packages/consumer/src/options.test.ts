import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_CONFIG, EventBusError } from '@eventbus/core';
import { rebalanceTimeoutFor, resolveConsumerOptions, resolveSubscription } from './options.js';
import { topicSafeGroupId } from '@eventbus/core';

const base = { brokers: ['127.0.0.1:19092'], groupId: 'search-indexer' };
const handler = async () => {};

function configError(run: () => unknown): EventBusError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(EventBusError);
    expect((error as EventBusError).code).toBe('INVALID_CONFIG');
    return error as EventBusError;
  }
  throw new Error('expected an INVALID_CONFIG error');
}

describe('resolveConsumerOptions', () => {
  it("sets Kafka's rebalance timeout past the longest handler call, and never under kafkajs' 60 s", () => {
    expect(resolveConsumerOptions(base).rebalanceTimeoutMs).toBe(60_000);
    expect(resolveConsumerOptions({ ...base, handlerTimeoutMs: 120_000 }).rebalanceTimeoutMs).toBe(135_000);
    expect(rebalanceTimeoutFor(3_600_000)).toBe(3_615_000);
  });

  it('applies the defaults and derives the group topics from the routing prefix', () => {
    const o = resolveConsumerOptions(base);
    expect(o).toMatchObject({
      mode: 'non-blocking',
      handlerTimeoutMs: 30_000,
      shutdownGraceMs: 10_000,
      fromBeginning: false,
      retryTopic: 'eventbus.retry.search-indexer',
      dlqTopic: 'eventbus.dlq.search-indexer',
    });
    expect(o.retryConfig).toEqual(DEFAULT_RETRY_CONFIG);
    expect(o.tenantCircuitBreaker).toEqual({ failureThreshold: 100, minStreakMs: 2000, openMs: 10_000 });
    expect(resolveConsumerOptions({ ...base, tenantCircuitBreaker: { openMs: 5000 } }).tenantCircuitBreaker).toEqual({
      failureThreshold: 100,
      minStreakMs: 2000,
      openMs: 5000,
    });
    expect(resolveConsumerOptions({ ...base, tenantCircuitBreaker: false }).tenantCircuitBreaker).toBeUndefined();
    const custom = resolveConsumerOptions({ ...base, routing: { prefix: 'shop.' }, mode: 'in-order', retryConfig: { maxRetries: 2 } });
    expect(custom).toMatchObject({ mode: 'in-order', retryTopic: 'shop.retry.search-indexer', dlqTopic: 'shop.dlq.search-indexer' });
    expect(custom.retryConfig).toEqual({ ...DEFAULT_RETRY_CONFIG, maxRetries: 2 });
  });

  it.each([
    ['brokers', { brokers: [] }],
    ['brokers', { brokers: ['no-port'] }],
    ['groupId', { groupId: '' }],
    ['groupId', { groupId: 'a\nb' }],
    ['mode', { mode: 'fast' }],
    ['handlerTimeoutMs', { handlerTimeoutMs: 0 }],
    ['handlerTimeoutMs', { handlerTimeoutMs: 1.5 }],
    ['shutdownGraceMs', { shutdownGraceMs: -1 }],
    ['retryConfig.maxRetries', { retryConfig: { maxRetries: -1 } }],
    ['retryConfig.backoffMultiplier', { retryConfig: { backoffMultiplier: 0.5 } }],
    ['routing.prefix', { routing: { prefix: 'bad prefix' } }],
    ['connectionString', { connectionString: 'mysql://x' }],
    ['heartbeatIntervalMs', { heartbeatIntervalMs: 40_000 }],
    ['fromBeginning', { fromBeginning: 'yes' }],
    ['partitionsConsumedConcurrently', { partitionsConsumedConcurrently: 0 }],
    ['tenantCircuitBreaker', { tenantCircuitBreaker: true }],
    ['tenantCircuitBreaker.failureThreshold', { tenantCircuitBreaker: { failureThreshold: 0 } }],
    ['tenantCircuitBreaker.openMs', { tenantCircuitBreaker: { openMs: 10 } }],
    ['tenantCircuitBreaker.minStreakMs', { tenantCircuitBreaker: { minStreakMs: -1 } }],
  ])('rejects a bad %s, naming it', (setting, patch) => {
    const error = configError(() => resolveConsumerOptions({ ...base, ...(patch as object) }));
    expect(error.details.setting).toBe(setting);
    expect(error.message.startsWith(`${setting}:`)).toBe(true);
  });

  it('keeps a group id that is a valid topic name part and makes other ones safe without collisions', () => {
    expect(topicSafeGroupId('search-indexer.v2')).toBe('search-indexer.v2');
    const a = topicSafeGroupId('team/a b');
    const b = topicSafeGroupId('team_a_b');
    expect(a).toMatch(/^team_a_b-[0-9a-f]{10}$/);
    expect(a).not.toBe(b);
    expect(resolveConsumerOptions({ ...base, groupId: 'team/a b' }).retryTopic).toBe(`eventbus.retry.${a}`);
  });
});

describe('resolveSubscription', () => {
  it('compiles the patterns and names the subscription by position by default', () => {
    const s = resolveSubscription({ eventTypes: ['product.*', 'pricechange.applied', 'shopify.#'], handler }, 2, new Set());
    expect(s.name).toBe('2');
    expect(s.matches('product.created')).toBe(true);
    expect(s.matches('product.variant.created')).toBe(false);
    expect(s.matches('pricechange.applied')).toBe(true);
    expect(s.matches('shopify.product.synced')).toBe(true);
    expect(s.matches('order.placed')).toBe(false);
  });

  it.each([
    ['eventTypes', { eventTypes: [], handler }],
    ['eventTypes', { eventTypes: ['Product.Created'], handler }],
    ['eventTypes', { eventTypes: ['#.#'], handler }],
    ['handler', { eventTypes: ['a.b'], handler: 'nope' }],
    ['name', { eventTypes: ['a.b'], handler, name: 'has space' }],
    ['name', { eventTypes: ['a.b'], handler, name: 'taken' }],
  ])('rejects a bad %s', (setting, input) => {
    const error = configError(() => resolveSubscription(input as never, 0, new Set(['taken'])));
    expect(error.details.setting).toBe(setting);
  });
});
