/**
 * The ledger on PostgreSQL: the one place that writes `ledger_entries`, `postings` and the
 * `balances` rows. Without SQLite's single writer the invariants are kept by the database:
 * - `(kind, ref)` is unique and the entry is inserted with ON CONFLICT DO NOTHING: a second
 *   settlement of a request or a second uptime batch finds the first (waiting for it to
 *   commit when it is in flight) and raises `DuplicateEntryError`;
 * - balance rows are updated in user-id order, so two transfers A→B and B→A lock the same
 *   rows in the same order and never deadlock each other;
 * - a funded posting (a transfer's sender) is a conditional `UPDATE … WHERE balance >= amount
 *   RETURNING`: the check and the debit are one statement on the locked row.
 */
import type pg from 'pg'
import { ANONYMOUS_ID } from '../../economy/anonymous.js'
import { DuplicateEntryError, checkEntry, mintedBy, type BalanceChange } from '../../economy/posting-rules.js'
import { BrokerError } from '../../errors.js'
import type { AccountRecord, EntryHeader, EntryView, LedgerStore } from '../ports.js'
import { ACCOUNT_COLUMNS, CATEGORY_COLUMN } from '../sqlite/ledger.js'
import type { PgCommitter, PgPoster } from './commit.js'

export { ACCOUNT_COLUMNS }

/** Appends an entry on the batch's connection (inside its transaction). */
export const postPg: PgPoster = async (db, entry, options = {}) => {
  checkEntry(entry)
  const at = Date.now()
  const ref = entry.ref ?? null
  const inserted = await db.query<{ id: number }>(
    `insert into ledger_entries (kind, ref, minted, memo, actor_id, created_at) values ($1, $2, $3, $4, $5, $6)
     on conflict do nothing returning id`, [entry.kind, ref, mintedBy(entry), entry.memo ?? null, entry.actorId ?? null, at])
  const row = inserted.rows[0]
  if (!row) throw new DuplicateEntryError(entry.kind, ref ?? '')
  // Published in the entry's order (as the SQLite store does), locked in user-id order.
  const changes: BalanceChange[] = new Array(entry.postings.length)
  const lockOrder = entry.postings.map((_, i) => i).sort((a, b) => entry.postings[a].userId - entry.postings[b].userId)
  for (const i of lockOrder) {
    const p = entry.postings[i]
    const column = CATEGORY_COLUMN[p.category]
    const funded = options.fundedBy === p.userId && p.amount < 0
    const updated = await db.query<{ balance: number }>(
      `update balances set balance = balance + $1, ${column} = ${column} + abs($1) where user_id = $2
       ${funded ? 'and balance + $1 >= 0' : ''} returning balance`, [p.amount, p.userId])
    if (!updated.rows[0]) {
      if (funded) {
        const balance = (await db.query<{ balance: number }>('select balance from balances where user_id = $1', [p.userId])).rows[0]?.balance ?? 0
        throw new BrokerError('insufficient_kudos', undefined, { balance: balance / 1000, amount: -p.amount / 1000 })
      }
      throw new Error(`no balance row for user ${p.userId}`)
    }
    changes[i] = { userId: p.userId, balance: updated.rows[0].balance, delta: p.amount, kind: entry.kind, category: p.category, entryId: row.id, ref, counterpartyId: p.counterpartyId ?? null, at }
  }
  // Postings in the entry's own order, in one statement.
  const values = entry.postings.map((_, i) => `($1, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5}, $${i * 5 + 6})`)
  await db.query(`insert into postings (entry_id, user_id, amount, category, counterparty_id, created_at) values ${values.join(', ')}`,
    [row.id, ...entry.postings.flatMap((p) => [p.userId, p.amount, p.category, p.counterpartyId ?? null, at])])
  return { entryId: row.id, changes }
}

/** The `LedgerStore` on PostgreSQL: appends through `commit`, reads on the pool. */
export function createPgLedgerStore(pool: pg.Pool, commit: PgCommitter): LedgerStore {
  const entryColumns = `e.id as id, p.id as "postingId", e.kind as kind, p.category as category, p.amount as amount,
    p.counterparty_id as "counterpartyId", e.ref as ref, e.memo as memo, p.created_at as "createdAt"
    from postings p join ledger_entries e on e.id = p.entry_id`
  return {
    append(entry) {
      return commit.run(async (scope) => ({ entryId: await scope.post(entry) }))
    },
    async account(userId) {
      return (await pool.query<AccountRecord>(`select ${PG_ACCOUNT_COLUMNS} from balances where user_id = $1`, [userId])).rows[0]
    },
    async entries(userId, options = {}) {
      const limit = Math.min(Math.max(options.limit ?? 50, 1), 500)
      // `before: 0` means no cursor, as a missing one does.
      const rows = options.before
        ? await pool.query<EntryView>(`select ${entryColumns} where p.user_id = $1 and p.id < $2 order by p.id desc limit $3`, [userId, options.before, limit])
        : await pool.query<EntryView>(`select ${entryColumns} where p.user_id = $1 order by p.id desc limit $2`, [userId, limit])
      return rows.rows
    },
    async entryByRef(kind, ref) {
      return (await pool.query<{ id: number }>('select id from ledger_entries where kind = $1 and ref = $2', [kind, ref])).rows[0]
    },
    async entry(entryId) {
      return (await pool.query<EntryHeader>(
        'select id, kind, ref, memo, actor_id as "actorId", created_at as "createdAt" from ledger_entries where id = $1', [entryId])).rows[0]
    },
    async top(limit, offset = 0) {
      return (await pool.query<{ userId: number; username: string; balance: number }>(`
        select u.id as "userId", u.username as username, b.balance as balance from balances b join users u on u.id = b.user_id
        where b.user_id != $1 and b.user_id >= 0 order by b.balance desc, u.id limit $2 offset $3`, [ANONYMOUS_ID, limit, offset])).rows
    },
  }
}

/** `ACCOUNT_COLUMNS` with the aliases quoted: PostgreSQL folds unquoted names to lower case. */
export const PG_ACCOUNT_COLUMNS = ACCOUNT_COLUMNS.replace(/ as (\w+)/g, ' as "$1"')
