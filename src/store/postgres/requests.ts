/**
 * Generation requests on PostgreSQL. The same contract as the SQLite store's, kept without a
 * single writer:
 * - `accept` takes a transaction-scoped advisory lock on the user (or, for the shared
 *   Anonymous account, on the address) before it reads the idempotency key and counts the
 *   waiting requests, so two processes accepting at the cap cannot both pass the count;
 * - `settle` and `end` are conditional `UPDATE … WHERE state = 'waiting' RETURNING`: the
 *   first locks the row and wins, a second one (any process) re-reads it after that commit,
 *   finds it ended and writes nothing. The unique `(kind, ref)` of the payment entry is the
 *   second fence. `settle` then locks the balance rows the payment touches (in user-id
 *   order, as the ledger does) before it reads the requester's balance, so the split
 *   (economy/payment.ts) is decided on the balance the payment is posted against.
 */
import type pg from 'pg'
import { ANONYMOUS_ID, UNFUNDED_ID, UNFUNDED_NAME } from '../../economy/anonymous.js'
import { creditLineMatters, generationEntry, payerKind, splitPayment } from '../../economy/payment.js'
import { suspicious } from '../../economy/plausibility.js'
import { BrokerError } from '../../errors.js'
import type { RequestParams, RequestRecord, RequestStore, StoredState } from '../ports.js'
import type { PgCommitter } from './commit.js'

interface RequestRow extends Omit<RequestRecord, 'params' | 'state'> {
  state: string
  params: string
}

const COLUMNS = `id, user_id as "userId", state, prompt, params, client_ip as "clientIp", created_at as "createdAt",
  finished_at as "finishedAt", worker_id as "workerId", worker_name as "workerName", model, text, tokens, kudos, error,
  idempotency_key as "idempotencyKey", capability_hash as "capabilityHash"`

const toRecord = (row: RequestRow): RequestRecord => ({ ...row, state: row.state as StoredState, params: JSON.parse(row.params) as RequestParams })

/** The lock that serializes a user's (or an anonymous address's) accepts across processes. */
export const capLockKey = (userId: number, perAddress: boolean, clientIp: string) => perAddress ? `cap:${userId}:${clientIp}` : `cap:${userId}`

