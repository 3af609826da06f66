import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { dockerAvailable } from './docker.js';
import type { ServiceHandle } from './postgres.js';

const run = promisify(execFile);
/** The project's own broker script (KRaft, assembled from Maven Central, see docs/kafka-local.md). */
export const KAFKA_LOCAL_SCRIPT = fileURLToPath(new URL('../../../scripts/kafka-local.sh', import.meta.url));
export const LOCAL_KAFKA_PORT = Number(process.env.KAFKA_PORT ?? 19092);

/**
 * Kafka for tests, the demo and benchmarks: KAFKA_BROKERS when set; otherwise a
 * testcontainers broker when a Docker engine answers; otherwise the project's own broker
 * started with the local JDK (reused when already running, and then left running).
 */
export async function ensureKafka(log: (m: string) => void = () => {}): Promise<ServiceHandle> {
  if (process.env.KAFKA_BROKERS) {
    await waitForKafka(process.env.KAFKA_BROKERS, 30_000);
    return { address: process.env.KAFKA_BROKERS, source: 'env', stop: async () => {} };
  }
  if (await dockerAvailable()) {
    log('kafka: starting a testcontainers apache/kafka broker');
    const { KafkaContainer } = await import('@testcontainers/kafka');
    const container = await new KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().start();
    const address = `${container.getHost()}:${container.getMappedPort(9093)}`;
    await waitForKafka(address, 60_000);
    return { address, source: 'testcontainers', stop: async () => void (await container.stop()) };
  }
  const env = { ...process.env, KAFKA_PORT: String(LOCAL_KAFKA_PORT) };
  const address = `127.0.0.1:${LOCAL_KAFKA_PORT}`;
  const alreadyRunning = await run('bash', [KAFKA_LOCAL_SCRIPT, 'status'], { env }).then(
    () => true,
    () => false,
  );
  if (alreadyRunning) {
    log(`kafka: reusing the local broker on ${address}`);
    await waitForKafka(address, 30_000);
    return { address, source: 'local', stop: async () => {} };
  }
  log(`kafka: starting the local broker on ${address} (scripts/kafka-local.sh)`);
  await run('bash', [KAFKA_LOCAL_SCRIPT, 'start'], { env, maxBuffer: 10 * 1024 * 1024 });
  await waitForKafka(address, 60_000);
  return {
    address,
    source: 'local',
    stop: async () => void (await run('bash', [KAFKA_LOCAL_SCRIPT, 'stop'], { env })),
  };
}

/** Waits until an admin client can list topics: the broker serves requests, not just accepts TCP. */
export async function waitForKafka(brokers: string, timeoutMs: number, security: Pick<KafkaConfig, 'ssl' | 'sasl'> = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 0 }, ...security });
  let lastError: unknown;
  while (Date.now() < deadline) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.listTopics();
      return;
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
  throw new Error(`Kafka is not ready at ${brokers} after ${timeoutMs} ms: ${(lastError as Error)?.message}`);
}
