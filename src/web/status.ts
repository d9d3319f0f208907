/**
 * The status the home page shows, behind a port: the job pipeline provides the real source
 * (src/gateway/status.ts: workers, queues, throughput); `createLedgerStatusSource` fills only
 * the kudos leaderboard, for the pages without a pipeline. `GET /v1/status`
 * and the `/v1/status/live` socket both serve a `StatusSnapshot`.
 */
import { toKudos } from '../ledger/amounts.js'
import type { Ledger } from '../ledger/ledger.js'

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
export async function leaderboard(ledger: Pick<Ledger, 'top'>, limit = TOP_USERS): Promise<StatusSnapshot['top']> {
  return (await ledger.top(limit)).map((row) => ({ username: row.username, kudos: toKudos(row.balance) }))
}

/**
 * @deprecated The synchronous leaderboard on the drizzle handle, kept only for
 * src/gateway/status.ts until it uses `leaderboard`.
 */
export { legacyTopKudos as topKudos } from '../store/sqlite/legacy.js'

/** A source without a pipeline (tests of the pages alone): no workers, no queue, no throughput. */
export function createLedgerStatusSource(ledger: Pick<Ledger, 'top'>): StatusSource {
  return {
    async snapshot() {
      return { workers: [], waiting: {}, throughput: { jobs_per_min: 0, tokens_per_min: 0 }, top: await leaderboard(ledger) }
    },
  }
}
