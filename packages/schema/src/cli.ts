#!/usr/bin/env node
// `pnpm db:migrate`: applies the migrations to DATABASE_URL.
import { runMigrations } from './migrate.js';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is not set: expected a postgres:// connection string');
  process.exit(2);
}
runMigrations({ connectionString: url, log: (m) => console.error(m) }).catch((error: unknown) => {
  console.error(`migration failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
