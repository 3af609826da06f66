#!/usr/bin/env node
// The relay half of the isolation bench on its own: `node bench/isolation-relay-main.mjs [--quick] [--json <file>]`
// (from the repository root, after `pnpm build`). `pnpm bench --only isolation` runs it beside the consumer's half.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createTestDatabase, ensureKafka, ensurePostgres } from '@eventbus/dev-services';
import { relayIsolationBench } from './isolation-relay.mjs';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'string' } } });
const say = (m) => process.stderr.write(`${m}\n`);
const postgres = await ensurePostgres(say);
const kafka = await ensureKafka(say);
const database = await createTestDatabase(postgres.address, 'bench_isolation');
const pool = new pg.Pool({ connectionString: database.url, max: 12 });
// Idle clients get 57P01 when the database is dropped WITH (FORCE) at the end; nothing to do then.
pool.on('error', () => undefined);
say(`bench database ${database.name}, kafka ${kafka.address}, node ${process.version}\n`);
let result;
try {
  result = await relayIsolationBench({ brokers: kafka.address.split(','), databaseUrl: database.url, pool, say, quick: values.quick });
} finally {
  await pool.end();
  await database.drop();
  await kafka.stop();
  await postgres.stop();
}
if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
process.stdout.write(`${JSON.stringify(result)}\n`);
