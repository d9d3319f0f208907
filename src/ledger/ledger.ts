/**
 * The ledger: the only code that writes balances. Every economic event is one journal
 * entry with its postings, written in one synchronous, immediate SQLite transaction
 * together with the balance rows it changes. Entry kinds and the postings each makes:
 *
 * | kind       | postings                                                      | minted |
 * |------------|---------------------------------------------------------------|--------|
 * | generation | requester -amount (spent), worker owner +amount (generation)  | 0      |
 * | transfer   | sender -amount (sent), recipient +amount (received)           | 0      |
 * | uptime     | worker owner +amount (uptime)                                 | amount |
 * | award      | recipient +amount (awarded)                                   | amount |
 *
 * So the sum of all balances always equals the sum of `minted` over all entries.
 * `(kind, ref)` is unique: a job is settled once, an uptime batch credited once.
 */
import { EventEmitter } from 'node:events'
import { and, desc, eq, lt, sql } from 'drizzle-orm'
import type { Db } from '../db/open.js'
import { balances, ledgerEntries, postings } from '../db/schema.js'

export type EntryKind = 'generation' | 'transfer' | 'uptime' | 'award'

/** Balance categories; each posting counts toward exactly one. */
export type Category = 'generation' | 'uptime' | 'spent' | 'sent' | 'received' | 'awarded'

/** The `balances` column that keeps each category's running total (of absolute amounts). */
export const CATEGORY_COLUMN = {
  generation: 'earned_generation',
  uptime: 'earned_uptime',
  spent: 'spent',
  sent: 'sent',
  received: 'received',
  awarded: 'awarded',
} as const satisfies Record<Category, string>

export interface PostingInput {
  userId: number
  /** Signed milli-kudos. */
  amount: number
  category: Category
  counterpartyId?: number | null
}

export interface EntryInput {
  kind: EntryKind
  ref?: string | null
  memo?: string | null
  actorId?: number | null
  postings: PostingInput[]
}

/** Emitted after commit, once per posting. */
export interface BalanceChange {
  userId: number
  /** Balance after the change, milli-kudos. */
  balance: number
  /** Signed change, milli-kudos. */
  delta: number
  kind: EntryKind
  category: Category
  entryId: number
  ref: string | null
  counterpartyId: number | null
  at: number
}

export interface LedgerEvents {
  change: [BalanceChange]
}

/** Totals per category, as stored: milli-kudos. */
export type Account = typeof balances.$inferSelect

export interface EntryView {
  id: number
  postingId: number
  kind: EntryKind
  category: Category
  amount: number
  counterpartyId: number | null
  ref: string | null
  memo: string | null
  createdAt: number
}

/** Thrown inside a transaction when `(kind, ref)` already exists; the caller decides what a replay means. */
export class DuplicateEntryError extends Error {
  constructor(readonly kind: EntryKind, readonly ref: string) {
    super(`ledger entry ${kind}/${ref} already exists`)
  }
}

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]

export interface Ledger {
  /**
   * Writes one entry and its postings inside an open transaction (the caller's), updating each
   * balance. Returns the change events, to be published with `publish` once the caller commits.
   */
  postIn(tx: Tx | Db, entry: EntryInput): { entryId: number; changes: BalanceChange[] }
  /**
   * Runs `work` in one immediate transaction; `post` writes an entry and returns its id.
   * The balance changes are published once the transaction has committed.
   */
  run<T>(work: (tx: Tx, post: (entry: EntryInput) => number) => T): T
  /**
   * Runs several independent pieces of work in ONE immediate transaction (one commit, one
   * fsync), each in its own savepoint: a piece that throws is rolled back alone, with the
   * balance changes it posted, and reported as failed; the others commit. Changes are
   * published after the commit.
   */
  runEach<T>(works: Array<(tx: Tx, post: (entry: EntryInput) => number) => T>): Array<{ ok: true; value: T } | { ok: false; error: unknown }>
  /** Shorthand: one entry in its own transaction. Returns the entry id. */
  post(entry: EntryInput): number
  account(userId: number): Account | undefined
  entries(userId: number, options?: { before?: number; limit?: number }): EntryView[]
  entryByRef(kind: EntryKind, ref: string): { id: number } | undefined
  /** One entry's header (no postings), e.g. to show its memo next to a change event. */
  entry(entryId: number): { id: number; kind: EntryKind; ref: string | null; memo: string | null; actorId: number | null; createdAt: number } | undefined
  readonly events: EventEmitter<LedgerEvents>
}

