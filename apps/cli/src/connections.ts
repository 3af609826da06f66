import pg from 'pg';
import {
  InstrumentedPublisher,
  KafkaPublisher,
  type KafkaConnectionOptions,
  type MessagePublisher,
  type OutboundMessage,
  type PublishedPosition,
  type RecordPosition,
  type StoredRecord,
} from '@eventbus/kafka';
import { CliError } from './cli-error.js';
import { errorMessage, isEventBusError } from '@eventbus/core';
import { redactUrl, type ConnectionSettings } from './settings.js';

/**
 * A small pool, checked at once: an unreachable database (refused, silent past the connect
 * timeout, login refused) becomes exit code 4 naming the setting and the address (password
 * redacted), before any work starts.
 */
export async function openDatabase(settings: ConnectionSettings): Promise<pg.Pool> {
  const url = settings.databaseUrl();
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: settings.connectTimeoutMs(), application_name: 'eventbus-cli' });
  // An idle connection dropped by the server must not crash the CLI; the next query reports it.
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw databaseUnreachable(settings, error);
  }
  return pool;
}

/** The one wording of "cannot connect to Postgres": which setting, which address, why. */
export function databaseUnreachable(settings: ConnectionSettings, cause: unknown): CliError {
  const original = isEventBusError(cause, 'DATABASE_UNAVAILABLE') && cause.cause !== undefined ? cause.cause : cause;
  // pg says only "timeout expired" or "Connection terminated due to connection timeout": say which timeout.
  const reason = /timeout/i.test(errorMessage(original))
    ? `no answer within ${settings.connectTimeoutMs()} ms (DATABASE_CONNECT_TIMEOUT_MS)`
    : errorMessage(original);
  return new CliError('unavailable', `cannot connect to Postgres at ${redactUrl(settings.databaseUrl())} (${settings.databaseSetting()}): ${reason}`, {
    cause,
  });
}

/**
 * A publisher that connects on its first publish, so commands that may not need Kafka
 * (re-driving relay-stage dead letters goes through the outbox) do not require it.
 * Instrumented as stage `replay`: each message gets a `send <topic>` span under the
 * command's span (the message's stored traceparent becomes a link) and counts in
 * `eventbus.events.published`; without an OpenTelemetry SDK that is a no-op.
 */
export class LazyPublisher implements MessagePublisher {
  private connected: Promise<void> | undefined;
  private inner: MessagePublisher | undefined;

  /**
   * `brokers` is called on first use: a missing KAFKA_BROKERS is an error only when Kafka is needed.
   * `retryConnect: false` keeps a failed connect's error for later calls instead of trying again.
   */
  constructor(
    private readonly brokers: () => string[],
    private readonly clientId: string,
    /** `setting`: where the broker list came from (--brokers or KAFKA_BROKERS), for the error. */
    /** `connection`: TLS/SASL, read on first use like `brokers`. */
    private readonly options: { retryConnect?: boolean; setting?: string; connection?: () => KafkaConnectionOptions | undefined } = {},
  ) {}

  connect(): Promise<void> {
    this.connected ??= (async () => {
      const brokers = this.brokers();
      const connection = this.options.connection?.();
      this.inner = new InstrumentedPublisher(new KafkaPublisher({ brokers, clientId: this.clientId, ...(connection ? { connection } : {}) }), {
        stage: 'replay',
        parent: 'active',
      });
      try {
        await this.inner.connect();
      } catch (error) {
        if (this.options.retryConnect !== false) this.connected = undefined;
        const setting = this.options.setting ?? 'KAFKA_BROKERS';
        const reason = isEventBusError(error, 'BROKER_UNAVAILABLE') && error.cause !== undefined ? error.cause : error;
        throw new CliError('unavailable', `cannot connect to Kafka at ${brokers.join(',')} (${setting}): ${errorMessage(reason)}`, { cause: error });
      }
    })();
    return this.connected;
  }

  async publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    await this.connect();
    return this.inner!.publish(messages);
  }

  async ensureCopyTopics(copyTopics: readonly string[], sources: readonly string[]): Promise<void> {
    await this.connect();
    await this.inner!.ensureCopyTopics?.(copyTopics, sources);
  }

  async readRecordAt(position: RecordPosition, options?: { timeoutMs?: number }): Promise<StoredRecord> {
    await this.connect();
    if (!this.inner!.readRecordAt) throw new Error('the Kafka publisher cannot read records');
    return this.inner!.readRecordAt(position, options);
  }

  async disconnect(): Promise<void> {
    await this.inner?.disconnect();
  }
}
