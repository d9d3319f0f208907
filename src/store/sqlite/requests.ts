/**
 * Generation requests on SQLite. A request is recorded (`accept`) before it is acknowledged
 * (and, but for the dispatch fast path, before it is queued), so the database knows every
 * acknowledged request; it ends once, either settled by
 * a worker (`settle`: row, worker counters and payment in one transaction, the payment split
 * against the requester's balance read in it: economy/payment.ts) or ended without one
 * (`end`). Both check the stored state inside their transaction, so a request that
 * already ended is never settled or ended again.
 */
import type Database from 'better-sqlite3'
import { ANONYMOUS_ID, UNFUNDED_ID, UNFUNDED_NAME } from '../../economy/anonymous.js'
import { creditLineMatters, generationEntry, payerKind, splitPayment } from '../../economy/payment.js'
import { suspicious } from '../../economy/plausibility.js'
import { BrokerError } from '../../errors.js'
import type { RequestParams, RequestRecord, RequestStore, StoredState } from '../ports.js'
import type { Committer } from './commit.js'

interface RequestRow extends Omit<RequestRecord, 'params' | 'state'> {
  state: string
  params: string
}

const COLUMNS = `id, user_id as userId, state, prompt, params, client_ip as clientIp, created_at as createdAt,
  finished_at as finishedAt, worker_id as workerId, worker_name as workerName, model, text, tokens, kudos, error,
  idempotency_key as idempotencyKey, capability_hash as capabilityHash`

/** States after which a request is never written again. */
const FINAL = new Set(['done', 'failed', 'cancelled'])

function toRecord(row: RequestRow): RequestRecord {
  return { ...row, state: row.state as StoredState, params: JSON.parse(row.params) as RequestParams }
}

