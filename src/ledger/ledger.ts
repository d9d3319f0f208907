/**
 * The ledger: the only writer of balances. Every economic event is one journal entry with
 * its postings, written by the store in one transaction together with the balance rows it
 * changes; the rules an entry must follow (kinds, categories, signs, what mints) are in
 * posting-rules.ts, checked on every append. Balance changes are published on `events`
 * once the write has committed.
 */
import type { EventEmitter } from 'node:events'
import type { AccountRecord, EntryHeader, EntryView, Store, StoreEvents } from '../store/ports.js'
import type { EntryInput, EntryKind } from '../economy/posting-rules.js'
export { DuplicateEntryError } from '../economy/posting-rules.js'

export type { BalanceChange, Category, EntryInput, EntryKind, PostingInput } from '../economy/posting-rules.js'
export type { EntryView }

export type LedgerEvents = StoreEvents

/** Totals per category, as stored: milli-kudos. */
export type Account = AccountRecord


export interface AwardInput {
  userId: number
  /** Milli-kudos to mint, positive. */
  amount: number
  memo?: string | null
  /** Who awarded it (a moderator), or null for the system. */
  actorId?: number | null
}

export interface Ledger {
  /** Appends one entry in its own write (checked against the posting rules). Returns the entry id. */
  post(entry: EntryInput): Promise<number>
  /** Mints `amount` for a user: one `award` entry. Returns the entry id. */
  award(award: AwardInput): Promise<number>
  account(userId: number): Promise<Account | undefined>
  entries(userId: number, options?: { before?: number; limit?: number }): Promise<EntryView[]>
  entryByRef(kind: EntryKind, ref: string): Promise<{ id: number } | undefined>
  /** One entry's header (no postings), e.g. to show its memo next to a change event. */
  entry(entryId: number): Promise<EntryHeader | undefined>
  /** The users with the highest balances, Anonymous excluded. */
  top(limit: number, offset?: number): Promise<Array<{ userId: number; username: string; balance: number }>>
  /** Balance changes, after commit (the store's events). */
  readonly events: EventEmitter<LedgerEvents>
}

/** An award entry: the one posting that mints kudos for a recipient. */
export function awardEntry(award: AwardInput): EntryInput {
  return {
    kind: 'award',
    memo: award.memo ?? null,
    actorId: award.actorId ?? null,
    postings: [{ userId: award.userId, amount: award.amount, category: 'awarded', counterpartyId: award.actorId ?? null }],
  }
}

export function createLedger(store: Pick<Store, 'ledger' | 'events'>): Ledger {
  const ledger = store.ledger
  return {
    async post(entry) {
      return (await ledger.append(entry)).entryId
    },
    async award(award) {
      return (await ledger.append(awardEntry(award))).entryId
    },
    account: (userId) => ledger.account(userId),
    entries: (userId, options) => ledger.entries(userId, options),
    entryByRef: (kind, ref) => ledger.entryByRef(kind, ref),
    entry: (entryId) => ledger.entry(entryId),
    top: (limit, offset) => ledger.top(limit, offset),
    events: store.events,
  }
}
