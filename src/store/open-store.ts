/**
 * Chooses and opens the broker's store from its config: PostgreSQL when `DATABASE_URL` is
 * set, otherwise the embedded SQLite file in the data directory (the default).
 */
import path from 'node:path'
import type { Config } from '../config.js'
import { DB_FILE, openDb } from '../db/open.js'
import type { Store } from './ports.js'
import { openPostgresStore } from './postgres/index.js'
import { createSqliteStore } from './sqlite/index.js'

/** Opens (and migrates) the configured database; `store.close()` closes it. */
export async function openStore(config: Pick<Config, 'databaseUrl' | 'dataDir' | 'sqliteSynchronous'>): Promise<Store> {
  if (config.databaseUrl !== undefined) return openPostgresStore(config.databaseUrl)
  return createSqliteStore(openDb(path.join(config.dataDir, DB_FILE), { synchronous: config.sqliteSynchronous }))
}
