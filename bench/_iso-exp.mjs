import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { createTestDatabase, ensureKafka, ensurePostgres } from '@eventbus/dev-services';
import { runCase } from './isolation.mjs';
const say = (m) => process.stderr.write(`${m}\n`);
const postgres = await ensurePostgres(say);
const kafka = await ensureKafka(say);
const database = await createTestDatabase(postgres.address, 'isoexp');
const pool = new pg.Pool({ connectionString: database.url, max: 12 });
const ctx = { brokers: kafka.address.split(','), databaseUrl: database.url, db: drizzle(pool), say, quick: true };
const rate = Number(process.argv[2] ?? 1000);
for (const c of (process.argv[3] ?? 'control,succeed,fail').split(',')) {
  if (c === 'control') await runCase(ctx, { label: 'control', poisonRate: 0, seconds: 8, warmupSeconds: 3 });
  if (c === 'succeed') await runCase(ctx, { label: `X ${rate}/s succeeding`, poisonRate: rate, seconds: 8, warmupSeconds: 3, poisonTenantFails: false });
  if (c === 'fail') await runCase(ctx, { label: `X ${rate}/s failing`, poisonRate: rate, seconds: 8, warmupSeconds: 3 });
}
await pool.end(); await database.drop(); await kafka.stop(); await postgres.stop();
