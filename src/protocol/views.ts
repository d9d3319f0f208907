/**
 * Shapes of what the broker shows about accounts and requests, shared by REST (OpenAPI) and the
 * sockets, so both doors describe one thing one way; and the functions that turn stored
 * records into them (kudos as decimals, times as ISO text).
 */
import { Type, type Static } from '@sinclair/typebox'
import { toKudos } from '../economy/amounts.js'
import type { TransferResult } from '../ledger/transfers.js'
import type { AccountRecord, EntryView, UserRecord } from '../store/ports.js'

/** Totals by balance category, in kudos. */
export const Totals = Type.Object({
  earned_generation: Type.Number(),
  earned_uptime: Type.Number(),
  spent: Type.Number(),
  sent: Type.Number(),
  received: Type.Number(),
  awarded: Type.Number(),
})

/** A user's public fields. */
export const PublicUser = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  kudos: Type.Number(),
  created_at: Type.String(),
  roles: Type.Array(Type.String()),
})
export type PublicUser = Static<typeof PublicUser>

/** The broker's view of a generation request (`GET /v1/generate/:id`, the client socket's `attached`). */
export interface RequestView {
  id: string
  state: 'waiting' | 'running' | 'done' | 'failed' | 'cancelled'
  position?: number | null
  is_possible?: boolean
  attempt?: number
  worker?: string | null
  model?: string | null
  text?: string | null
  tokens?: number | null
  kudos?: number | null
  error?: string | null
  created_at: string
  finished_at?: string | null
}

// --- records to views ------------------------------------------------------------------------

/** A balance row's totals, in kudos. */
export function totalsView(account: AccountRecord | undefined) {
  return {
    earned_generation: toKudos(account?.earnedGeneration ?? 0),
    earned_uptime: toKudos(account?.earnedUptime ?? 0),
    spent: toKudos(account?.spent ?? 0),
    sent: toKudos(account?.sent ?? 0),
    received: toKudos(account?.received ?? 0),
    awarded: toKudos(account?.awarded ?? 0),
  }
}

/** A user's public fields with a balance. */
export function publicUserView(user: Pick<UserRecord, 'id' | 'username' | 'createdAt' | 'roles'>, balance: number) {
  return { id: user.id, username: user.username, kudos: toKudos(balance), created_at: new Date(user.createdAt).toISOString(), roles: user.roles }
}

/** One ledger posting as the API shows it. */
export function entryView(entry: EntryView) {
  return {
    id: entry.id,
    posting_id: entry.postingId,
    kind: entry.kind,
    category: entry.category,
    amount: toKudos(entry.amount),
    counterparty_id: entry.counterpartyId,
    ref: entry.ref,
    memo: entry.memo,
    created_at: new Date(entry.createdAt).toISOString(),
  }
}

/** A transfer as both doors show it (REST and the bot channel answer alike). */
export function transferView(result: TransferResult) {
  return {
    id: result.id,
    from: result.from,
    to: result.to,
    amount: toKudos(result.amount),
    memo: result.memo,
    created_at: new Date(result.createdAt).toISOString(),
    replayed: result.replayed,
  }
}
