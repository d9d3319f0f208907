/**
 * The PostgreSQL store: every storage operation of the broker on one node-postgres pool.
 * Writes go through one group committer per process (commit.ts); reads run on the pool,
 * outside any transaction. Balance changes reach `events` after their commit. Several
 * broker processes may share the database: each write keeps its invariants with unique
 * indexes, conditional updates, row locks in id order and advisory locks (see the files).
 */
import { EventEmitter } from 'node:events'
import type pg from 'pg'
import type { Store, StoreEvents } from '../ports.js'
import { createPgAccountStore } from './accounts.js'
import { createPgAuditStore } from './audit.js'
import { createPgCommitter, type PgCommitter, type PgCommitterOptions } from './commit.js'
import { createPgIdentityStore } from './identities.js'
import { createPgModerationStore } from './moderation.js'
import { createPgLedgerStore, postPg } from './ledger.js'
import { createPool, migratePg, type PgOptions } from './open.js'
import { createPgRequestStore } from './requests.js'
import { createPgSessionStore } from './sessions.js'
import { createPgTransferStore } from './transfers.js'
import { createPgWorkerStore } from './workers.js'

/** The PostgreSQL store, plus its pool and committer (benchmarks, tests). */
export interface PostgresStore extends Store {
  readonly kind: 'postgres'
  readonly pool: pg.Pool
  readonly committer: PgCommitter
}

/** Builds the store on a pool whose database is migrated. `close` ends the pool. */
export function createPostgresStore(pool: pg.Pool, options: PgCommitterOptions = {}): PostgresStore {
  const events = new EventEmitter<StoreEvents>()
  // Every bot socket and the reprioritizer listen: no leak warning for many listeners.
  events.setMaxListeners(0)
  const committer = createPgCommitter(pool, postPg, events, options)
  let closed: Promise<void> | undefined
  return {
    kind: 'postgres',
    requests: createPgRequestStore(pool, committer),
    workers: createPgWorkerStore(pool, committer),
    ledger: createPgLedgerStore(pool, committer),
    accounts: createPgAccountStore(pool, committer),
    identities: createPgIdentityStore(pool, committer),
    sessions: createPgSessionStore(pool, committer),
    transfers: createPgTransferStore(pool, committer),
    audit: createPgAuditStore(pool),
    moderation: createPgModerationStore(pool, committer),
    events,
    pool,
    committer,
    async health() {
      return (await pool.query('select 1 as ok')).rows.length === 1
    },
    close() {
      // Queued writes are committed before the pool goes away.
      closed ??= committer.drain().then(() => pool.end())
      return closed
    },
  }
}

/** Connects to `url`, migrates (once across processes) and returns the store. */
export async function openPostgresStore(url: string, options: PgOptions & PgCommitterOptions = {}): Promise<PostgresStore> {
  const pool = createPool(url, options)
  try {
    await migratePg(pool)
  } catch (error) {
    await pool.end().catch(() => undefined)
    throw error
  }
  return createPostgresStore(pool, options)
}
