/**
 * Transfers and awards on PostgreSQL. The funds check is the sender's conditional balance
 * update (ledger.ts: `fundedBy`), so two transfers racing on two processes cannot both spend
 * the same kudos. A retry racing its first attempt on another process meets the unique
 * `(kind, ref)` of the transfer entry (ref `sender:key`): the loser waits for the winner's
 * commit, gets `DuplicateEntryError`, and answers with the winner's transfer as a replay.
 */
import type pg from 'pg'
import { DuplicateEntryError } from '../../economy/posting-rules.js'
import { BrokerError } from '../../errors.js'
import type { TransferRecord, TransferStore } from '../ports.js'
import type { PgCommitter } from './commit.js'

const COLUMNS = `id, sender_id as "senderId", recipient_id as "recipientId", amount, memo, idempotency_key as "idempotencyKey",
  fingerprint, entry_id as "entryId", created_at as "createdAt"`

/** The `TransferStore` on PostgreSQL. */
export function createPgTransferStore(pool: pg.Pool, commit: PgCommitter): TransferStore {
  const byKey = async (db: pg.ClientBase | pg.Pool, senderId: number, key: string) =>
    (await db.query<TransferRecord>(`select ${COLUMNS} from transfers where sender_id = $1 and idempotency_key = $2`, [senderId, key])).rows[0]
  const replay = (previous: TransferRecord, fingerprint: string) => {
    if (previous.fingerprint !== fingerprint) throw new BrokerError('idempotency_conflict')
    return { transfer: previous, replayed: true }
  }

  return {
    transfer(t) {
      return commit.run(async (scope) => {
        const previous = await byKey(scope.db, t.senderId, t.idempotencyKey)
        if (previous) return replay(previous, t.fingerprint)
        let entryId: number
        try {
          // Only a positive balance can be sent: the sender's debit is checked on its locked row.
          entryId = await scope.post(t.entry, { fundedBy: t.senderId })
        } catch (error) {
          if (!(error instanceof DuplicateEntryError)) throw error
          const winner = await byKey(scope.db, t.senderId, t.idempotencyKey)
          if (!winner) throw error
          return replay(winner, t.fingerprint)
        }
        const { id } = (await scope.db.query<{ id: number }>(`
          insert into transfers (sender_id, recipient_id, amount, memo, idempotency_key, fingerprint, entry_id, created_at)
          values ($1, $2, $3, $4, $5, $6, $7, $8) returning id`,
        [t.senderId, t.recipientId, t.amount, t.memo, t.idempotencyKey, t.fingerprint, entryId, t.createdAt])).rows[0]
        const { entry: _entry, ...fields } = t
        return { transfer: { ...fields, id, entryId }, replayed: false }
      })
    },
    award(entry) {
      return commit.run(async (scope) => ({ entryId: await scope.post(entry) }))
    },
    async byId(id) {
      return (await pool.query<TransferRecord>(`select ${COLUMNS} from transfers where id = $1`, [id])).rows[0]
    },
    async byKey(senderId, idempotencyKey) {
      return byKey(pool, senderId, idempotencyKey)
    },
    async latest() {
      return (await pool.query<TransferRecord>(`select ${COLUMNS} from transfers order by id desc limit 1`)).rows[0]
    },
  }
}
