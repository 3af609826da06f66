import { defineConfig } from 'drizzle-kit';

// The service's own tables and migrations. The eventbus tables live in the `eventbus` schema
// with their own migrations table, applied by `eventbus migrate`: drizzle-kit never sees them.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './drizzle',
  schemaFilter: ['public'],
});
