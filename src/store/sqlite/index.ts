/**
 * The SQLite store: every storage operation of the broker on one better-sqlite3 handle.
 * Writes go through one group committer (commit.ts); reads are prepared once and run
 * directly. Balance changes reach `events` after their commit.
 */
import { EventEmitter } from 'node:events'
import type { OpenedDb } from '../../db/open.js'
import type { Store, StoreEvents } from '../ports.js'
import { createSqliteAccountStore, createUserWriter } from './accounts.js'
import { createSqliteAuditStore } from './audit.js'
import { createCommitter, type Committer, type CommitterOptions } from './commit.js'
import { createSqliteIdentityStore } from './identities.js'
import { createSqliteModerationStore } from './moderation.js'
import { createPoster, createSqliteLedgerStore } from './ledger.js'
import { createSqliteRequestStore } from './requests.js'
import { createSqliteSessionStore } from './sessions.js'
import { createSqliteTransferStore } from './transfers.js'
import { createSqliteWorkerStore } from './workers.js'

export { openAuditStore } from './audit.js'

/** The SQLite store, plus what only SQLite has: its committer (benchmarks, transition code). */
export interface SqliteStore extends Store {
  readonly kind: 'sqlite'
  /** The group committer every write goes through. */
  readonly committer: Committer
}

/** Builds the store on an opened (migrated) database. `close` closes the database too. */
export function createSqliteStore(opened: OpenedDb, options: CommitterOptions = {}): SqliteStore {
  const { sqlite } = opened
  const events = new EventEmitter<StoreEvents>()
  // Every bot socket and the reprioritizer listen: no leak warning for many listeners.
  events.setMaxListeners(0)
  const committer = createCommitter(sqlite, createPoster(sqlite), events, options)
  const users = createUserWriter(sqlite)
  let closed = false
  const ping = sqlite.prepare('select 1 as ok')
  return {
    kind: 'sqlite',
    requests: createSqliteRequestStore(sqlite, committer),
    workers: createSqliteWorkerStore(sqlite, committer),
    ledger: createSqliteLedgerStore(sqlite, committer),
    accounts: createSqliteAccountStore(sqlite, committer, users),
    identities: createSqliteIdentityStore(sqlite, committer, users),
    sessions: createSqliteSessionStore(sqlite, committer),
    transfers: createSqliteTransferStore(sqlite, committer),
    audit: createSqliteAuditStore(sqlite),
    moderation: createSqliteModerationStore(sqlite, committer),
    events,
    committer,
    async health() {
      return ping.get() !== undefined
    },
    async close() {
      if (closed) return
      closed = true
      // Writes queued in this turn are flushed before the handle goes away.
      await committer.run(() => undefined)
      opened.close()
    },
  }
}
