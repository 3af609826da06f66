import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
  /**
   * The client port speaks SASL_SSL (KAFKA_SASL_SSL=1 of scripts/kafka-local.sh): TLS with a
   * self-signed certificate (`caFile`) and SASL PLAIN with `SASL_USER`, like a managed Kafka.
   */
  saslSsl?: boolean;
  /**
   * ACLs enforced (KAFKA_ACL=1 of scripts/kafka-local.sh; needs `saslSsl`): `SASL_USER` is a
   * super user (a test grants ACLs with it), `LIMITED_SASL_USER` may do only what an ACL grants.
   */
  acl?: boolean;
}

/** The SASL user of a `saslSsl` private broker (a super user when it enforces ACLs). */
export const SASL_USER = { username: 'eventbus', password: 'eventbus-secret' } as const;

/** A second SASL user of a private broker that enforces ACLs (`acl`): no permission but what a test grants it. */
export const LIMITED_SASL_USER = { username: 'limited', password: 'limited-secret' } as const;

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
    this.saslSsl = options.saslSsl ?? false;
    this.acl = options.acl ?? false;
    if (this.acl && !this.saslSsl) throw new Error('PrivateBroker: acl needs saslSsl (ACLs name SASL users)');
  }

  readonly saslSsl: boolean;
  readonly acl: boolean;

  /** The PEM certificate clients of a `saslSsl` broker trust (written at its first start). */
  get caFile(): string {
    return join(this.dataDir, 'ca.pem');
  }

  /** kafkajs TLS/SASL settings for a `saslSsl` broker, {} otherwise. */
  clientSecurity(user: { username: string; password: string } = SASL_USER): {
    ssl?: { ca: string[] };
    sasl?: { mechanism: 'plain'; username: string; password: string };
  } {
    if (!this.saslSsl) return {};
    return { ssl: { ca: [readFileSync(this.caFile, 'utf8')] }, sasl: { mechanism: 'plain', username: user.username, password: user.password } };
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
      KAFKA_SASL_SSL: this.saslSsl ? '1' : '',
      KAFKA_SASL_PLAIN_USERS: [SASL_USER, ...(this.acl ? [LIMITED_SASL_USER] : [])].map((u) => `${u.username}:${u.password}`).join(','),
      KAFKA_ACL: this.acl ? '1' : '',
    };
  }

  async start(): Promise<void> {
    await run('bash', [KAFKA_LOCAL_SCRIPT, 'start'], { env: this.env(), maxBuffer: 10 * 1024 * 1024 });
    await waitForKafka(this.address, 60_000, this.clientSecurity());
  }

  async stop(): Promise<void> {
    await run('bash', [KAFKA_LOCAL_SCRIPT, 'stop'], { env: this.env() });
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => undefined);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
