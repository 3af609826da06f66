import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setImmediate as realTurn } from 'node:timers/promises';
import { trace, TraceFlags, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { encodeEvent, encodeRetryHeaders, NonRetriableError } from '@eventbus/core';
import { BatchProcessor } from './batch-processor.js';
import type { BatchControl, InboundMessage } from '@eventbus/kafka';
import { resolveConsumerOptions, resolveSubscription } from './options.js';
import { CopyPublisher } from './copy-publisher.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

const HEARTBEAT_INTERVAL_MS = 1000; // the processor heartbeats every 500 ms

/** The wire form of one order.placed event of `tenantId` at `offset` of eventbus.order partition 0. */
function eventMessage(tenantId: string, offset: number): InboundMessage {
  const wire = encodeEvent({
    id: `e-${offset}`,
    tenantId,
    projectId: null,
    eventKey: `k-${offset}`,
    eventType: 'order.placed',
    version: 1,
    payloadJson: '{}',
    correlationId: 'c',
    causationId: null,
    createdAt: new Date(),
    traceparent: null,
    tracestate: null,
  });
  return {
    topic: 'eventbus.order',
    partition: 0,
    offset: String(offset),
    timestamp: Date.now(),
    key: Buffer.from(wire.key),
    value: Buffer.from(wire.value),
    headers: wire.headers,
  };
}

function messages(n: number): InboundMessage[] {
  return Array.from({ length: n }, (_, i) => eventMessage('t-1', i));
}

/** A processor whose one subscription waits `handlerMs` per event (on the fake clock; setHandlerMs changes it). */
function processor(initialHandlerMs: number, partitionsConsumedConcurrently = 4) {
  const handled: string[] = [];
  let handlerMs = initialHandlerMs;
  const options = resolveConsumerOptions({
    brokers: ['127.0.0.1:1'],
    groupId: 'g',
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    sessionTimeoutMs: 6000,
    partitionsConsumedConcurrently,
    onMetric: () => undefined,
  });
  const subscription = resolveSubscription(
    {
      eventTypes: ['order.*'],
      handler: async (event) => {
        await new Promise((r) => setTimeout(r, handlerMs));
        handled.push(event.id);
      },
    },
    0,
    new Set(),
  );
  const p = new BatchProcessor({
    options,
    subscriptions: [subscription],
    publisher: new CopyPublisher({ connect: async () => undefined, disconnect: async () => undefined, publish: async () => [] }),
    recordMetric: () => undefined,
    stopSignal: new AbortController().signal,
    processOnce: async () => true,
    cpuSliceMs: Number.POSITIVE_INFINITY, // on the fake clock every handler call seems to take its whole wait
  });
  return { p, handled, setHandlerMs: (ms: number) => void (handlerMs = ms) };
}

/** A BatchControl that records when (fake clock) heartbeats were asked for, what was resolved, and the work it was left to finish. */
function control(over: Partial<BatchControl> = {}) {
  const resolved: string[] = [];
  const heartbeats: number[] = [];
  const detached: Array<Promise<unknown>> = [];
  const c: BatchControl = {
    heartbeat: vi.fn(async () => void heartbeats.push(Date.now())),
    resolveOffset: (offset) => void resolved.push(offset),
    isRunning: () => true,
    isStale: () => false,
    pause: () => () => undefined,
    detach: (work) => void detached.push(work),
    ...over,
  };
  return { c, resolved, heartbeats, detached };
}

describe('BatchProcessor.handleBatch', () => {
  it('heartbeats between consecutive short handlers, each too short for its own heartbeat timer', async () => {
    const { p, handled } = processor(450); // just under the 500 ms at which runHandler would heartbeat
    const { c, heartbeats } = control();
    const start = Date.now();
    const done = p.handleBatch(messages(20), c);
    await vi.advanceTimersByTimeAsync(20 * 450 + 100);
    await done;
    expect(handled).toHaveLength(20);
    // 9 s of work: without heartbeats between messages there would be none at all.
    expect(heartbeats.length).toBeGreaterThanOrEqual(8);
    const gaps = [heartbeats[0]! - start, ...heartbeats.slice(1).map((t, i) => t - heartbeats[i]!)];
    expect(Math.max(...gaps)).toBeLessThanOrEqual(HEARTBEAT_INTERVAL_MS);
  });

  it('does not heartbeat between messages when handlers heartbeat themselves or the batch is quick', async () => {
    const { p } = processor(1);
    const { c, heartbeats } = control();
    const done = p.handleBatch(messages(50), c);
    await vi.advanceTimersByTimeAsync(200);
    await done;
    expect(heartbeats).toEqual([]); // 50 ms of work: kafkajs' own heartbeat after the batch is enough

    // A 1.2 s handler heartbeats at 500 and 1000 ms inside its call; the batch adds none right after it.
    const slow = processor(1200);
    const s = control();
    const slowDone = slow.p.handleBatch(messages(1), s.c);
    await vi.advanceTimersByTimeAsync(1300);
    await slowDone;
    expect(s.heartbeats).toHaveLength(2);
  });

  it('ends the batch when a heartbeat reports a rebalance, leaving the rest unresolved', async () => {
    const { p, handled } = processor(450);
    const rebalancing = Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
    const { c, resolved, detached } = control({ heartbeat: vi.fn(async () => Promise.reject(rebalancing)) });
    const done = p.handleBatch(messages(10), c);
    await vi.advanceTimersByTimeAsync(100);
    await done; // a slow batch: it went on by itself
    expect(detached).toHaveLength(1);
    const outcome = expect(detached[0]).rejects.toBe(rebalancing);
    await vi.advanceTimersByTimeAsync(10 * 450);
    await outcome;
    // The heartbeat after the second message (900 ms) fails: two handled and resolved, the rest left for the next owner.
    expect(handled).toEqual(['e-0', 'e-1']);
    expect(resolved).toEqual(['0', '1']);
  });

  it('lets a batch still going after 100 ms go on by itself, its offsets resolved in order as it finishes', async () => {
    const { p, handled } = processor(400);
    const { c, resolved, detached } = control();
    const done = p.handleBatch(messages(3), c);
    await vi.advanceTimersByTimeAsync(100);
    await done; // the fetch round is no longer held up
    expect(detached).toHaveLength(1);
    expect(handled).toEqual([]);
    await vi.advanceTimersByTimeAsync(3 * 400);
    await detached[0];
    expect(handled).toEqual(['e-0', 'e-1', 'e-2']);
    expect(resolved).toEqual(['0', '1', '2']);

    // The partition's next batch goes on by itself at once (its last one was slow): no 100 ms
    // hold-up of the fetch round per batch of a tenant whose every event is slow.
    const next = control();
    await p.handleBatch(messages(1), next.c);
    expect(next.detached).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(400);
    await next.detached[0];
    // That one took 400 ms too: still slow.
    const third = control();
    await p.handleBatch(messages(1), third.c);
    expect(third.detached).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(400);
    await third.detached[0];

    // A client that cannot detach (kafkajs without patch revision 6): the batch is handled in line.
    const inLine = processor(400);
    const l = control({ detach: undefined });
    let inLineReturned = false;
    void inLine.p.handleBatch(messages(2), l.c).then(() => (inLineReturned = true));
    await vi.advanceTimersByTimeAsync(500);
    expect(inLineReturned).toBe(false);
    await vi.advanceTimersByTimeAsync(400);
    expect(inLineReturned).toBe(true);
    expect(l.resolved).toEqual(['0', '1']);

    // A quick batch is not detached; a partition that turned quick is detached at once for 10 s
    // after its last slow batch (a retry partition alternates between quick pauses and slow
    // handler calls), then waited for again.
    const turnsQuick = processor(400);
    const slowFirst = control();
    const slowDone = turnsQuick.p.handleBatch(messages(1), slowFirst.c);
    await vi.advanceTimersByTimeAsync(400);
    await slowDone;
    await slowFirst.detached[0];
    turnsQuick.setHandlerMs(1);
    const quickNow = control();
    await turnsQuick.p.handleBatch(messages(1), quickNow.c); // detached at once (slow lately), done in 1 ms
    await vi.advanceTimersByTimeAsync(5);
    await quickNow.detached[0];
    await vi.advanceTimersByTimeAsync(10_000);
    const waitedFor = control();
    const waitedDone = turnsQuick.p.handleBatch(messages(1), waitedFor.c);
    await vi.advanceTimersByTimeAsync(5);
    await waitedDone;
    expect(waitedFor.detached).toEqual([]);

    const quick = processor(1);
    const q = control();
    const quickDone = quick.p.handleBatch(messages(5), q.c);
    await vi.advanceTimersByTimeAsync(10);
    await quickDone;
    expect(q.detached).toEqual([]);
    expect(q.resolved).toEqual(['0', '1', '2', '3', '4']);
  });

  it('detaches at most partitionsConsumedConcurrently batches at once; a slow batch past that holds up the round, as in plain kafkajs', async () => {
    const { p, handled } = processor(1000, 2);
    const controls = [control(), control(), control()];
    const [first, second] = [p.handleBatch(messages(1), controls[0]!.c), p.handleBatch(messages(1), controls[1]!.c)];
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all([first, second]);
    const third = p.handleBatch(messages(1), controls[2]!.c);
    let thirdReturned = false;
    void third.then(() => (thirdReturned = true));
    await vi.advanceTimersByTimeAsync(500);
    expect(thirdReturned).toBe(false); // in line: two are detached already
    await vi.advanceTimersByTimeAsync(600);
    await third;
    expect(controls.map((x) => x.detached.length)).toEqual([1, 1, 0]);
    expect(handled).toHaveLength(3);
  });

  it("detaches a recently slow partition's batch at once even with every place taken: it waits for one, and the fetch round goes on", async () => {
    const { p, handled } = processor(400, 1);
    const onPartition = (partition: number, n: number) => messages(n).map((m) => ({ ...m, partition }));
    // Partition 0 has a slow batch: noted as slow when it ends.
    const first = control();
    await vi.advanceTimersByTimeAsync(0);
    const firstDone = p.handleBatch(onPartition(0, 1), first.c);
    await vi.advanceTimersByTimeAsync(100);
    await firstDone;
    await vi.advanceTimersByTimeAsync(300);
    await first.detached[0];
    // Partition 1's slow batch takes the one place.
    const other = control();
    const otherDone = p.handleBatch(onPartition(1, 2), other.c);
    await vi.advanceTimersByTimeAsync(100);
    await otherDone;
    expect(other.detached).toHaveLength(1);
    // Partition 0's next batch: detached at once, its handler not run until the place is free.
    const next = control({ signal: new AbortController().signal });
    let returned = false;
    void p.handleBatch(onPartition(0, 1), next.c).then(() => (returned = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(returned).toBe(true);
    expect(next.detached).toHaveLength(1);
    const before = handled.length;
    await vi.advanceTimersByTimeAsync(700); // partition 1's two 400 ms handlers end 800 ms after it started
    expect(handled.length).toBe(before + 2);
    await vi.advanceTimersByTimeAsync(400);
    await next.detached[0];
    expect(handled.length).toBe(before + 3);
    expect(next.resolved).toEqual(['0']);
  });

  it('logs the dead letters of a batch as one line per distinct error, not one per event', async () => {
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (fields: Record<string, unknown>, message: string) => void warnings.push({ fields, message }) };
    const options = resolveConsumerOptions({ brokers: ['127.0.0.1:1'], groupId: 'g', onMetric: () => undefined, logger });
    const failing = resolveSubscription(
      {
        eventTypes: ['order.*'],
        handler: async (event) => {
          throw new NonRetriableError(Number(event.id.slice(2)) % 2 === 0 ? 'bad payload' : 'unknown sku');
        },
      },
      0,
      new Set(),
    );
    const p = new BatchProcessor({
      options,
      subscriptions: [failing],
      publisher: new CopyPublisher({
        connect: async () => undefined,
        disconnect: async () => undefined,
        publish: async (m) => m.map((x, i) => ({ topic: x.topic, partition: 0, offset: String(i) })),
      }),
      recordMetric: () => undefined,
      stopSignal: new AbortController().signal,
      processOnce: async () => true,
      cpuSliceMs: Number.POSITIVE_INFINITY,
    });
    const done = p.handleBatch(messages(30), control().c);
    await vi.advanceTimersByTimeAsync(50);
    await done;
    const lines = warnings.filter((w) => w.message === 'event dead-lettered');
    expect(lines.map((l) => [l.fields.err, l.fields.events, l.fields.groupId])).toEqual([
      ['bad payload', 15, 'g'],
      ['unknown sku', 15, 'g'],
    ]);
    expect(lines[0]!.fields.eventIds).toEqual(['e-0', 'e-2', 'e-4', 'e-6', 'e-8', 'e-10', 'e-12', 'e-14', 'e-16', 'e-18']);
    expect(lines[0]!.fields.tenantIds).toEqual(['t-1']);
  });

  it('dead-letters events whose handler rejects with a value that has no string form, with a logger and onMetric that throw too', async () => {
    const throwing = () => {
      throw Object.create(null);
    };
    const logger = { debug: throwing, info: throwing, warn: throwing, error: throwing };
    const options = resolveConsumerOptions({ brokers: ['127.0.0.1:1'], groupId: 'g', retryConfig: { maxRetries: 0 }, logger });
    const rejections: unknown[] = [
      Object.assign(Object.create(null), { code: 'E_DOWNSTREAM' }),
      Object.assign(new Error('unused'), { message: Object.create(null), stack: 42, name: { not: 'text' } }),
      {
        toString() {
          throw new Error('toString throws');
        },
      },
    ];
    const failing = resolveSubscription(
      {
        eventTypes: ['order.*'],
        handler: async (event) => {
          throw rejections[Number(event.id.slice(2))];
        },
      },
      0,
      new Set(),
    );
    const copies: Array<Record<string, string | Buffer>> = [];
    const p = new BatchProcessor({
      options,
      subscriptions: [failing],
      publisher: new CopyPublisher({
        connect: async () => undefined,
        disconnect: async () => undefined,
        publish: async (m) =>
          m.map((x, i) => {
            copies.push(x.headers ?? {});
            return { topic: x.topic, partition: 0, offset: String(i) };
          }),
      }),
      recordMetric: throwing,
      stopSignal: new AbortController().signal,
      processOnce: async () => true,
      cpuSliceMs: Number.POSITIVE_INFINITY,
    });
    const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const { c, resolved } = control();
      const done = p.handleBatch(messages(3), c);
      await vi.advanceTimersByTimeAsync(50);
      await done; // resolves: the batch went on (it rejected with a TypeError from String())
      expect(resolved).toEqual(['0', '1', '2']);
      const text = (h: string | Buffer | undefined) => h?.toString();
      expect(copies.map((h) => [text(h['eventbus-dlq-error-class']), text(h['eventbus-dlq-error-message'])])).toEqual([
        ['object', "[Object: null prototype] { code: 'E_DOWNSTREAM' }"],
        ['Error', '[Object: null prototype] {}'],
        ['object', '{ toString: [Function: toString] }'],
      ]);
      // The logger's failure is reported once, not on every line.
      expect(warning).toHaveBeenCalledTimes(1);
    } finally {
      warning.mockRestore();
    }
  });

  it('in-order mode: a message whose retry in place succeeds has its offset wait for the dead-letter copy another subscription sent on an earlier attempt', async () => {
    const options = resolveConsumerOptions({
      brokers: ['127.0.0.1:1'],
      groupId: 'g',
      mode: 'in-order',
      retryConfig: { maxRetries: 3, initialDelayMs: 100, maxDelayMs: 100 },
      onMetric: () => undefined,
    });
    let refuse!: (error: Error) => void;
    const published: string[] = [];
    const publisher = new CopyPublisher({
      connect: async () => undefined,
      disconnect: async () => undefined,
      // The dead-letter copy is on its way until the test refuses it (Kafka did not take it).
      publish: (m) => {
        published.push(...m.map((x) => x.topic));
        return new Promise((_, reject) => (refuse = reject));
      },
    });
    let ledgerFailures = 1;
    const taken = new Set<string>();
    const audit = resolveSubscription(
      { name: 'audit', eventTypes: ['order.*'], handler: async () => Promise.reject(new NonRetriableError('bad payload')) },
      0,
      taken,
    );
    const ledger = resolveSubscription(
      {
        name: 'ledger',
        eventTypes: ['order.*'],
        handler: async () => {
          if (ledgerFailures-- > 0) throw new Error('ledger locked');
        },
      },
      1,
      new Set(['audit']),
    );
    const p = new BatchProcessor({
      options,
      subscriptions: [audit, ledger],
      publisher,
      recordMetric: () => undefined,
      stopSignal: new AbortController().signal,
      processOnce: async () => true,
      cpuSliceMs: Number.POSITIVE_INFINITY,
    });
    const resolves: Array<{ offset: string; after: Promise<unknown> | undefined }> = [];
    const c = control({ resolveOffset: (offset, after) => void resolves.push({ offset, after }) }).c;
    const [message] = messages(1);

    // First attempt: audit dead-letters the event (its copy on its way), ledger fails and is retried in place.
    const first = p.handleBatch([message!], c);
    await vi.advanceTimersByTimeAsync(10);
    await first;
    expect(published).toEqual([options.dlqTopic]);
    expect(resolves).toEqual([]);
    // The message fetched again after the backoff: ledger succeeds, audit does not run again.
    await vi.advanceTimersByTimeAsync(200);
    const second = p.handleBatch([message!], c);
    await vi.advanceTimersByTimeAsync(10);
    await second;
    expect(resolves.map((r) => r.offset)).toEqual(['0']);
    // Committed without waiting for audit's dead-letter copy, a refusal of that copy would lose it:
    // audit's failure neither in the DLQ nor read again.
    const after = resolves[0]!.after;
    expect(after).toBeDefined();
    const outcome = expect(after).rejects.toThrow('not taken');
    refuse(new Error('not taken'));
    await outcome;
  });
  it('lets the event loop turn during a batch whose handlers never wait, every cpuSliceMs', async () => {
    vi.useRealTimers();
    const options = resolveConsumerOptions({ brokers: ['127.0.0.1:1'], groupId: 'g', onMetric: () => undefined });
    /** How many of 2,000 synchronous handler calls had run when the event loop next turned. */
    const handledAtFirstTurn = async (cpuSliceMs: number) => {
      let handled = 0;
      const p = new BatchProcessor({
        options,
        subscriptions: [resolveSubscription({ eventTypes: ['order.*'], handler: async () => void handled++ }, 0, new Set())],
        publisher: new CopyPublisher({ connect: async () => undefined, disconnect: async () => undefined, publish: async () => [] }),
        recordMetric: () => undefined,
        stopSignal: new AbortController().signal,
        processOnce: async () => true,
        cpuSliceMs,
      });
      const { c, resolved } = control({ detach: undefined });
      const done = p.handleBatch(messages(2000), c);
      await realTurn();
      const atTurn = handled;
      await done;
      expect(resolved).toHaveLength(2000);
      return atTurn;
    };
    // Without slices the whole batch runs as one chain of microtasks: nothing else runs meanwhile.
    expect(await handledAtFirstTurn(Number.POSITIVE_INFINITY)).toBe(2000);
    expect(await handledAtFirstTurn(0)).toBeLessThan(10);
  });

  describe('a retry message not due yet', () => {
    const retryOptions = () => resolveConsumerOptions({ brokers: ['127.0.0.1:1'], groupId: 'g', onMetric: () => undefined });
    /** Retry-topic copies of `messages(n)`, due `dueInMs` from now. */
    function retryMessages(n: number, dueInMs: number): InboundMessage[] {
      const { retryTopic } = retryOptions();
      return messages(n).map((m) => ({
        ...m,
        topic: retryTopic,
        headers: encodeRetryHeaders(m.headers as Record<string, string>, {
          attempt: 2,
          dueAt: Date.now() + dueInMs,
          firstFailureAt: Date.now(),
          origin: { topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp },
        }),
      }));
    }
    function retryProcessor() {
      const handled: string[] = [];
      const p = new BatchProcessor({
        options: retryOptions(),
        subscriptions: [resolveSubscription({ eventTypes: ['order.*'], handler: async (e) => void handled.push(e.id) }, 0, new Set())],
        publisher: new CopyPublisher({ connect: async () => undefined, disconnect: async () => undefined, publish: async () => [] }),
        recordMetric: () => undefined,
        stopSignal: new AbortController().signal,
        processOnce: async () => true,
        cpuSliceMs: Number.POSITIVE_INFINITY,
      });
      return { p, handled };
    }

    it('detaches its batch at once, which waits with its messages in memory: the partition is not fetched again', async () => {
      const { p, handled } = retryProcessor();
      const ending = new AbortController();
      const pause = vi.fn(() => () => undefined);
      const { c, resolved, detached } = control({ pause, signal: ending.signal });
      await p.handleBatch(retryMessages(3, 1000), c); // returns without holding the fetch round for 100 ms
      expect(detached).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(900);
      expect(handled).toEqual([]);
      await vi.advanceTimersByTimeAsync(300); // due at 1,000 ms, plus the slack that groups retries due together
      await detached[0];
      expect(handled).toEqual(['e-0', 'e-1', 'e-2']);
      expect(resolved).toEqual(['0', '1', '2']);
      expect(pause).not.toHaveBeenCalled(); // kept paused by the detach alone; no resume scheduled, no refetch
    });

    it('detaches every waiting batch, however many: a waiting batch holds none of the partitionsConsumedConcurrently places', async () => {
      const { p, handled } = retryProcessor(); // partitionsConsumedConcurrently: 4 (the default)
      const batches = Array.from({ length: 6 }, (_, partition) => {
        const b = control({ signal: new AbortController().signal });
        const mine = retryMessages(1, 1000).map((m) => ({ ...m, partition, offset: String(partition) }));
        return { ...b, done: p.handleBatch(mine, b.c) };
      });
      await Promise.all(batches.map((b) => b.done));
      expect(batches.map((b) => b.detached.length)).toEqual([1, 1, 1, 1, 1, 1]);
      await vi.advanceTimersByTimeAsync(1200);
      await Promise.all(batches.map((b) => b.detached[0]));
      expect(handled).toHaveLength(6);
      // A slow batch still gets a place afterwards: the waiting ones gave theirs back.
      const slow = processor(400);
      const s = control();
      const slowDone = slow.p.handleBatch(messages(1), s.c);
      await vi.advanceTimersByTimeAsync(100);
      await slowDone;
      expect(s.detached).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(400);
      await s.detached[0];
    });

    it('ends the wait when the batch signal aborts (stop, rebalance, rewind), leaving the offsets unresolved', async () => {
      const { p, handled } = retryProcessor();
      const ending = new AbortController();
      let stale = false;
      const { c, resolved, detached } = control({ signal: ending.signal, isStale: () => stale });
      await p.handleBatch(retryMessages(2, 60_000), c);
      expect(detached).toHaveLength(1);
      stale = true;
      ending.abort();
      await detached[0]; // at once, not after 60 s
      expect(handled).toEqual([]);
      expect(resolved).toEqual([]);
    });

    it('pauses the partition and ends the batch where the batch cannot wait detached', async () => {
      const { p, handled } = retryProcessor();
      const pause = vi.fn(() => () => undefined);
      const { c, resolved, detached } = control({ pause, detach: undefined });
      await p.handleBatch(retryMessages(2, 1000), c);
      expect(detached).toEqual([]);
      expect(pause).toHaveBeenCalledTimes(1);
      expect(handled).toEqual([]);
      expect(resolved).toEqual([]);
    });
  });

  describe('the tenant circuit breaker', () => {
    const OPEN_MS = 10_000;
    const HOUR_MS = 3_600_000;

    /** A processor whose handler fails every event of tenant `broken` (retriable) and handles the others; `brokenCalls` counts its calls for `broken`. */
    function circuitProcessor() {
      const calls = { broken: 0 };
      const options = resolveConsumerOptions({
        brokers: ['127.0.0.1:1'],
        groupId: 'g',
        onMetric: () => undefined,
        tenantCircuitBreaker: { failureThreshold: 2, minStreakMs: 0, openMs: OPEN_MS },
      });
      const subscription = resolveSubscription(
        {
          eventTypes: ['order.*'],
          handler: async (event) => {
            if (event.tenantId !== 'broken') return;
            calls.broken++;
            throw new Error('downstream refused');
          },
        },
        0,
        new Set(),
      );
      const p = new BatchProcessor({
        options,
        subscriptions: [subscription],
        publisher: new CopyPublisher({
          connect: async () => undefined,
          disconnect: async () => undefined,
          publish: async (m) => m.map((x, i) => ({ topic: x.topic, partition: 0, offset: String(i) })),
        }),
        recordMetric: () => undefined,
        stopSignal: new AbortController().signal,
        processOnce: async () => true,
        cpuSliceMs: Number.POSITIVE_INFINITY,
      });
      let offset = 0;
      const batch = async (tenants: string[]) => {
        const done = p.handleBatch(
          tenants.map((tenantId) => eventMessage(tenantId, offset++)),
          control().c,
        );
        await vi.advanceTimersByTimeAsync(50);
        await done;
      };
      return { calls, batch };
    }

    /** Opens the circuit of `broken`: two counted failures, each after another tenant's success. */
    async function opened() {
      const processor = circuitProcessor();
      await processor.batch(['ok', 'broken', 'ok', 'broken', 'ok', 'broken']);
      expect(processor.calls.broken).toBe(3);
      await processor.batch(['broken']); // open: dead-lettered without a call
      expect(processor.calls.broken).toBe(3);
      return processor;
    }

    it('keeps a circuit open for openMs when the wall clock steps an hour forward (NTP): the period is measured on the monotonic clock', async () => {
      const { calls, batch } = await opened();
      vi.setSystemTime(Date.now() + HOUR_MS); // Date jumps, performance.now() does not
      await batch(['broken']);
      expect(calls.broken).toBe(3);
      await vi.advanceTimersByTimeAsync(OPEN_MS);
      await batch(['broken']); // the probe
      expect(calls.broken).toBe(4);
    });

    it('ends a circuit after openMs when the wall clock steps an hour back', async () => {
      const { calls, batch } = await opened();
      vi.setSystemTime(Date.now() - HOUR_MS);
      await vi.advanceTimersByTimeAsync(OPEN_MS);
      await batch(['broken']); // the probe
      expect(calls.broken).toBe(4);
    });
  });
});

describe('BatchProcessor with a tracer that throws', () => {
  const VALID = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED };
  const broken = (): never => {
    throw new Error('span processor failed');
  };
  /** A recording span whose every method but spanContext() throws: an SDK whose span processor or exporter fails. */
  const throwingSpan = (): Span =>
    ({
      spanContext: () => VALID,
      isRecording: () => true,
      setAttribute: broken,
      setAttributes: broken,
      addEvent: broken,
      addLink: broken,
      addLinks: broken,
      setStatus: broken,
      updateName: broken,
      recordException: broken,
      end: broken,
    }) as Span;
  const providerWith = (startSpan: () => Span): TracerProvider => ({ getTracer: () => ({ startSpan, startActiveSpan: broken }) as Tracer });
  let warning: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(() => {
    warning.mockRestore();
    trace.disable();
  });

  it.each([
    ['startSpan throws', () => broken()],
    ["the span's methods throw", throwingSpan],
  ])('%s: the batch goes on, every event is handled (a failure retried) and resolved, one process warning', async (_case, startSpan) => {
    trace.setGlobalTracerProvider(providerWith(startSpan));
    const calls: string[] = [];
    const options = resolveConsumerOptions({ brokers: ['127.0.0.1:1'], groupId: 'g', onMetric: () => undefined });
    const subscription = resolveSubscription(
      {
        eventTypes: ['order.*'],
        handler: async (event) => {
          calls.push(event.id);
          if (event.id === 'e-1') throw new Error('card declined'); // a failure: recordFailure and a retry event on the span
        },
      },
      0,
      new Set(),
    );
    const sent: string[] = [];
    const p = new BatchProcessor({
      options,
      subscriptions: [subscription],
      publisher: new CopyPublisher({
        connect: async () => undefined,
        disconnect: async () => undefined,
        publish: async (copies) => {
          sent.push(...copies.map((m) => m.topic));
          return copies.map((m, i) => ({ topic: m.topic, partition: 0, offset: String(i) }));
        },
      }),
      recordMetric: () => undefined,
      stopSignal: new AbortController().signal,
      processOnce: async () => true,
    });
    const { c, resolved } = control();
    const done = p.handleBatch(messages(3), c);
    await vi.advanceTimersByTimeAsync(100);
    await expect(done).resolves.toBeUndefined();
    expect(calls).toEqual(['e-0', 'e-1', 'e-2']);
    expect(sent).toEqual([options.retryTopic]);
    expect(resolved).toEqual(['0', '1', '2']);
    expect(warning).toHaveBeenCalledTimes(1);
    expect(warning.mock.calls[0]![0]).toContain('span processor failed');
  });
});