/** The `RequestStore` on PostgreSQL: writes through `commit`, reads on the pool. */
export function createPgRequestStore(pool: pg.Pool, commit: PgCommitter): RequestStore {
  const all = async <T extends pg.QueryResultRow>(text: string, values: unknown[] = []) => (await pool.query<T>(text, values)).rows

  return {
    accept(request, options) {
      return commit.run(async ({ db }) => {
        const params = JSON.stringify(request.params)
        await db.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [capLockKey(request.userId, options.perAddress, request.clientIp)])
        if (request.idempotencyKey !== null) {
          const previous = (await db.query<{ id: string; prompt: string; params: string }>(
            'select id, prompt, params from requests where user_id = $1 and idempotency_key = $2', [request.userId, request.idempotencyKey])).rows[0]
          if (previous) {
            if (previous.prompt !== request.prompt || previous.params !== params) throw new BrokerError('idempotency_conflict')
            return { id: previous.id, replayed: true, balance: 0 }
          }
        }
        const active = options.perAddress
          ? await db.query<{ n: number }>("select count(*) as n from requests where user_id = $1 and state = 'waiting' and client_ip = $2", [ANONYMOUS_ID, request.clientIp])
          : await db.query<{ n: number }>("select count(*) as n from requests where user_id = $1 and state = 'waiting'", [request.userId])
        if (active.rows[0].n >= options.cap) {
          throw new BrokerError('too_many_active', `At most ${options.cap} requests may wait or run at once${options.perAddress ? ' per address for anonymous use' : ''}`)
        }
        await db.query(`insert into requests (id, user_id, state, prompt, params, client_ip, created_at, idempotency_key, capability_hash)
          values ($1, $2, 'waiting', $3, $4, $5, $6, $7, $8)`,
        [request.id, request.userId, request.prompt, params, request.clientIp, request.createdAt, request.idempotencyKey, request.capabilityHash])
        const balance = (await db.query<{ balance: number }>('select balance from balances where user_id = $1', [request.userId])).rows[0]?.balance ?? 0
        return { id: request.id, replayed: false, balance }
      })
    },

    settle(s) {
      return commit.run(async (scope) => {
        const { db } = scope
        const updated = await db.query<{ userId: number }>(`update requests set state = $1, text = $2, tokens = $3, worker_id = $4, worker_name = $5,
          model = $6, finished_at = $7 where id = $8 and state = 'waiting' returning user_id as "userId"`,
        [s.outcome, s.text, s.tokens, s.worker.id, s.worker.name, s.model, s.finishedAt, s.request])
        if (updated.rowCount === 0) return false
        const payerId = updated.rows[0].userId
        let balance = 0
        if (s.reward > 0) {
          // Lock every balance row the payment may touch, in user-id order, then read the payer's.
          const ids = [...new Set([payerId, s.worker.ownerId, UNFUNDED_ID])].sort((a, b) => a - b)
          const rows = (await db.query<{ userId: number; balance: number }>(
            'select user_id as "userId", balance from balances where user_id = any($1) order by user_id for update', [ids])).rows
          balance = rows.find((row) => row.userId === payerId)?.balance ?? 0
        }
        // Which kind of payer it is matters only for a charge that reaches into debt.
        const isLinked = creditLineMatters(s.reward, balance, s.preferred) && payerId !== ANONYMOUS_ID
          && (await db.query('select 1 from identities where user_id = $1 limit 1', [payerId])).rowCount! > 0
        const split = splitPayment(s.reward, balance, { preferred: s.preferred, creditLine: s.creditLines[payerKind(payerId, isLinked)] })
        const entry = generationEntry(s.request, payerId, s.worker.ownerId, split)
        if (split.unfunded > 0) {
          // The system account of unfunded rewards is made by the first payment that needs it.
          await db.query(`insert into users (id, username, username_key, created_at, roles) values ($1, $2, $2, $3, '[]') on conflict do nothing`,
            [UNFUNDED_ID, UNFUNDED_NAME, s.finishedAt])
          await db.query('insert into balances (user_id) values ($1) on conflict do nothing', [UNFUNDED_ID])
        }
        if (entry) await scope.post(entry)
        await db.query('update requests set kudos = $1 where id = $2', [split.charged, s.request])
        const counters = (await db.query<{ jobs: number; boundedJobs: number; flaggedAt: number | null }>(
          `update workers set jobs = jobs + 1, tokens = tokens + $1, earned = earned + $2, bounded_jobs = bounded_jobs + $3 where id = $4
           returning jobs, bounded_jobs as "boundedJobs", flagged_at as "flaggedAt"`, [s.tokens, split.earned, s.bounded ? 1 : 0, s.worker.id])).rows[0]
        const flagged = s.bounded && counters !== undefined && counters.flaggedAt === null && suspicious(Number(counters.jobs), Number(counters.boundedJobs))
        if (flagged) await db.query('update workers set flagged_at = $1 where id = $2', [s.finishedAt, s.worker.id])
        return { ...split, flagged }
      })
    },

    end(id, state, fields = {}) {
      return commit.run(async ({ db }) => (await db.query(
        "update requests set state = $1, finished_at = $2, error = $3, tokens = 0, kudos = 0 where id = $4 and state = 'waiting'",
        [state, fields.finishedAt ?? Date.now(), fields.error ?? null, id])).rowCount! > 0)
    },

    async byId(id) {
      const row = (await all<RequestRow>(`select ${COLUMNS} from requests where id = $1`, [id]))[0]
      return row && toRecord(row)
    },

    async state(id) {
      const row = (await all<{ state: string; userId: number }>('select state, user_id as "userId" from requests where id = $1', [id]))[0]
      return row && { state: row.state as StoredState, userId: row.userId }
    },

    async waitingAfter(after, limit) {
      // `collate "C"`: byte order, the order SQLite compares ids in (ids are ASCII).
      return (await all<RequestRow>(`select ${COLUMNS} from requests where state = 'waiting' and id > $1 collate "C" order by id collate "C" limit $2`, [after, limit])).map(toRecord)
    },

    async expiredBefore(cutoff, limit) {
      const rows = await all<{ id: string; userId: number; params: string }>(
        `select id, user_id as "userId", params from requests where state = 'waiting' and created_at < $1 limit $2`, [cutoff, limit])
      return rows.map((row) => ({ ...row, params: JSON.parse(row.params) as RequestParams }))
    },

    async usersWaiting() {
      return (await all<{ userId: number }>(`select distinct user_id as "userId" from requests where state = 'waiting'`)).map((row) => row.userId)
    },

    async count(filter = {}) {
      const where: string[] = []
      const values: unknown[] = []
      if (filter.userId !== undefined) where.push(`user_id = $${values.push(filter.userId)}`)
      if (filter.state !== undefined) where.push(`state = $${values.push(filter.state)}`)
      return (await all<{ n: number }>(`select count(*) as n from requests${where.length ? ` where ${where.join(' and ')}` : ''}`, values))[0].n
    },

    async latest(filter = {}) {
      const row = filter.state === undefined
        ? (await all<RequestRow>(`select ${COLUMNS} from requests order by created_at desc, id collate "C" desc limit 1`))[0]
        : (await all<RequestRow>(`select ${COLUMNS} from requests where state = $1 order by created_at desc, id collate "C" desc limit 1`, [filter.state]))[0]
      return row && toRecord(row)
    },
  }
}
