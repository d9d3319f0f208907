/**
 * The posting rules, written once: which entry kinds exist, which balance categories each
 * kind posts to and with which sign, and which kinds create kudos. The ledger checks every
 * entry against them before it is written (`checkEntry`), and the audit checks every stored
 * posting against the same table, so the two can never disagree about what is legal.
 *
 * | kind       | postings                                                      | minted |
 * |------------|---------------------------------------------------------------|--------|
 * | generation | requester -amount (spent), worker owner +earned (generation), | 0      |
 * |            | system account +unfunded (unfunded); earned + unfunded = amount |      |
 * | transfer   | sender -amount (sent), recipient +amount (received)           | 0      |
 * | uptime     | worker owner +amount (uptime)                                 | amount |
 * | award      | recipient +amount (awarded)                                   | amount |
 *
 * A generation's `unfunded` part is the share of the requester's payment its debt could not
 * fund past its credit line (economy/payment.ts); it is credited only to the system account
 * `UNFUNDED_ID`, never to a worker, and the audit checks both.
 *
 * So the sum of all balances always equals the sum of `minted` over all entries.
 * `(kind, ref)` is unique: a job is settled once, an uptime batch credited once.
 */

export type EntryKind = 'generation' | 'transfer' | 'uptime' | 'award'

/** Balance categories; each posting counts toward exactly one. */
export type Category = 'generation' | 'uptime' | 'spent' | 'sent' | 'received' | 'awarded' | 'unfunded'

/** `debit`: the amount is never positive; `credit`: never negative. */
export type Side = 'debit' | 'credit'

/** For each kind, the categories its postings may use and the sign each must have. */
export const POSTING_RULES: Readonly<Record<EntryKind, Readonly<Partial<Record<Category, Side>>>>> = {
  generation: { spent: 'debit', generation: 'credit', unfunded: 'credit' },
  transfer: { sent: 'debit', received: 'credit' },
  uptime: { uptime: 'credit' },
  award: { awarded: 'credit' },
}

/** Every entry kind, in table order. */
export const ENTRY_KINDS = Object.keys(POSTING_RULES) as EntryKind[]

/** Kinds that create kudos: their `minted` is the sum of their postings. */
export const MINTING_KINDS: readonly EntryKind[] = ['uptime', 'award']

/** Kinds that only move kudos: their postings sum to 0 and they mint nothing. */
export const MOVING_KINDS: readonly EntryKind[] = ENTRY_KINDS.filter((kind) => !MINTING_KINDS.includes(kind))

/** Kinds whose entries may have no ref (and so may repeat): everything else names what it is about, once. */
export const REF_OPTIONAL_KINDS: readonly EntryKind[] = ['award']

/** Every category. */
export const CATEGORIES: readonly Category[] = ['generation', 'uptime', 'spent', 'sent', 'received', 'awarded', 'unfunded']

/** Categories only a system account may receive (the audit checks it). */
export const SYSTEM_CATEGORIES: readonly Category[] = ['unfunded']

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

/** Kudos this entry creates: the sum of its postings for a minting kind, 0 otherwise. */
export function mintedBy(entry: Pick<EntryInput, 'kind' | 'postings'>): number {
  return MINTING_KINDS.includes(entry.kind) ? entry.postings.reduce((sum, p) => sum + p.amount, 0) : 0
}

/**
 * Throws when `entry` breaks the rules: an unknown kind, no postings, an amount that is not
 * a safe integer, a category or sign its kind does not make, a moving entry that does not
 * balance, or a missing ref on a kind that needs one. Pure: checks the entry alone.
 */
export function checkEntry(entry: EntryInput): void {
  const rules = POSTING_RULES[entry.kind]
  if (!rules) throw new Error(`unknown ledger entry kind ${JSON.stringify(entry.kind)}`)
  if (entry.postings.length === 0) throw new Error(`ledger entry ${entry.kind} has no postings`)
  for (const p of entry.postings) {
    if (!Number.isSafeInteger(p.amount)) throw new Error(`posting amount ${p.amount} is not an integer of milli-kudos`)
    const side = rules[p.category]
    if (!side) throw new Error(`a ${entry.kind} entry cannot post to ${p.category}`)
    if (side === 'debit' ? p.amount > 0 : p.amount < 0) throw new Error(`a ${entry.kind} entry's ${p.category} posting must be ${side === 'debit' ? 'negative' : 'positive'}`)
  }
  if (!MINTING_KINDS.includes(entry.kind) && entry.postings.reduce((sum, p) => sum + p.amount, 0) !== 0) {
    throw new Error(`ledger entry ${entry.kind} does not balance`)
  }
  if ((entry.ref ?? null) === null && !REF_OPTIONAL_KINDS.includes(entry.kind)) throw new Error(`a ${entry.kind} entry needs a ref`)
}

/** Thrown when `(kind, ref)` already exists; the caller decides what a replay means. */
export class DuplicateEntryError extends Error {
  constructor(readonly kind: EntryKind, readonly ref: string) {
    super(`ledger entry ${kind}/${ref} already exists`)
  }
}
