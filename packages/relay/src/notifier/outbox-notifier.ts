/**
 * Tells the relay that the outbox may have new rows. A hint only: notifications are lost
 * while disconnected, so `onConnected` fires after every (re)connect and the relay then
 * sweeps the table; a fallback poll covers the rest.
 */
export interface OutboxNotifier {
  /** Connects and listens; resolves once listening. Keeps reconnecting forever afterwards. */
  start(handlers: NotifierHandlers): Promise<void>;
  /** True while the listening connection is up. */
  readonly connected: boolean;
  /** Reconnects so far. */
  readonly reconnects: number;
  /** Idempotent; safe before start. */
  stop(): Promise<void>;
}

/** What a notifier calls. */
export interface NotifierHandlers {
  /** A notification arrived; `payload` as sent (see `parseShardMask`). */
  onNotify: (payload: string) => void;
  /** The listening connection is (again) up: notifications sent meanwhile are lost. */
  onConnected: () => void;
  onError: (error: Error) => void;
}

export const OUTBOX_CHANNEL = 'eventbus_outbox';

/**
 * The shards a notification names: the outbox trigger (drizzle/0002) sends a 64-bit mask
 * in hex, bit n = shard n. Undefined for anything else (an empty payload, e.g. the boot
 * self-test or a trigger from before that migration): wake everyone then.
 */
export function parseShardMask(payload: string): bigint | undefined {
  if (!/^[0-9a-f]{1,16}$/.test(payload)) return undefined;
  const mask = BigInt(`0x${payload}`);
  return mask === 0n ? undefined : mask;
}

/** The shards `mask` names, ascending. */
export function shardsInMask(mask: bigint): number[] {
  const shards: number[] = [];
  for (let shard = 0; shard < 64; shard++) if ((mask >> BigInt(shard)) & 1n) shards.push(shard);
  return shards;
}
