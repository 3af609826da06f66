import { defineConfig } from 'drizzle-kit';

// `pnpm db:generate` writes a new migration into packages/schema/drizzle/ (the
// published @eventbus/schema carries it; ./drizzle at the root is a link to it) after a change to the tables.
export default defineConfig({
  dialect: 'postgresql',
  schema: './packages/schema/src/tables.ts',
  out: './packages/schema/drizzle',
  schemaFilter: ['eventbus'],
  migrations: { schema: 'eventbus', table: '__drizzle_migrations' },
});
