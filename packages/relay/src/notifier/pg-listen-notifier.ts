import pgListen, { type Subscriber } from 'pg-listen';
import { DEFAULT_CONNECT_TIMEOUT_MS, reconnectDelayMs, sleep } from '@eventbus/core';
import { OUTBOX_CHANNEL, type NotifierHandlers, type OutboxNotifier } from './outbox-notifier.js';

// pg-listen is CommonJS with `exports.default`: under Node's ESM interop the default import
// is the module object. Accept either shape.
const createSubscriber = ((pgListen as unknown as { default?: typeof pgListen.default }).default ?? pgListen) as typeof pgListen.default;

/**
 * The one place pg-listen is used. pg-listen stops reconnecting after `retryTimeout`
 * (3 s by default) and then only emits an error; here it never times out, and should it
 * still give up (a failed re-LISTEN), the subscriber is replaced after a backoff.
 */
export class PgListenNotifier implements OutboxNotifier {
  private subscriber: Subscriber | undefined;
  private stopped = false;
  private isConnected = false;
  private reconnectCount = 0;
  private hasConnectedBefore = false;

  /** `connectTimeoutMs`: a LISTEN connection to a server that never answers is dropped and retried after it. */
  constructor(
    private readonly connectionString: string,
    private readonly connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
  ) {}

  get connected(): boolean {
    return this.isConnected;
  }

  get reconnects(): number {
    return this.reconnectCount;
  }

  async start(handlers: NotifierHandlers): Promise<void> {
    this.stopped = false;
    await this.open(handlers);
  }

  private async open(handlers: NotifierHandlers): Promise<void> {
    const subscriber = createSubscriber(
      { connectionString: this.connectionString, application_name: 'eventbus-relay-listen', connectionTimeoutMillis: this.connectTimeoutMs },
      {
        retryTimeout: 0, // 0 = never give up (pg-listen checks `retryTimeout && elapsed > retryTimeout`)
        retryInterval: (attempt: number) => reconnectDelayMs(attempt, { initialMs: 100, maxMs: 5000 }),
        paranoidChecking: 5000, // a dead TCP connection is noticed within ~5 s
        parse: (payload: string) => payload, // a shard mask in hex, not JSON
      },
    );
    this.subscriber = subscriber;
    subscriber.notifications.on(OUTBOX_CHANNEL, (payload: unknown) => handlers.onNotify(typeof payload === 'string' ? payload : ''));
    subscriber.events.on('reconnect', () => {
      this.isConnected = false;
    });
    subscriber.events.on('connected', () => {
      if (this.hasConnectedBefore) this.reconnectCount++;
      this.hasConnectedBefore = true;
      this.isConnected = true;
      handlers.onConnected();
    });
    subscriber.events.on('error', (error: Error) => {
      this.isConnected = false;
      handlers.onError(error);
      // pg-listen gave up on this subscriber: replace it.
      if (!this.stopped && subscriber === this.subscriber) void this.replace(subscriber, handlers);
    });
    await subscriber.connect();
    await subscriber.listenTo(OUTBOX_CHANNEL);
  }

  private async replace(old: Subscriber, handlers: NotifierHandlers) {
    await old.close().catch(() => undefined);
    for (let attempt = 0; !this.stopped; attempt++) {
      await sleep(reconnectDelayMs(attempt, { initialMs: 200, maxMs: 5000 }));
      if (this.stopped) return;
      try {
        await this.open(handlers); // emits 'connected', which counts the reconnect and sweeps
        return;
      } catch (error) {
        handlers.onError(error as Error);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.isConnected = false;
    if (subscriber) await subscriber.close().catch(() => undefined);
  }
}
