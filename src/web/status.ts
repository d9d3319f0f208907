/**
 * The status the home page shows, behind a port: the job pipeline provides the real source
 * (src/gateway/status.ts: workers, queues, throughput); `createLedgerStatusSource` fills only
 * the kudos leaderboard, for the pages without a pipeline. `GET /v1/status`
 * and the `/v1/status/live` socket both serve a `StatusSnapshot`.
 */
import { desc, eq, ne } from 'drizzle-orm'
import { ANONYMOUS_ID, type Db } from '../db/open.js'
import { balances, users } from '../db/schema.js'
import { toKudos } from '../ledger/amounts.js'

export interface WorkerStatus {
  /** The worker's public name. */
  name: string
  /** Username of the worker's owner. */
  owner: string
  /** Models the worker serves. */
  models: string[]
  /** Jobs the worker finished since it connected. */
  jobs: number
  /** Seconds since the worker connected. */
  uptime_s: number
}

export interface StatusSnapshot {
  /** Workers online now. */
  workers: WorkerStatus[]
  /** Requests waiting, per model name. */
  waiting: Record<string, number>
  /** Recent throughput over the last minutes. */
  throughput: { jobs_per_min: number; tokens_per_min: number }
  /** The users with the most kudos, highest first (Anonymous never listed). */
  top: Array<{ username: string; kudos: number }>
}

/** The port: a snapshot of the horde, cheap enough to take every push interval. */
export interface StatusSource {
  snapshot(): Promise<StatusSnapshot>
}

/** How many users the leaderboard lists. */
export const TOP_USERS = 10

/** Reads the kudos leaderboard; a helper for every implementation of the port. */
export function topKudos(db: Db, limit = TOP_USERS): StatusSnapshot['top'] {
  return db.select({ username: users.username, balance: balances.balance })
    .from(balances).innerJoin(users, eq(users.id, balances.userId))
    .where(ne(balances.userId, ANONYMOUS_ID))
    .orderBy(desc(balances.balance), users.id).limit(limit).all()
    .map((row) => ({ username: row.username, kudos: toKudos(row.balance) }))
}

/** A source without a pipeline (tests of the pages alone): no workers, no queue, no throughput. */
export function createLedgerStatusSource(db: Db): StatusSource {
  return {
    async snapshot() {
      return { workers: [], waiting: {}, throughput: { jobs_per_min: 0, tokens_per_min: 0 }, top: topKudos(db) }
    },
  }
}
