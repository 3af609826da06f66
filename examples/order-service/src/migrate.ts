// Applies the service's own migrations (./drizzle, made by `drizzle-kit generate`). The eventbus
// schema is applied beside them by `eventbus migrate` (see `npm run migrate` and the README).
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { config } from './config.js';

const client = new pg.Client({ connectionString: config().databaseUrl });
await client.connect();
try {
  await migrate(drizzle(client), { migrationsFolder: fileURLToPath(new URL('../drizzle', import.meta.url)) });
  console.log('order-service migrations: up to date');
} finally {
  await client.end();
}
