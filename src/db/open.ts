/**
 * Opens the SQLite database (WAL), applies pending migrations and makes sure the
 * Anonymous account exists. Synchronous: it runs once at start-up.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import * as schema from './schema.js'
import { packageDir } from './package-dir.js'
import { ANONYMOUS_ID, ANONYMOUS_NAME } from '../economy/anonymous.js'

export type Db = BetterSQLite3Database<typeof schema>

export interface OpenedDb {
  db: Db
  sqlite: Database.Database
  close(): void
}

export { ANONYMOUS_ID, ANONYMOUS_NAME }

/** The database's file name inside the data directory (the broker's and the audit's default). */
export const DB_FILE = 'horde.sqlite'

/** `migrations/` of the package: two levels up from src/db/, three from the compiled dist/src/db/. */
export const MIGRATIONS_DIR = packageDir(path.dirname(fileURLToPath(import.meta.url)), 'migrations')

export interface OpenDbOptions {
  /** `FULL` makes every commit durable across power loss; `NORMAL` across process crashes. */
  synchronous?: 'FULL' | 'NORMAL'
}

export function openDb(file: string, options: OpenDbOptions = {}): OpenedDb {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const sqlite = new Database(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`)
  sqlite.pragma('foreign_keys = ON')
  // Several broker processes may share the file: wait for a writer instead of failing.
  sqlite.pragma('busy_timeout = 5000')
  const db = drizzle(sqlite, { schema })
  migrate(db, { migrationsFolder: MIGRATIONS_DIR })
  ensureAnonymous(db)
  return { db, sqlite, close: () => sqlite.close() }
}

function ensureAnonymous(db: Db): void {
  db.transaction((tx) => {
    tx.insert(schema.users)
      .values({ id: ANONYMOUS_ID, username: ANONYMOUS_NAME, usernameKey: ANONYMOUS_NAME.toLowerCase(), createdAt: Date.now(), roles: [] })
      .onConflictDoNothing()
      .run()
    tx.insert(schema.balances).values({ userId: ANONYMOUS_ID }).onConflictDoNothing().run()
  }, { behavior: 'immediate' })
}
