import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@eventbus/dev-services';
import { DLQ_HEADER } from '../src/index.js';
import { consumerFixture, recordingLogger } from './consumer-fixture.js';

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-circuit-edge');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

const retryConfig = { maxRetries: 3, initialDelayMs: 100, backoffMultiplier: 2, maxDelayMs: 1000 };

describe('the per-tenant circuit breaker at the edge of an outage of every tenant (real Kafka)', () => {
  it('a global outage opens no circuit even when one attempt of another tenant that started before it succeeds just after it began', async () => {
    const prefix = f.prefix();
    const groupId = f.group('edge');
    const { logger } = recordingLogger();
    let down = false;
    let slowStarted = false;
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig, logger, tenantCircuitBreaker: { failureThreshold: 10, openMs: 60_000 } }, [
      {
        eventTypes: ['order.*', 'product.*'],
        handler: async (event) => {
          // The database call happens first; a slow tenant then spends 500 ms on other work.
          const dbWasDown = down;
          if (event.eventType === 'product.slow') {
            slowStarted = true;
            await new Promise((r) => setTimeout(r, 500));
          }
          if (dbWasDown) throw new Error('the shared database is down');
        },
      },
    ]);
    const dlq = await f.collect([consumer.options.dlqTopic]);
    await f.publish(prefix, [
      { tenantId: 'a', eventType: 'order.created' },
      { tenantId: 'b', eventType: 'order.created' },
    ]);
    await new Promise((r) => setTimeout(r, 2000));
    await f.publish(prefix, [{ tenantId: 'a', eventType: 'product.slow' }]);
    await waitFor(() => slowStarted, { timeoutMs: 20_000, message: 'slow started' });
    down = true; // the outage of everyone begins while a's attempt is in flight
    const ids: string[] = [];
    ids.push(
      ...(await f.publish(
        prefix,
        Array.from({ length: 3 }, () => ({ tenantId: 'b', eventType: 'order.created' })),
      )),
    );
    await new Promise((r) => setTimeout(r, 700)); // a's in-flight attempt has succeeded by now
    ids.push(
      ...(await f.publish(
        prefix,
        Array.from({ length: 8 }, (_, i) => ({ tenantId: i % 2 ? 'a' : 'b', eventType: 'order.created' })),
      )),
    );
    await waitFor(() => dlq.messages.length >= ids.length, { timeoutMs: 30_000, message: 'every outage event in the DLQ' });
    expect(dlq.messages.filter((m) => m.headers[DLQ_HEADER.errorClass] === 'EventBusError:TENANT_CIRCUIT_OPEN')).toHaveLength(0);
  });
});
