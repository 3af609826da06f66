import { describe, expect, it } from 'vitest';
import { isEventBusError } from '@eventbus/core';
import { isLoopbackHost, resolveConsoleBinding } from './options.js';
import { deadLetterFilter, deadLetterIds, replayRequest } from './request-input.js';
import { redactSecrets, sameSecret } from './security.js';

const invalid = (fn: () => unknown, setting: string) => {
  try {
    fn();
  } catch (error) {
    expect(isEventBusError(error, 'INVALID_CONFIG') || isEventBusError(error, 'INVALID_EVENT_TYPE'), String(error)).toBe(true);
    expect((error as Error).message).toContain(setting);
    return;
  }
  throw new Error(`expected an INVALID_CONFIG error naming ${setting}`);
};

describe('console binding', () => {
  it('binds 127.0.0.1:8080 by default, without a token', () => {
    expect(resolveConsoleBinding({})).toEqual({ host: '127.0.0.1', port: 8080, token: undefined, loopback: true });
  });

  it('treats 127.x, ::1 and localhost as loopback, anything else not', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'console.internal', '128.0.0.1']) expect(isLoopbackHost(host), host).toBe(false);
  });

  it('refuses a non-loopback address without a token, and a token shorter than 16 characters', () => {
    invalid(() => resolveConsoleBinding({ host: '0.0.0.0' }), 'EVENTBUS_CONSOLE_TOKEN');
    invalid(() => resolveConsoleBinding({ host: '0.0.0.0', token: 'short' }), 'EVENTBUS_CONSOLE_TOKEN');
    expect(resolveConsoleBinding({ host: '0.0.0.0', token: 'a'.repeat(16) })).toMatchObject({ loopback: false, token: 'a'.repeat(16) });
    invalid(() => resolveConsoleBinding({ port: 70_000 }), 'port');
  });
});

describe('console request input', () => {
  it('turns the dead-letter query string into the package filter, pending by default', () => {
    expect(deadLetterFilter({})).toEqual({ status: 'pending', limit: 100 });
    const filter = deadLetterFilter({
      group: 'billing',
      tenant: 'acme',
      stage: 'consumer',
      type: 'order.*',
      since: '2026-01-31T12:00:00Z',
      until: '2026-02-01T00:00:00Z',
      status: 'all',
      limit: '5',
    });
    expect(filter).toMatchObject({
      status: null,
      limit: 5,
      groupId: 'billing',
      tenantId: 'acme',
      stage: 'consumer',
      since: new Date('2026-01-31T12:00:00Z'),
      until: new Date('2026-02-01T00:00:00Z'),
    });
    expect(filter.typeRegexes).toHaveLength(1);
  });

  it('names the field of a bad value', () => {
    invalid(() => deadLetterFilter({ stage: 'producer' }), 'stage');
    invalid(() => deadLetterFilter({ status: 'gone' }), 'status');
    invalid(() => deadLetterFilter({ limit: '0' }), 'limit');
    invalid(() => deadLetterFilter({ since: 'yesterday' }), 'since');
    invalid(() => deadLetterFilter({ until: '31/01/2026' }), 'until');
    invalid(() => deadLetterFilter({ since: '2026-02-01T00:00:00Z', until: '2026-02-01T00:00:00Z' }), 'until');
    invalid(() => deadLetterFilter({ tenant: 'a\u0000b' }), 'tenant');
    invalid(() => deadLetterIds({ ids: [] }), 'ids');
    invalid(() => deadLetterIds({ ids: ['1; DROP TABLE x'] }), 'ids');
    invalid(() => replayRequest({ types: 'order.*' }), 'tenant');
    invalid(() => replayRequest({ tenant: 'acme', rate: '-5' }), 'rate');
  });

  it('reads a replay request: a group target when a group is named, the event topics otherwise', () => {
    expect(replayRequest({ tenant: 'acme', types: 'order.*, product.updated', group: 'search', rate: '250' })).toEqual({
      filter: { tenantId: 'acme', eventTypes: ['order.*', 'product.updated'] },
      target: { kind: 'group', groupId: 'search' },
      ratePerSecond: 250,
    });
    expect(replayRequest({ tenant: 'acme' }).target).toEqual({ kind: 'event-topics' });
    expect(deadLetterIds({ ids: ['42', 7] })).toEqual(['42', '7']);
  });
});

describe('console secrets', () => {
  it('redacts the password of every URL in a text', () => {
    expect(redactSecrets('connect postgres://app:hunter2@db:5432/x failed; kafka sasl://u:p@b:9092')).toBe(
      'connect postgres://app:***@db:5432/x failed; kafka sasl://u:***@b:9092',
    );
    expect(redactSecrets('postgres://app@db/x')).toBe('postgres://app@db/x');
  });

  it('compares tokens of any length', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abc', 'abcd')).toBe(false);
  });
});
