import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KAFKA_LOCAL_SCRIPT, waitForKafka } from './kafka.js';

const run = promisify(execFile);

/**
 * A second real broker that one test may stop and start (a broker outage) without
 * disturbing the shared broker other test files use. Built by scripts/kafka-local.sh
 * (needs a JDK and Maven; the jars are cached after the first build).
 */
export class PrivateBroker {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'eventbus-kafka-'));
  constructor(readonly port: number) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private env() {
    return { ...process.env, KAFKA_PORT: String(this.port), KAFKA_DATA_DIR: this.dataDir, KAFKA_HEAP: '-Xmx384m -Xms384m' };
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
