import { inject } from 'vitest';
import { createTestDatabase, type TestDatabase } from './postgres.js';

/** Connection facts for an integration test file, from the global setup. */
export function testServices(): { databaseUrl: string; kafkaBrokers: string[] } {
  const get = inject as unknown as (key: string) => string;
  return { databaseUrl: get('databaseUrl'), kafkaBrokers: get('kafkaBrokers').split(',') };
}

/** A fresh migrated database for this test file. */
export function testDatabase(label: string): Promise<TestDatabase> {
  return createTestDatabase(testServices().databaseUrl, label);
}