export function createLedger(db: Db): Ledger {
  const events = new EventEmitter<LedgerEvents>()
  events.setMaxListeners(0)

  const insertEntry = db.insert(ledgerEntries).values({
    kind: sql.placeholder('kind'),
    ref: sql.placeholder('ref'),
    minted: sql.placeholder('minted'),
    memo: sql.placeholder('memo'),
    actorId: sql.placeholder('actorId'),
    createdAt: sql.placeholder('createdAt'),
  }).onConflictDoNothing().returning({ id: ledgerEntries.id }).prepare()

  const insertPosting = db.insert(postings).values({
    entryId: sql.placeholder('entryId'),
    userId: sql.placeholder('userId'),
    amount: sql.placeholder('amount'),
    category: sql.placeholder('category'),
    counterpartyId: sql.placeholder('counterpartyId'),
    createdAt: sql.placeholder('createdAt'),
  }).prepare()

  // One prepared update per category: the balance and that category's running total.
  const updateBalance = Object.fromEntries(
    (Object.keys(CATEGORY_COLUMN) as Category[]).map((category) => {
      const column = sql.raw(CATEGORY_COLUMN[category])
      return [category, db.update(balances)
        .set({ balance: sql`${balances.balance} + ${sql.placeholder('amount')}`, [toField(category)]: sql`${column} + abs(${sql.placeholder('amount')})` })
        .where(eq(balances.userId, sql.placeholder('userId')))
        .returning({ balance: balances.balance })
        .prepare()]
    }),
  ) as unknown as Record<Category, { get(params: { amount: number; userId: number }): { balance: number } | undefined }>

  const selectAccount = db.select().from(balances).where(eq(balances.userId, sql.placeholder('userId'))).prepare()
  const selectEntry = db.select({
    id: ledgerEntries.id, kind: ledgerEntries.kind, ref: ledgerEntries.ref, memo: ledgerEntries.memo, actorId: ledgerEntries.actorId, createdAt: ledgerEntries.createdAt,
  }).from(ledgerEntries).where(eq(ledgerEntries.id, sql.placeholder('id'))).prepare()

  function postIn(_tx: Tx | Db, entry: EntryInput): { entryId: number; changes: BalanceChange[] } {
    const at = Date.now()
    const minted = entry.kind === 'uptime' || entry.kind === 'award' ? entry.postings.reduce((sum, p) => sum + p.amount, 0) : 0
    if (minted === 0 && entry.postings.reduce((sum, p) => sum + p.amount, 0) !== 0) {
      throw new Error(`ledger entry ${entry.kind} does not balance`)
    }
    for (const p of entry.postings) {
      if (!Number.isSafeInteger(p.amount)) throw new Error(`posting amount ${p.amount} is not an integer of milli-kudos`)
    }
    const ref = entry.ref ?? null
    // Only awards may repeat: everything else names what it is about, once.
    if (ref === null && entry.kind !== 'award') throw new Error(`a ${entry.kind} entry needs a ref`)
    const row = insertEntry.get({ kind: entry.kind, ref, minted, memo: entry.memo ?? null, actorId: entry.actorId ?? null, createdAt: at })
    if (!row) throw new DuplicateEntryError(entry.kind, ref ?? '')
    const changes: BalanceChange[] = []
    for (const p of entry.postings) {
      insertPosting.run({ entryId: row.id, userId: p.userId, amount: p.amount, category: p.category, counterpartyId: p.counterpartyId ?? null, createdAt: at })
      const updated = updateBalance[p.category].get({ amount: p.amount, userId: p.userId })
      if (!updated) throw new Error(`no balance row for user ${p.userId}`)
      changes.push({ userId: p.userId, balance: updated.balance, delta: p.amount, kind: entry.kind, category: p.category, entryId: row.id, ref, counterpartyId: p.counterpartyId ?? null, at })
    }
    return { entryId: row.id, changes }
  }

  function publish(changes: BalanceChange[]): void {
    for (const change of changes) events.emit('change', change)
  }

  function run<T>(work: (tx: Tx, post: (entry: EntryInput) => number) => T): T {
    const collected: BalanceChange[] = []
    const result = db.transaction((tx) => work(tx, (entry) => {
      const { entryId, changes } = postIn(tx, entry)
      collected.push(...changes)
      return entryId
    }), { behavior: 'immediate' })
    publish(collected)
    return result
  }

  function runEach<T>(works: Array<(tx: Tx, post: (entry: EntryInput) => number) => T>): Array<{ ok: true; value: T } | { ok: false; error: unknown }> {
    const collected: BalanceChange[] = []
    const results = db.transaction((tx) => works.map((work) => {
      const mark = collected.length
      try {
        const value = tx.transaction((inner) => work(inner, (entry) => {
          const { entryId, changes } = postIn(inner, entry)
          collected.push(...changes)
          return entryId
        }))
        return { ok: true as const, value }
      } catch (error) {
        collected.length = mark
        return { ok: false as const, error }
      }
    }), { behavior: 'immediate' })
    publish(collected)
    return results
  }

  return {
    postIn,
    run,
    runEach,
    post(entry) {
      return run((_tx, post) => post(entry))
    },
    account(userId) {
      return selectAccount.get({ userId })
    },
    entries(userId, options = {}) {
      const limit = Math.min(Math.max(options.limit ?? 50, 1), 500)
      const where = options.before ? and(eq(postings.userId, userId), lt(postings.id, options.before)) : eq(postings.userId, userId)
      return db.select({
        id: ledgerEntries.id,
        postingId: postings.id,
        kind: ledgerEntries.kind,
        category: postings.category,
        amount: postings.amount,
        counterpartyId: postings.counterpartyId,
        ref: ledgerEntries.ref,
        memo: ledgerEntries.memo,
        createdAt: postings.createdAt,
      }).from(postings).innerJoin(ledgerEntries, eq(ledgerEntries.id, postings.entryId))
        .where(where).orderBy(desc(postings.id)).limit(limit).all() as EntryView[]
    },
    entryByRef(kind, ref) {
      return db.select({ id: ledgerEntries.id }).from(ledgerEntries).where(and(eq(ledgerEntries.kind, kind), eq(ledgerEntries.ref, ref))).get()
    },
    entry(entryId) {
      return selectEntry.get({ id: entryId }) as ReturnType<Ledger['entry']>
    },
    events,
  }
}

function toField(category: Category): keyof typeof balances.$inferInsert {
  switch (category) {
    case 'generation': return 'earnedGeneration'
    case 'uptime': return 'earnedUptime'
    case 'spent': return 'spent'
    case 'sent': return 'sent'
    case 'received': return 'received'
    case 'awarded': return 'awarded'
  }
}
