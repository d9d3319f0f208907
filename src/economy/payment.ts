/**
 * Who pays what for a finished job, given the payer's balance at the moment of settlement.
 * The stores call it inside the settlement's transaction, after reading (and, on
 * PostgreSQL, locking) the payer's balance row, so the rule and the postings are one atomic
 * write (src/store/sqlite/requests.ts, src/store/postgres/requests.ts).
 *
 * - **Preference never mints.** A job for the worker's owner or one of its priority users
 *   moves at most what the payer holds above zero; beyond that it is served for free.
 * - **Credit lines.** Otherwise the payer is charged the whole reward (its debt may grow, and
 *   its priority falls), but its debt funds the worker only down to its credit line: the
 *   rest of the credit goes to the system account `UNFUNDED_ID` (category `unfunded`), so
 *   the books still balance and no kudos appear from a throwaway account's debt.
 */
import { ANONYMOUS_ID, UNFUNDED_ID } from './anonymous.js'
import type { EntryInput } from './posting-rules.js'

/** Credit lines in milli-kudos (how far below zero a payer's debt funds workers); null: no limit. */
export interface CreditLines {
  /** The shared Anonymous account (`KUDOS_ANON_CREDIT`). */
  readonly anonymous: number | null
  /** Accounts linked to an OAuth login (`KUDOS_OAUTH_CREDIT`). */
  readonly oauth: number | null
  /** Accounts with a username only (`KUDOS_USER_CREDIT`). */
  readonly username: number | null
}

export type PayerKind = keyof CreditLines

/** The kind of payer `userId` is; `linked` says whether it has an OAuth identity. */
export function payerKind(userId: number, linked: boolean): PayerKind {
  if (userId === ANONYMOUS_ID) return 'anonymous'
  return linked ? 'oauth' : 'username'
}

export interface PaymentTerms {
  /** The payer is the worker's owner or one of its priority users. */
  preferred: boolean
  /** The payer's credit line, milli-kudos; null: no limit. */
  creditLine: number | null
}

/** Milli-kudos: charged to the payer, earned by the worker's owner, credited to the system account. */
export interface Split {
  charged: number
  earned: number
  unfunded: number
}

/** Splits a reward (milli-kudos) against the payer's balance before the payment (see the header). */
export function splitPayment(reward: number, balance: number, terms: PaymentTerms): Split {
  if (reward <= 0) return { charged: 0, earned: 0, unfunded: 0 }
  if (terms.preferred) {
    const charged = Math.min(reward, Math.max(0, balance))
    return { charged, earned: charged, unfunded: 0 }
  }
  if (terms.creditLine === null) return { charged: reward, earned: reward, unfunded: 0 }
  const earned = Math.min(reward, Math.max(0, balance + terms.creditLine))
  return { charged: reward, earned, unfunded: reward - earned }
}

/**
 * True when the payer's kind can change the split: only a charge that takes a
 * non-preferred payer below zero reaches a credit line (the store reads the kind only then).
 */
export function creditLineMatters(reward: number, balance: number, preferred: boolean): boolean {
  return reward > 0 && !preferred && balance - reward < 0
}

/** The generation entry of a split: payer −charged (spent), owner +earned, system +unfunded; null when nothing moves. */
export function generationEntry(request: string, payerId: number, ownerId: number, split: Split): EntryInput | null {
  if (split.charged <= 0) return null
  const postings: EntryInput['postings'] = [{ userId: payerId, amount: -split.charged, category: 'spent', counterpartyId: ownerId }]
  if (split.earned > 0) postings.push({ userId: ownerId, amount: split.earned, category: 'generation', counterpartyId: payerId })
  if (split.unfunded > 0) postings.push({ userId: UNFUNDED_ID, amount: split.unfunded, category: 'unfunded', counterpartyId: payerId })
  return { kind: 'generation', ref: request, actorId: ownerId, postings }
}
