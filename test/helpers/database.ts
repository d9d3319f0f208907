/**
 * A broker's database from outside the broker, whichever it is: `database` is the SQLite
 * file (DATA_DIR/horde.sqlite) or the PostgreSQL URL the broker stores in (TestBroker and
 * BrokerProcess both name it). Tests that read or write behind the broker's back (audits of
 * a killed broker, rows no store operation makes) go through these, so they run unchanged
 * on both stores.
 */
import Database from 'better-sqlite3'
import pg from 'pg'
import { openDb } from '../../src/db/open.js'
import type { AuditStore, Store } from '../../src/store/ports.js'
import { openPgAuditStore } from '../../src/store/postgres/audit.js'
import { openPostgresStore } from '../../src/store/postgres/index.js'
import { openAuditStore } from '../../src/store/sqlite/audit.js'
import { createSqliteStore } from '../../src/store/sqlite/index.js'

/** True when `database` is a PostgreSQL URL rather than a SQLite file. */
export const isPostgresUrl = (database: string) => /^postgres(ql)?:\/\//.test(database)

/** Runs `work` on a read-only audit store of `database`, closed afterwards. */
export async function withAudit<T>(database: string, work: (audit: AuditStore) => Promise<T>): Promise<T> {
  const { audit, close } = isPostgresUrl(database) ? openPgAuditStore(database) : openAuditStore(database)
  try {
    return await work(audit)
  } finally {
    await close()
  }
}

/** A second store on the broker's database, as a second process would open it (close it after use). */
export function openSideStore(database: string): Promise<Store> {
  return isPostgresUrl(database) ? openPostgresStore(database, { max: 2 }) : Promise.resolve(createSqliteStore(openDb(database)))
}

/**
 * One raw statement on `database`, with `?` placeholders (numbered for PostgreSQL). For rows
 * no store operation makes; the broker keeps running meanwhile (SQLite: it waits for the lock).
 */
export async function execute(database: string, sql: string, params: unknown[] = []): Promise<void> {
  if (isPostgresUrl(database)) {
    let n = 0
    const client = new pg.Client({ connectionString: database })
    await client.connect()
    try {
      await client.query(sql.replace(/\?/g, () => `$${++n}`), params)
    } finally {
      await client.end()
    }
    return
  }
  const sqlite = new Database(database)
  try {
    sqlite.pragma('busy_timeout = 5000')
    sqlite.prepare(sql).run(...params)
  } finally {
    sqlite.close()
  }
}
