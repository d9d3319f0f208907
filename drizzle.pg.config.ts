import { defineConfig } from 'drizzle-kit'

// The PostgreSQL migrations (the SQLite ones: drizzle.config.ts).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/pg-schema.ts',
  out: './migrations/pg',
})
