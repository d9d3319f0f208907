/**
 * The status the home page shows, behind a port (its shapes are in src/protocol/status.ts):
 * the core provides the real source (src/core/status.ts: workers, queues, throughput);
 * `createLedgerStatusSource` fills only the kudos leaderboard, for the pages without a core.
 */
import { toKudos } from '../economy/amounts.js'
import type { Ledger } from '../ledger/ledger.js'
import { TOP_USERS, type StatusSnapshot, type StatusSource } from '../protocol/status.js'

export type { StatusSnapshot, StatusSource, WorkerStatus } from '../protocol/status.js'
export { TOP_USERS } from '../protocol/status.js'

/** Reads the kudos leaderboard; a helper for every implementation of the port. */
export async function leaderboard(ledger: Pick<Ledger, 'top'>, limit = TOP_USERS): Promise<StatusSnapshot['top']> {
  return (await ledger.top(limit)).map((row) => ({ username: row.username, kudos: toKudos(row.balance) }))
}

/** A source without a core (tests of the pages alone): no workers, no queue, no throughput. */
export function createLedgerStatusSource(ledger: Pick<Ledger, 'top'>): StatusSource {
  return {
    async snapshot() {
      return { workers: [], waiting: {}, throughput: { jobs_per_min: 0, tokens_per_min: 0 }, top: await leaderboard(ledger) }
    },
  }
}
