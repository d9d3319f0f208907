/**
 * Workers on PostgreSQL. `register` is one upsert that touches the row only when the caller
 * owns it (`ON CONFLICT (name) DO UPDATE … WHERE owner_id = …`), so two processes announcing
 * one name for two users cannot both own it. Uptime is paid here, credit and counters in one
 * write, as on SQLite.
 */
import type pg from 'pg'
import { BrokerError } from '../../errors.js'
import type { WorkerRecord, WorkerStore } from '../ports.js'
import type { PgCommitter } from './commit.js'

const COLUMNS = `id, name, owner_id as "ownerId", created_at as "createdAt", last_seen_at as "lastSeenAt", uptime_ms as "uptimeMs",
  jobs, tokens, earned, bounded_jobs as "boundedJobs", flagged_at as "flaggedAt", trusted = 1 as trusted, paused_at as "pausedAt", paused_reason as "pausedReason"`

/** The `WorkerStore` on PostgreSQL: writes through `commit`, reads on the pool. */
export function createPgWorkerStore(pool: pg.Pool, commit: PgCommitter): WorkerStore {
  const all = async (text: string, values: unknown[]) => (await pool.query<WorkerRecord>(text, values)).rows
  return {
    register(name, ownerId, at) {
      return commit.run(async ({ db }) => {
        const row = (await db.query<WorkerRecord>(`insert into workers (name, owner_id, created_at, last_seen_at) values ($1, $2, $3, $3)
          on conflict (name) do update set last_seen_at = excluded.last_seen_at where workers.owner_id = excluded.owner_id
          returning ${COLUMNS}`, [name, ownerId, at])).rows[0]
        if (!row) throw new BrokerError('worker_name_taken')
        return row
      })
    },

    creditUptime(credits, at) {
      if (credits.length === 0) return Promise.resolve()
      // One piece of work: either the whole batch is credited or none of it (the caller gives the time back).
      // Balance rows are locked in owner-id order, then worker rows in id order, as every other write does.
      const byOwner = [...credits].sort((x, y) => x.ownerId - y.ownerId || x.workerId - y.workerId)
      const byWorker = [...credits].sort((x, y) => x.workerId - y.workerId)
      return commit.run(async (scope) => {
        for (const c of byOwner) {
          const ms = Math.round(c.ms)
          await scope.post({ kind: 'uptime', ref: c.ref, memo: `${ms} ms online`, postings: [{ userId: c.ownerId, amount: c.milli, category: 'uptime' }] })
        }
        for (const c of byWorker) {
          await scope.db.query('update workers set uptime_ms = uptime_ms + $1, earned = earned + $2, last_seen_at = $3 where id = $4', [Math.round(c.ms), c.milli, at, c.workerId])
        }
      })
    },

    async byName(name) {
      return (await all(`select ${COLUMNS} from workers where name = $1`, [name]))[0]
    },

    async byNames(names) {
      if (names.length === 0) return []
      return all(`select ${COLUMNS} from workers where name = any($1::text[])`, [names])
    },

    async byOwner(ownerId) {
      return all(`select ${COLUMNS} from workers where owner_id = $1 order by earned desc, id`, [ownerId])
    },
  }
}
