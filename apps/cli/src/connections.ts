import pg from 'pg';
import { InstrumentedPublisher, KafkaPublisher, type MessagePublisher, type OutboundMessage, type PublishedPosition } from '@eventbus/kafka';
import { CliError } from './cli-error.js';
import { redactUrl } from './settings.js';

/**
 * A small pool, checked at once: an unreachable database becomes exit code 4 with the
 * address (password redacted), before any work starts.
 */
export async function openDatabase(url: string): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000, application_name: 'eventbus-cli' });
  // An idle connection dropped by the server must not crash the CLI; the next query reports it.
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new CliError('unavailable', `Postgres at ${redactUrl(url)} is unreachable: ${(error as Error).message}`, { cause: error });
  }
  return pool;
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
    private readonly options: { retryConnect?: boolean } = {},
  ) {}

  connect(): Promise<void> {
    this.connected ??= (async () => {
      const brokers = this.brokers();
      this.inner = new InstrumentedPublisher(new KafkaPublisher({ brokers, clientId: this.clientId }), { stage: 'replay', parent: 'active' });
      try {
        await this.inner.connect();
      } catch (error) {
        if (this.options.retryConnect !== false) this.connected = undefined;
        throw new CliError('unavailable', `Kafka at ${brokers.join(',')} is unreachable: ${(error as Error).message}`, { cause: error });
      }
    })();
    return this.connected;
  }

  async publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]> {
    await this.connect();
    return this.inner!.publish(messages);
  }

  async disconnect(): Promise<void> {
    await this.inner?.disconnect();
  }
}
