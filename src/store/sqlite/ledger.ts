/**
 * The ledger on SQLite: the one place that writes `ledger_entries`, `postings` and the
 * `balances` rows. `createPoster` appends an entry inside a transaction someone else holds
 * (the committer's); the `LedgerStore` reads are direct prepared statements, outside any
 * transaction (WAL readers never wait for the writer).
 */
import type Database from 'better-sqlite3'
import { ANONYMOUS_ID } from '../../economy/anonymous.js'
import { DuplicateEntryError } from '../../economy/posting-rules.js'
import { CATEGORIES, checkEntry, mintedBy, type BalanceChange, type Category, type EntryInput } from '../../economy/posting-rules.js'
import type { AccountRecord, EntryHeader, EntryView, LedgerStore } from '../ports.js'
import type { Committer, Poster } from './commit.js'

/** The `balances` column that keeps each category's running total (of absolute amounts). */
export const CATEGORY_COLUMN = {
  generation: 'earned_generation',
  uptime: 'earned_uptime',
  spent: 'spent',
  sent: 'sent',
  received: 'received',
  awarded: 'awarded',
  unfunded: 'unfunded',
} as const satisfies Record<Category, string>


/** The columns of a balance row, as `AccountRecord` names them. */
export const ACCOUNT_COLUMNS = `user_id as userId, balance, earned_generation as earnedGeneration, earned_uptime as earnedUptime,
  spent, sent, received, awarded, unfunded`

/** Prepares the posting statements once. Must be called inside a transaction (it does not open one). */
export function createPoster(sqlite: Database.Database): Poster {
  const insertEntry = sqlite.prepare<[string, string | null, number, string | null, number | null, number], { id: number }>(
    'insert into ledger_entries (kind, ref, minted, memo, actor_id, created_at) values (?, ?, ?, ?, ?, ?) on conflict do nothing returning id')
  const insertPosting = sqlite.prepare(
    'insert into postings (entry_id, user_id, amount, category, counterparty_id, created_at) values (?, ?, ?, ?, ?, ?)')
  // One statement per category: the balance and that category's running total of absolute amounts.
  const updateBalance = Object.fromEntries(CATEGORIES.map((category) => {
    const column = CATEGORY_COLUMN[category]
    return [category, sqlite.prepare<[number, number, number], { balance: number }>(
      `update balances set balance = balance + ?, ${column} = ${column} + abs(?) where user_id = ? returning balance`)]
  })) as Record<Category, Database.Statement<[number, number, number], { balance: number }>>

  return (entry) => {
    checkEntry(entry)
    const at = Date.now()
    const ref = entry.ref ?? null
    const row = insertEntry.get(entry.kind, ref, mintedBy(entry), entry.memo ?? null, entry.actorId ?? null, at)
    if (!row) throw new DuplicateEntryError(entry.kind, ref ?? '')
    const changes: BalanceChange[] = []
    for (const p of entry.postings) {
      const counterpartyId = p.counterpartyId ?? null
      insertPosting.run(row.id, p.userId, p.amount, p.category, counterpartyId, at)
      const updated = updateBalance[p.category].get(p.amount, p.amount, p.userId)
      if (!updated) throw new Error(`no balance row for user ${p.userId}`)
      changes.push({ userId: p.userId, balance: updated.balance, delta: p.amount, kind: entry.kind, category: p.category, entryId: row.id, ref, counterpartyId, at })
    }
    return { entryId: row.id, changes }
  }
}

/** The `LedgerStore` on SQLite: appends through `commit` (which posts with `createPoster`), reads prepared once. */
export function createSqliteLedgerStore(sqlite: Database.Database, commit: Committer): LedgerStore {
  const selectAccount = sqlite.prepare<[number], AccountRecord>(`select ${ACCOUNT_COLUMNS} from balances where user_id = ?`)
  const selectEntry = sqlite.prepare<[number], EntryHeader>(
    'select id, kind, ref, memo, actor_id as actorId, created_at as createdAt from ledger_entries where id = ?')
  const selectByRef = sqlite.prepare<[string, string], { id: number }>('select id from ledger_entries where kind = ? and ref = ?')
  const entryColumns = `e.id as id, p.id as postingId, e.kind as kind, p.category as category, p.amount as amount,
    p.counterparty_id as counterpartyId, e.ref as ref, e.memo as memo, p.created_at as createdAt
    from postings p join ledger_entries e on e.id = p.entry_id`
  const selectEntries = sqlite.prepare<[number, number], EntryView>(`select ${entryColumns} where p.user_id = ? order by p.id desc limit ?`)
  const selectEntriesBefore = sqlite.prepare<[number, number, number], EntryView>(
    `select ${entryColumns} where p.user_id = ? and p.id < ? order by p.id desc limit ?`)
  const selectTop = sqlite.prepare<[number, number, number], { userId: number; username: string; balance: number }>(`
    select u.id as userId, u.username as username, b.balance as balance from balances b join users u on u.id = b.user_id
    where b.user_id != ? and b.user_id >= 0 order by b.balance desc, u.id limit ? offset ?`)

  return {
    append(entry) {
      return commit.run((scope) => ({ entryId: scope.post(entry) }))
    },
    async account(userId) {
      return selectAccount.get(userId)
    },
    async entries(userId, options = {}) {
      const limit = Math.min(Math.max(options.limit ?? 50, 1), 500)
      // `before: 0` means no cursor, as a missing one does.
      return options.before ? selectEntriesBefore.all(userId, options.before, limit) : selectEntries.all(userId, limit)
    },
    async entryByRef(kind, ref) {
      return selectByRef.get(kind, ref)
    },
    async entry(entryId) {
      return selectEntry.get(entryId)
    },
    async top(limit, offset = 0) {
      return selectTop.all(ANONYMOUS_ID, limit, offset)
    },
  }
}
