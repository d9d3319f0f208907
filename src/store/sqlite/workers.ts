/**
 * Workers on SQLite: one row per worker name, owned by the user who first announced it, with
 * counters of the work it did. Uptime is paid here too, because the credit and the worker's
 * counters must change in one transaction.
 */
import type Database from 'better-sqlite3'
import { BrokerError } from '../../errors.js'
import type { WorkerRecord, WorkerStore } from '../ports.js'
import type { Committer } from './commit.js'

const COLUMNS = `id, name, owner_id as ownerId, created_at as createdAt, last_seen_at as lastSeenAt, uptime_ms as uptimeMs,
  jobs, tokens, earned, bounded_jobs as boundedJobs, flagged_at as flaggedAt, trusted, paused_at as pausedAt, paused_reason as pausedReason`

type WorkerRow = Omit<WorkerRecord, 'trusted'> & { trusted: number }
/** A `workers` row (trusted as 0/1) as a record. */
export const toWorker = (row: WorkerRow): WorkerRecord => ({ ...row, trusted: row.trusted === 1 })

/** The `WorkerStore` on SQLite: writes through `commit`, reads prepared once. */
export function createSqliteWorkerStore(sqlite: Database.Database, commit: Committer): WorkerStore {
  const byName = sqlite.prepare<[string], WorkerRow>(`select ${COLUMNS} from workers where name = ?`)
  const byOwner = sqlite.prepare<[number], WorkerRow>(`select ${COLUMNS} from workers where owner_id = ? order by earned desc, id`)
  const touch = sqlite.prepare<[number, number], WorkerRow>(`update workers set last_seen_at = ? where id = ? returning ${COLUMNS}`)
  const insert = sqlite.prepare<[string, number, number, number], WorkerRow>(
    `insert into workers (name, owner_id, created_at, last_seen_at) values (?, ?, ?, ?) returning ${COLUMNS}`)
  const credit = sqlite.prepare('update workers set uptime_ms = uptime_ms + ?, earned = earned + ?, last_seen_at = ? where id = ?')

  return {
    register(name, ownerId, at) {
      return commit.run(() => {
        const existing = byName.get(name)
        if (existing && existing.ownerId !== ownerId) throw new BrokerError('worker_name_taken')
        return toWorker(existing ? touch.get(at, existing.id)! : insert.get(name, ownerId, at, at)!)
      })
    },

    creditUptime(credits, at) {
      if (credits.length === 0) return Promise.resolve()
      // One piece of work: either the whole batch is credited or none of it (the caller gives the time back).
      return commit.run((scope) => {
        for (const c of credits) {
          const ms = Math.round(c.ms)
          scope.post({ kind: 'uptime', ref: c.ref, memo: `${ms} ms online`, postings: [{ userId: c.ownerId, amount: c.milli, category: 'uptime' }] })
          credit.run(ms, c.milli, at, c.workerId)
        }
      })
    },

    async byName(name) {
      const row = byName.get(name)
      return row && toWorker(row)
    },

    async byNames(names) {
      if (names.length === 0) return []
      // Chunked: SQLite limits the number of parameters of one statement.
      const rows: WorkerRow[] = []
      for (let i = 0; i < names.length; i += 500) {
        const chunk = names.slice(i, i + 500)
        rows.push(...sqlite.prepare<string[], WorkerRow>(`select ${COLUMNS} from workers where name in (${chunk.map(() => '?').join(', ')})`).all(...chunk))
      }
      return rows.map(toWorker)
    },

    async byOwner(ownerId) {
      return byOwner.all(ownerId).map(toWorker)
    },
  }
}