/** The `RequestStore` on SQLite: writes through `commit`, reads prepared once. */
export function createSqliteRequestStore(sqlite: Database.Database, commit: Committer): RequestStore {
  const byId = sqlite.prepare<[string], RequestRow>(`select ${COLUMNS} from requests where id = ?`)
  const stateOf = sqlite.prepare<[string], { state: string; userId: number }>('select state, user_id as userId from requests where id = ?')
  const byKey = sqlite.prepare<[number, string], { id: string; prompt: string; params: string }>(
    'select id, prompt, params from requests where user_id = ? and idempotency_key = ?')
  const activeOfUser = sqlite.prepare<[number], { n: number }>("select count(*) as n from requests where user_id = ? and state = 'waiting'")
  const activeOfAddress = sqlite.prepare<[number, string], { n: number }>(
    "select count(*) as n from requests where user_id = ? and state = 'waiting' and client_ip = ?")
  const insert = sqlite.prepare(`insert into requests (id, user_id, state, prompt, params, client_ip, created_at, idempotency_key, capability_hash)
    values (?, ?, 'waiting', ?, ?, ?, ?, ?, ?)`)
  const balanceOf = sqlite.prepare<[number], { balance: number }>('select balance from balances where user_id = ?')
  const settleRow = sqlite.prepare(`update requests set state = ?, text = ?, tokens = ?, kudos = ?, worker_id = ?, worker_name = ?, model = ?,
    finished_at = ? where id = ?`)
  const countWorkerJob = sqlite.prepare<[number, number, number, number], { jobs: number; boundedJobs: number; flaggedAt: number | null }>(
    `update workers set jobs = jobs + 1, tokens = tokens + ?, earned = earned + ?, bounded_jobs = bounded_jobs + ? where id = ?
     returning jobs, bounded_jobs as boundedJobs, flagged_at as flaggedAt`)
  const flagWorker = sqlite.prepare('update workers set flagged_at = ? where id = ?')
  // The system account of unfunded rewards is made by the first payment that needs it.
  const systemUser = sqlite.prepare("insert into users (id, username, username_key, created_at, roles) values (?, ?, ?, ?, '[]') on conflict do nothing")
  const systemBalance = sqlite.prepare('insert into balances (user_id) values (?) on conflict do nothing')
  const linked = sqlite.prepare<[number], { one: number }>('select 1 as one from identities where user_id = ? limit 1')
  const endRow = sqlite.prepare("update requests set state = ?, finished_at = ?, error = ?, tokens = 0, kudos = 0 where id = ? and state = 'waiting'")
  const waitingAfter = sqlite.prepare<[string, number], RequestRow>(`select ${COLUMNS} from requests where state = 'waiting' and id > ? order by id limit ?`)
  const expiredBefore = sqlite.prepare<[number, number], { id: string; userId: number; params: string }>(
    "select id, user_id as userId, params from requests where state = 'waiting' and created_at < ? limit ?")
  const usersWaiting = sqlite.prepare<[], { userId: number }>("select distinct user_id as userId from requests where state = 'waiting'")
  const latestOf = sqlite.prepare<[string], RequestRow>(`select ${COLUMNS} from requests where state = ? order by created_at desc, id desc limit 1`)
  const latest = sqlite.prepare<[], RequestRow>(`select ${COLUMNS} from requests order by created_at desc, id desc limit 1`)
  // Counting queries are built per filter on first use and kept: four shapes at most.
  const counters = new Map<string, Database.Statement<unknown[], { n: number }>>()

  return {
    accept(request, options) {
      return commit.run(() => {
        const params = JSON.stringify(request.params)
        if (request.idempotencyKey !== null) {
          const previous = byKey.get(request.userId, request.idempotencyKey)
          if (previous) {
            if (previous.prompt !== request.prompt || previous.params !== params) throw new BrokerError('idempotency_conflict')
            return { id: previous.id, replayed: true, balance: 0 }
          }
        }
        const active = options.perAddress ? activeOfAddress.get(ANONYMOUS_ID, request.clientIp)!.n : activeOfUser.get(request.userId)!.n
        if (active >= options.cap) {
          throw new BrokerError('too_many_active', `At most ${options.cap} requests may wait or run at once${options.perAddress ? ' per address for anonymous use' : ''}`)
        }
        insert.run(request.id, request.userId, request.prompt, params, request.clientIp, request.createdAt, request.idempotencyKey, request.capabilityHash)
        return { id: request.id, replayed: false, balance: balanceOf.get(request.userId)?.balance ?? 0 }
      })
    },

    settle(s) {
      return commit.run((scope) => {
        const row = stateOf.get(s.request)
        if (!row || FINAL.has(row.state)) return false
        const balance = balanceOf.get(row.userId)?.balance ?? 0
        // Which kind of payer it is matters only for a charge that reaches into debt.
        const isLinked = creditLineMatters(s.reward, balance, s.preferred) && row.userId !== ANONYMOUS_ID && linked.get(row.userId) !== undefined
        const split = splitPayment(s.reward, balance, { preferred: s.preferred, creditLine: s.creditLines[payerKind(row.userId, isLinked)] })
        const entry = generationEntry(s.request, row.userId, s.worker.ownerId, split)
        if (split.unfunded > 0) {
          systemUser.run(UNFUNDED_ID, UNFUNDED_NAME, UNFUNDED_NAME, s.finishedAt)
          systemBalance.run(UNFUNDED_ID)
        }
        if (entry) scope.post(entry)
        settleRow.run(s.outcome, s.text, s.tokens, split.charged, s.worker.id, s.worker.name, s.model, s.finishedAt, s.request)
        const counters = countWorkerJob.get(s.tokens, split.earned, s.bounded ? 1 : 0, s.worker.id)
        const flagged = s.bounded && counters !== undefined && counters.flaggedAt === null && suspicious(counters.jobs, counters.boundedJobs)
        if (flagged) flagWorker.run(s.finishedAt, s.worker.id)
        return { ...split, flagged }
      })
    },

    end(id, state, fields = {}) {
      return commit.run(() => endRow.run(state, fields.finishedAt ?? Date.now(), fields.error ?? null, id).changes > 0)
    },

    async byId(id) {
      const row = byId.get(id)
      return row && toRecord(row)
    },

    async state(id) {
      const row = stateOf.get(id)
      return row && { state: row.state as StoredState, userId: row.userId }
    },

    async waitingAfter(after, limit) {
      return waitingAfter.all(after, limit).map(toRecord)
    },

    async expiredBefore(cutoff, limit) {
      return expiredBefore.all(cutoff, limit).map((row) => ({ ...row, params: JSON.parse(row.params) as RequestParams }))
    },

    async usersWaiting() {
      return usersWaiting.all().map((row) => row.userId)
    },

    async count(filter = {}) {
      const where = [filter.userId !== undefined ? 'user_id = ?' : null, filter.state !== undefined ? 'state = ?' : null].filter((w) => w !== null)
      const shape = where.join(' and ')
      let statement = counters.get(shape)
      if (!statement) {
        statement = sqlite.prepare<unknown[], { n: number }>(`select count(*) as n from requests${shape ? ` where ${shape}` : ''}`)
        counters.set(shape, statement)
      }
      const args = [filter.userId, filter.state].filter((a) => a !== undefined)
      return statement.get(...args)!.n
    },

    async latest(filter = {}) {
      const row = filter.state === undefined ? latest.get() : latestOf.get(filter.state)
      return row && toRecord(row)
    },
  }
}
