import { defineConfig } from 'drizzle-kit';

// `pnpm db:generate` writes a new migration into drizzle/ after a change to the tables.
export default defineConfig({
  dialect: 'postgresql',
  schema: './packages/schema/src/tables.ts',
  out: './drizzle',
  schemaFilter: ['eventbus'],
  migrations: { schema: 'eventbus', table: '__drizzle_migrations' },
});
