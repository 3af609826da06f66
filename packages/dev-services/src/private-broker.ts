import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KAFKA_LOCAL_SCRIPT, waitForKafka } from './kafka.js';

const run = promisify(execFile);

/** Options of `PrivateBroker`. */
export interface PrivateBrokerOptions {
  /**
   * The port the broker advertises to clients (KAFKA_ADVERTISED_PORT of scripts/kafka-local.sh).
   * Default: `port`. Give the port of a proxy that forwards to `port` to put every client
   * connection through the proxy: clients reconnect to the advertised address after their
   * first metadata response, so a proxy only in front of the bootstrap port would be bypassed.
   * The proxy must forward before `start()` is awaited: its readiness check connects through it.
   */
  advertisedPort?: number;
}

/**
 * A second real broker that one test may stop and start (a broker outage) without
 * disturbing the shared broker other test files use. Built by scripts/kafka-local.sh
 * (needs a JDK and Maven; the jars are cached after the first build).
 */
export class PrivateBroker {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'eventbus-kafka-'));
  /** The port clients are told to use (`port` unless a proxy sits in front). */
  readonly advertisedPort: number;

  constructor(
    /** The port the broker listens on; the controller uses the next one. */
    readonly port: number,
    options: PrivateBrokerOptions = {},
  ) {
    this.advertisedPort = options.advertisedPort ?? port;
  }

  /** The bootstrap address for clients: the advertised one, where every connection ends up anyway. */
  get address(): string {
    return `127.0.0.1:${this.advertisedPort}`;
  }

  private env() {
    return {
      ...process.env,
      KAFKA_PORT: String(this.port),
      KAFKA_ADVERTISED_PORT: String(this.advertisedPort),
      KAFKA_DATA_DIR: this.dataDir,
      KAFKA_HEAP: '-Xmx384m -Xms384m',
    };
  }

  async start(): Promise<void> {
    await run('bash', [KAFKA_LOCAL_SCRIPT, 'start'], { env: this.env(), maxBuffer: 10 * 1024 * 1024 });
    await waitForKafka(this.address, 60_000);
  }

  async stop(): Promise<void> {
    await run('bash', [KAFKA_LOCAL_SCRIPT, 'stop'], { env: this.env() });
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => undefined);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
