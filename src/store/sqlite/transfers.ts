/**
 * Transfers and awards on SQLite. A transfer is one write: the idempotency lookup, the
 * positive-balance check, the entry and the transfer row share a transaction, so a key is
 * used once and a sender never spends kudos twice, however many retries race.
 */
import type Database from 'better-sqlite3'
import { BrokerError } from '../../errors.js'
import type { TransferRecord, TransferStore } from '../ports.js'
import type { Committer } from './commit.js'

const COLUMNS = `id, sender_id as senderId, recipient_id as recipientId, amount, memo, idempotency_key as idempotencyKey,
  fingerprint, entry_id as entryId, created_at as createdAt`

/** The `TransferStore` on SQLite: transfers and awards through `commit`, reads prepared once. */
export function createSqliteTransferStore(sqlite: Database.Database, commit: Committer): TransferStore {
  const byKey = sqlite.prepare<[number, string], TransferRecord>(`select ${COLUMNS} from transfers where sender_id = ? and idempotency_key = ?`)
  const byId = sqlite.prepare<[number], TransferRecord>(`select ${COLUMNS} from transfers where id = ?`)
  const latest = sqlite.prepare<[], TransferRecord>(`select ${COLUMNS} from transfers order by id desc limit 1`)
  const balanceOf = sqlite.prepare<[number], { balance: number }>('select balance from balances where user_id = ?')
  const insert = sqlite.prepare<[number, number, number, string | null, string, string, number, number], { id: number }>(`
    insert into transfers (sender_id, recipient_id, amount, memo, idempotency_key, fingerprint, entry_id, created_at)
    values (?, ?, ?, ?, ?, ?, ?, ?) returning id`)

  return {
    transfer(t) {
      return commit.run((scope) => {
        const previous = byKey.get(t.senderId, t.idempotencyKey)
        if (previous) {
          if (previous.fingerprint !== t.fingerprint) throw new BrokerError('idempotency_conflict')
          return { transfer: previous, replayed: true }
        }
        const balance = balanceOf.get(t.senderId)?.balance ?? 0
        // Only a positive balance can be sent: a user in debt from generation sends nothing.
        if (t.amount > Math.max(balance, 0)) {
          throw new BrokerError('insufficient_kudos', undefined, { balance: balance / 1000, amount: t.amount / 1000 })
        }
        const entryId = scope.post(t.entry)
        const { id } = insert.get(t.senderId, t.recipientId, t.amount, t.memo, t.idempotencyKey, t.fingerprint, entryId, t.createdAt)!
        const { entry: _entry, ...fields } = t
        return { transfer: { ...fields, id, entryId }, replayed: false }
      })
    },
    award(entry) {
      return commit.run((scope) => ({ entryId: scope.post(entry) }))
    },
    async byId(id) {
      return byId.get(id)
    },
    async byKey(senderId, idempotencyKey) {
      return byKey.get(senderId, idempotencyKey)
    },
    async latest() {
      return latest.get()
    },
  }
}
