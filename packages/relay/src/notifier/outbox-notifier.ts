/**
 * Tells the relay that the outbox may have new rows. A hint only: notifications are lost
 * while disconnected, so `onConnected` fires after every (re)connect and the relay then
 * sweeps the table; a fallback poll covers the rest.
 */
export interface OutboxNotifier {
  /** Connects and listens; resolves once listening. Keeps reconnecting forever afterwards. */
  start(handlers: { onNotify: () => void; onConnected: () => void; onError: (error: Error) => void }): Promise<void>;
  /** True while the listening connection is up. */
  readonly connected: boolean;
  /** Reconnects so far. */
  readonly reconnects: number;
  /** Idempotent; safe before start. */
  stop(): Promise<void>;
}

export const OUTBOX_CHANNEL = 'eventbus_outbox';
