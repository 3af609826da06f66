import type { TestProject } from 'vitest/node';
import { ensureKafka } from './kafka.js';
import { ensurePostgres } from './postgres.js';

/** What integration tests read with `inject('databaseUrl')` / `inject('kafkaBrokers')`. */
export interface ProvidedServices {
  databaseUrl: string;
  kafkaBrokers: string;
}

/** Finds or starts Postgres and Kafka once for the integration run; stops what it started. */
export default async function setup(project: TestProject) {
  const log = (m: string) => console.error(`[services] ${m}`);
  const postgres = await ensurePostgres(log);
  const kafka = await ensureKafka(log);
  const provide = project.provide as <K extends keyof ProvidedServices>(key: K, value: ProvidedServices[K]) => void;
  provide('databaseUrl', postgres.address);
  provide('kafkaBrokers', kafka.address);
  return async () => {
    await kafka.stop();
    await postgres.stop();
  };
}
