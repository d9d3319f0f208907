/**
 * Opens a PostgreSQL database for the store: a node-postgres pool whose 64-bit integers and
 * numeric sums come back as JavaScript numbers (milli-kudos and epoch milliseconds stay far
 * below 2^53), the migrations of migrations/pg/ applied under an advisory lock (several broker
 * processes starting together migrate once), and the Anonymous account ensured.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import { ANONYMOUS_ID, ANONYMOUS_NAME } from '../../economy/anonymous.js'
import { packageDir } from '../../db/package-dir.js'

export const PG_MIGRATIONS_DIR = path.join(packageDir(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), 'migrations'), 'pg')

/** Advisory lock key held while migrating (any constant no other code uses). */
const MIGRATION_LOCK = 7_401_700_001

const INT8 = 20
const NUMERIC = 1700

/** Type parsers for this store's connections: bigint and numeric as numbers. */
export const PG_TYPES = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8 || oid === NUMERIC) return (value: string) => Number(value)
    return pg.types.getTypeParser(oid, format as 'text')
  },
} as pg.CustomTypesConfig

export interface PgOptions {
  /** Connections in the pool (the committer holds one while a batch runs). */
  max?: number
}

/** A pool on `url` with this store's type parsers. */
export function createPool(url: string, options: PgOptions = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 8, types: PG_TYPES })
  // An idle connection that dies (server restart) emits here; without a listener it would crash the process.
  pool.on('error', () => undefined)
  return pool
}

/** Applies pending migrations once across processes, then ensures the Anonymous account. */
export async function migratePg(pool: pg.Pool): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      await migrate(drizzle(client), { migrationsFolder: PG_MIGRATIONS_DIR })
      await client.query('begin')
      await client.query(`insert into users (id, username, username_key, created_at, roles) values ($1, $2, $3, $4, '[]')
        on conflict do nothing`, [ANONYMOUS_ID, ANONYMOUS_NAME, ANONYMOUS_NAME.toLowerCase(), Date.now()])
      await client.query('insert into balances (user_id) values ($1) on conflict do nothing', [ANONYMOUS_ID])
      await client.query('commit')
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK])
    }
  } catch (error) {
    await client.query('rollback').catch(() => undefined)
    throw error
  } finally {
    client.release()
  }
}

/** The database part of a URL, for messages (never the password). */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url)
    return `postgres://${u.username ? `${u.username}@` : ''}${u.host}${u.pathname}`
  } catch {
    return 'postgres://(unparsable URL)'
  }
}
