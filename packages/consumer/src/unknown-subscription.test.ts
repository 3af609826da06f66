import { describe, expect, it } from 'vitest';
import { isEventBusError } from '@eventbus/core';
import { resolveSubscription } from './options.js';
import { unknownSubscriptionError } from './unknown-subscription.js';

const subscription = (eventTypes: string[], index: number, name?: string) =>
  resolveSubscription({ eventTypes, handler: async () => undefined, ...(name === undefined ? {} : { name }) }, index, new Set());

describe('unknownSubscriptionError', () => {
  it("names the retry's subscription, the consumer's subscriptions and the re-drive that reaches those handling the type", () => {
    const error = unknownSubscriptionError({
      groupId: "search's",
      eventType: 'product.created',
      name: '0',
      subscriptions: [subscription(['order.*'], 0), subscription(['product.*', 'sku.#'], 1)],
    });
    expect(isEventBusError(error, 'UNKNOWN_SUBSCRIPTION')).toBe(true);
    expect(error.retriable).toBe(false);
    expect(error.stack).toBeUndefined();
    expect(error.details).toEqual({ subscription: '0', eventType: 'product.created', subscriptions: ['0', '1'] });
    expect(error.message).toContain(`a retry of product.created for subscription "0" of group search's was not handled`);
    expect(error.message).toContain('its subscriptions are "0" (order.*), "1" (product.*, sku.#).');
    expect(error.message).toContain(`(now "1"): eventbus dlq retry <id> (eventbus dlq list --group 'search'\\''s' --type product.created shows it).`);
  });

  it('says to deploy a handler or discard when no subscription handles the type, and lists at most 20 subscriptions', () => {
    const subscriptions = Array.from({ length: 25 }, (_, i) => subscription([`family${i}.*`], i, `s${i}`));
    const error = unknownSubscriptionError({ groupId: 'g', eventType: 'product.created', name: 'index', subscriptions });
    expect(error.message).toContain('"s19" (family19.*) and 5 more.');
    expect(error.message).not.toContain('"s20"');
    expect(error.message).toContain('No subscription of this consumer handles product.created now: deploy one that does and re-drive');
    expect(error.message).toContain('or discard it (eventbus dlq discard <id>)');
  });
});
